"""At which noise level are a twin's beat times decided? A diagnostic on validation fold 7.

Twins of seeded fold-7 pairs are sampled while every denoiser call's data prediction
``x0_hat = alpha_t x_t - sigma_t v_hat`` is kept (the same twins as ``bench_sampling.py``). Per noise level:
the share of the final twin's R peaks (lead II) that ``x0_hat`` already has within +-50 ms, the median RR
coefficient of variation of ``x0_hat`` and its amplitude relative to the final twin. Where the share jumps is
where the rhythm is decided; the RR CV there is the rhythm the rest of the trajectory inherits.

    python scripts/probe_beat_timing.py --checkpoint runs/gen_v2/version_5/checkpoints/step05610.ckpt \\
        --n 16 --setting dpmpp_2m_sde:50:3:1
"""
from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
import torch

import ecgtwin.pipeline as pipeline
from ecgtwin.api import TwinModel
from ecgtwin.data.heartrate import lead_r_peaks
from ecgtwin.eval.harness_data import datamodule_for, select_pairs, twin_specs
from ecgtwin.pipeline import to_twelve_leads

MATCH_S = 0.05


class RecordingDenoiser:
    """Wraps a denoiser ``(x_t, t) -> v`` and keeps ``(sigma_t, x0_hat)`` of every call."""

    def __init__(self, inner: pipeline.GuidedDenoiser, schedule: pipeline.VPSchedule,
                 store: list[tuple[float, torch.Tensor]]) -> None:
        self.inner, self.schedule, self.store = inner, schedule, store

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v = self.inner(x, t)  # (B, leads, L)
        step = int(t.reshape(-1)[0])
        alpha, sigma = float(self.schedule.alphas[step]), float(self.schedule.sigmas[step])
        self.store.append((sigma, (alpha * x - sigma * v).detach().clone()))  # x0_hat (B, leads, L)
        return v

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def rr_cv(peaks: np.ndarray) -> float:
    rr = np.diff(peaks)
    return float(rr.std() / rr.mean()) if len(rr) >= 2 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--root", default="../shared/data/ptbxl100")
    p.add_argument("--n", type=int, default=16, help="twins (fold-7 pairs)")
    p.add_argument("--setting", default="dpmpp_2m_sde:50:3:1", help="sampler:steps:s_c:s_p")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", type=int, default=20, help="noise levels shown")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    sampler, steps, s_c, s_p = args.setting.split(":")
    options = pipeline.SamplingOptions(sampler, int(steps), float(s_c), float(s_p))
    model = TwinModel.load(args.checkpoint)
    dm = datamodule_for(model, args.root, {"train_folds": [1, 2, 3, 4, 5, 6], "val_folds": [7], "test_folds": [8]},
                        progress=False)
    specs = twin_specs(model, select_pairs(dm, args.n, seed=0, split="val"))
    store: list[tuple[float, torch.Tensor]] = []
    guided = pipeline.GuidedDenoiser
    with mock.patch.object(pipeline, "GuidedDenoiser",
                           lambda *a, **k: RecordingDenoiser(guided(*a, **k), model.schedule, store)):
        twins = model.generate(specs, batch_size=len(specs), progress=False, options=options)  # (n, 12, L) mV
    fs, tol = model.fs, round(MATCH_S * model.fs)
    final = [lead_r_peaks(twin[1], fs) for twin in twins]
    print(f"{len(specs)} fold-7 twins, {args.setting}, checkpoint {model.checkpoint_hash}; final RR CV median "
          f"{np.nanmedian([rr_cv(q) for q in final]):.3f}")
    print("| sigma | final R peaks already there (+-50 ms) | RR CV median of x0_hat | amplitude x0_hat / final |\n"
          "|---|---|---|---|")
    for sigma, x0 in store[:: max(1, len(store) // args.rows)] + [store[-1]]:
        x = (to_twelve_leads(x0) * model.signal_scale).numpy()  # (n, 12, L) mV
        found = [lead_r_peaks(x[i, 1], fs) for i in range(len(x))]
        hits = [bool(len(f)) and np.abs(f - q).min() <= tol for f, peaks in zip(found, final) for q in peaks]
        amplitude = np.median([x[i].std() / twins[i].std() for i in range(len(x))])
        print(f"| {sigma:.3f} | {np.mean(hits):.2f} | {np.nanmedian([rr_cv(f) for f in found]):.3f} | {amplitude:.2f} |")


if __name__ == "__main__":
    main()
