"""Choose the sketch search space's alpha and eps (forensics/whitening.py) by the rule fixed
before it was adopted: two-fold cross-validation over the 1,126 training pairs (CUFS train + FS2K
train minus the 200 validation pairs), five seeded splits. In each fold the whitening is fitted on
one half's photos only, and the other half's raw sketches (mirror-averaged, as queries make them;
not the inverted ones, which are optimistic on pairs the inverter was trained on) are ranked among
the other half's photos; the score is the mean closed-set rank-1. alpha = 0 is no whitening.
Prints a table and writes docs/training/whitening-selection-2026-11-27.json.

    .venv/bin/python scripts/select_whitening.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
EPSS = (1e-4, 1e-3)


def main() -> int:
    from common import training_pair_vectors, training_sketches

    from forensics.datasets import default_data_dir
    from forensics.fusion import unit_rows
    from forensics.models.registry import load_embedder
    from forensics.pipeline import FacePipeline
    from forensics.whitening import fit_whitening

    torch.set_num_threads(2)
    data = default_data_dir(required=True)
    pipe = FacePipeline(embedder=load_embedder())
    kept, raw, _, photos = training_pair_vectors(pipe, data, training_sketches(data))
    key = pipe.embedder.info.key.slug

    def rank1(q: np.ndarray, g: np.ndarray) -> float:
        s = q @ g.T
        return float(((s > s.diagonal()[:, None]).sum(1) == 0).mean())

    table = {}
    n = len(kept)
    for alpha in ALPHAS:
        for eps in EPSS:
            scores = []
            for seed in range(5):
                perm = np.random.default_rng(seed).permutation(n)
                halves = perm[: n // 2], perm[n // 2:]
                for fit_on, test_on in (halves, halves[::-1]):
                    if alpha == 0:
                        t = unit_rows
                    else:
                        t = fit_whitening(photos[fit_on], key, alpha, eps).apply
                    scores.append(rank1(t(raw[test_on]), t(photos[test_on])))
            table[(alpha, eps)] = float(np.mean(scores))
            print(f"alpha {alpha:<5} eps {eps:<7} mean closed-set rank-1 {100 * table[(alpha, eps)]:.2f}%", flush=True)
    best = max(table, key=table.get)
    print(f"chosen: alpha {best[0]}, eps {best[1]} ({n} training pairs)")
    out = ROOT / "docs" / "training" / "whitening-selection-2026-11-27.json"
    out.write_text(json.dumps({"rule": __doc__.split("\n\n")[0], "n_pairs": n,
                               "rank1": [{"alpha": a, "eps": e, "rank1": round(v, 4)} for (a, e), v in table.items()],
                               "chosen": {"alpha": best[0], "eps": best[1]}}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
