"""Measure combinations of several exported sketch inverters on the cached validation chips.

    .venv/bin/python research/inverter-ensemble/measure_inverter_ensemble.py W1.pt W2.pt [...] [--cache runs/cache/chips.npz]

For the 200 FS2K validation pairs and (if its cache exists) the 338 CUFS test pairs, closed set,
cosine ranking, no mirror averaging (the numbers `python -m forensics.training.trainer --evaluate`
gives for one model), prints and writes (--out) the inverted rank-1 of:
  - each model alone;
  - "descriptors": the mean of the unit dlib descriptors of each model's synthesized photo;
  - "pixels": one descriptor of the mean synthesized photo;
  - "soup": one model whose weights are the mean of the models' weights (same architecture and
    initialisation assumed);
  - with --mirror also each model and the descriptor mean with mirror averaging, as queries do
    (`forensics/probes.py`: the inverter also runs on the mirrored sketch chip).
The model card (docs/models.md, "Inversion network") quotes its output for the four runs of the
2026-11-27 GPU training (docs/training/inverter-ensemble-2026-11-27.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from forensics.training.data import ChipCache, eval_cache_path
from forensics.inversion.invert import load_inverter
from forensics.inversion.network import InverterConfig, SketchInverter
from forensics.training.config import load_config
from forensics.training.evaluation import Evaluator, _ranks, _unit, load_loss_network


def rank1(query: torch.Tensor, ev: Evaluator) -> float:
    return float((_ranks(query, ev.d_photo) == 0).float().mean())


@torch.no_grad()
def synthesize(model, ev: Evaluator) -> torch.Tensor:
    """The synthesized photos themselves (for the pixel average); descriptors come from `ev._embed`."""
    return torch.cat([model(ev.sketch[i:i + 50].float()).clamp(0, 255) for i in range(0, len(ev.sketch), 50)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+", type=Path)
    ap.add_argument("--cache", default="runs/cache/chips.npz")
    ap.add_argument("--out", type=Path, default=None, help="write the figures here as JSON")
    ap.add_argument("--mirror", action="store_true", help="also with mirror averaging (doubles the time)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    models = [load_inverter(w, "cpu") for w in args.weights]
    names = [m.info.version for m in models]
    soup = SketchInverter(InverterConfig.from_dict(models[0].meta["config"]["model"])).eval()
    states = [m.state_dict() for m in models]
    soup.load_state_dict({k: sum(s[k].float() for s in states) / len(states) for k in states[0]})
    dlib = load_loss_network(load_config(None, {"cache": args.cache}), "cpu")
    sets = {"fs2k_val": Evaluator(ChipCache(args.cache), dlib, "cpu")}
    if eval_cache_path(args.cache).is_file():
        sets["cufs_test"] = Evaluator(ChipCache(eval_cache_path(args.cache)), dlib, "cpu", dataset="cufs", split="test")
    out: dict = {"models": names}
    for set_name, ev in sets.items():
        images = [synthesize(m, ev) for m in models]
        desc = [ev._embed(im.round().byte()) for im in images]
        res = {"raw": rank1(ev.d_raw, ev)}
        res.update({name: rank1(d, ev) for name, d in zip(names, desc)})
        res["descriptors"] = rank1(sum(_unit(d) for d in desc), ev)
        res["pixels"] = rank1(ev._embed((sum(images) / len(images)).round().byte()), ev)
        res["soup"] = rank1(ev._embed(ev.sketch, soup), ev)
        if args.mirror:
            mirrored = [_unit(d) + _unit(ev._embed(ev.sketch.flip(3), m)) for d, m in zip(desc, models)]
            res.update({f"{name}+mirror": rank1(d, ev) for name, d in zip(names, mirrored)})
            res["descriptors+mirror"] = rank1(sum(mirrored), ev)
        out[set_name] = res
        print(set_name, "rank-1 inverted:", ", ".join(f"{k} {100 * v:.1f}" for k, v in res.items()), flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
