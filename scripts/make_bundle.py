"""Convert a trained generator checkpoint (with its frozen IBE inside) into a slim weights-only bundle.

    python scripts/make_bundle.py --generator runs/generator_ptbxl100/.../last.ckpt \
        --out ecgtwin/assets/ecgtwin_ptbxl100.pt --note "trained on ../shared/data/ptbxl100 folds 1-6"

The bundle keeps the EMA generator weights, the IBE weights and configs, the label vocabulary, the
train-set demographic statistics and the preprocessing; optimiser state and the raw weights are dropped.
``--half`` stores the floating-point weights as float16 (half the size; they are cast back to float32 when
loaded, a relative rounding of 2^-11 per weight).
"""
from __future__ import annotations

import argparse
import datetime as dt

import torch

from ecgtwin import __version__
from ecgtwin.bundle import bundle_from_checkpoint, save_bundle


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", required=True, help="Lightning GeneratorModule checkpoint (.ckpt)")
    p.add_argument("--out", required=True, help="bundle path (.pt)")
    p.add_argument("--note", default="", help="free text stored in the bundle's provenance")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the file size)")
    args = p.parse_args()
    bundle = bundle_from_checkpoint(args.generator, provenance={
        "note": args.note, "ecgtwin_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    })
    if args.half:
        for key in ("net_state", "ibe_state"):
            if bundle[key] is not None:
                bundle[key] = {k: v.half() if v.is_floating_point() else v for k, v in bundle[key].items()}
        bundle["provenance"]["weights_dtype"] = str(torch.float16)
    path = save_bundle(bundle, args.out)
    n_gen = sum(v.numel() for v in bundle["net_state"].values())
    n_ibe = sum(v.numel() for v in (bundle["ibe_state"] or {}).values())
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB): generator {n_gen / 1e6:.2f} M, IBE {n_ibe / 1e6:.2f} M "
          f"parameters, {len(bundle['vocabulary']['names'])} labels {bundle['vocabulary']['names']}")


if __name__ == "__main__":
    main()
