"""Training throughput (samples/s) of the IBE and the generator for the CPU config, and the GPU config on a GPU.

Uses real records of the bundled sample as one fixed pair batch and times full optimisation steps
(forward, backward, AdamW, and for the generator the frozen-IBE forward and the EMA update).

    python scripts/bench_train.py                 # CPU configs
    python scripts/bench_train.py --steps 20      # more steps, less noise
"""
from __future__ import annotations

import argparse
import time

import torch
import yaml

from ecgtwin.data.datamodule import ECGDataModule
from ecgtwin.models.ibe import IndividualBaseExtractor
from ecgtwin.models.losses import ClipLoss
from ecgtwin.paths import REPO_DIR, SAMPLE_SPLIT
from ecgtwin.training.generator_module import GeneratorModule


def _init_args(*configs: str) -> dict:
    args: dict = {}
    for name in configs:
        cfg = yaml.safe_load((REPO_DIR / "configs" / name).read_text())
        for key, value in cfg.get("model", {}).get("init_args", {}).items():
            args[key] = {**args.get(key, {}), **value} if isinstance(value, dict) else value
    return args


def _pair_batch(batch_size: int, device: torch.device) -> dict:
    dm = ECGDataModule(root=str(REPO_DIR / "data" / "ptbxl_sample"), **SAMPLE_SPLIT, progress=False)
    dm.prepare_data()
    dm.setup("fit")
    items = [dm.train_dataset[i % len(dm.train_dataset)] for i in range(batch_size)]
    collate = torch.utils.data.default_collate
    return {side: {k: v.to(device) for k, v in collate([it[side] for it in items]).items()} for side in ("reference", "target")}


def _time(step, steps: int, device: torch.device) -> float:
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def bench(configs: tuple[str, ...], device: torch.device, batch_size: int, steps: int, autocast: bool) -> None:
    batch = _pair_batch(batch_size, device)
    num_labels = batch["target"]["labels"].shape[1]
    ibe_args = _init_args("ibe.yaml", *[c for c in configs if c.startswith("ibe")])
    ibe = IndividualBaseExtractor(num_labels, **ibe_args["net_config"]).to(device)
    loss_fn = ClipLoss().to(device)
    opt = torch.optim.AdamW([*ibe.parameters(), *loss_fn.parameters()], lr=1e-4)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast)

    def ibe_step() -> None:
        with amp:
            z = [ibe(b["signal"], b["labels"], b["demographics"], b["demographics_mask"]) for b in batch.values()]
            loss = loss_fn(*z)
        opt.zero_grad()
        loss.backward()
        opt.step()

    gen_args = _init_args("generator.yaml", *[c for c in configs if c.startswith("generator")])
    gen_args = {k: v for k, v in gen_args.items() if k != "ibe_checkpoint"}
    gen = GeneratorModule(num_labels, ibe=ibe.eval(), **gen_args).to(device)
    gen_opt = torch.optim.AdamW(gen.net.parameters(), lr=1e-4)

    def gen_step() -> None:
        with amp:
            loss = gen._loss(batch, gen.net, training=True)
        gen_opt.zero_grad()
        loss.backward()
        gen_opt.step()
        gen.ema.update(gen.net)

    label = "+".join(configs)
    for name, step, module in (("IBE", ibe_step, ibe), ("generator", gen_step, gen.net)):
        seconds = _time(step, steps, device)
        params = sum(p.numel() for p in module.parameters()) / 1e6
        print(f"{label:<40}{name:<11}{params:>7.2f} M{batch_size:>6}{seconds:>10.3f}{batch_size / seconds:>12.1f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, cuda={torch.cuda.is_available()}")
    print(f"{'config':<40}{'model':<11}{'params':>9}{'batch':>6}{'s/step':>10}{'samples/s':>12}")
    bench(("ibe.yaml", "generator.yaml"), torch.device("cpu"), args.batch_size, args.steps, autocast=False)
    if torch.cuda.is_available():
        bench(("ibe_gpu.yaml", "generator_gpu.yaml"), torch.device("cuda"), args.batch_size * 2, args.steps * 4, autocast=True)
    else:
        print("no GPU: GPU configs (configs/*_gpu.yaml, bf16) not measured")


if __name__ == "__main__":
    main()
