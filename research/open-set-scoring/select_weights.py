"""Which weights of the three scores, and does a gallery-side hubness correction help, in the
open gallery of the development protocol? Chosen on FS2K select; stated on the report sets.

Input: runs/open_scores.npz (cache_scores.py). The three scores of a probe and a gallery subject
are those of the `roundtrip` mode: drawn sketch (s_d), synthesized photo (s_i), both in the
sketch search space with the fusion offsets, and synthesized photo vs round-trip vector (s_r).
A subject's score is w_d s_d + w_i s_i + w_r s_r. Today: fusion (w_r = 0) splits 1 between
w_d and w_i by FUSION_WEIGHT_INVERTED; roundtrip gives w_r = 1/3 and the rest as fusion.

Hubness: a gallery photo that resembles every sketch crowds the top of many searches (the
issue's "same-style impostors"). The correction subtracts from each of its scores beta times its
mean cosine to its K = 10 nearest reference sketch vectors (the training pairs' sketches, the
same probe kind; a gallery face's own sketch is never its reference), the per-face half of CSLS
(Conneau et al., 2018). It is a per-face constant a gallery could store at enrollment. A second
form, Z-norm (beta "z"): each face's scores standardised by the mean and standard deviation of its
cosines to all the reference sketch vectors of that kind (own sketch left out).

Rule, written before any figure was computed:
1. Grid: w_r in {0, 0.1, ..., 0.6}; the rest split with w_i / (w_d + w_i) in {0.3, 0.4, ..., 0.8};
   beta in {0, 0.5, 1, "z"}.
2. Criterion on FS2K select, open gallery: rank-1 + rank-10 (in probes found); ties go to the
   setting nearest today's (smallest change in w_r, then in the split, then beta 0).
3. Best without hubness (beta 0) vs today's fusion and roundtrip: adopt new weights only if they
   gain at least 3 probes on the criterion over today's weights of the same mode family (w_r = 0
   vs fusion, w_r > 0 vs roundtrip); adopt hubness only if the best beta other than 0 gains at
   least 3 probes over the best beta = 0.
4. Then, once, the report sets (FS2K report, CUFS test) for today's and the adopted settings.

    PYTHONPATH=. .venv/bin/python research/open-set-scoring/select_weights.py [--report]
"""

from __future__ import annotations

import json
import sys
from itertools import product
from pathlib import Path

import numpy as np

from forensics.fusion import FUSION_WEIGHT_INVERTED
from forensics.probes import ROUNDTRIP_WEIGHT

ROOT = Path(__file__).resolve().parents[2]
K_REF = 10


def hub_penalties(z) -> dict[str, np.ndarray]:
    """Per probe kind, each gallery image's statistics against the reference sketch vectors (its
    own subject's sketch left out): "knn" the mean cosine of its K_REF nearest, "mean" and "std"
    of all. Each (3, images)."""
    subjects = list(z["subjects"])
    col = {s: j for j, s in enumerate(subjects)}
    ref_vec, ref_col = z["train_V"], np.array([col.get(s, -1) for s in z["train_ids"]])
    n = len(z["G_subject"])
    out = {k: np.zeros((3, n), np.float32) for k in ("knn", "mean", "std")}
    for j, G in enumerate((z["G_white"], z["G_white"], z["G_rt"])):
        sims = G @ ref_vec[:, j].T  # (images, refs)
        own = z["G_subject"][:, None] == ref_col[None, :]
        masked = np.where(own, np.nan, sims)
        out["mean"][j], out["std"][j] = np.nanmean(masked, axis=1), np.nanstd(masked, axis=1)
        out["knn"][j] = np.sort(np.where(own, -np.inf, sims), axis=1)[:, -K_REF:].mean(axis=1)
    return out


def subject_scores(z, name: str, beta, pen: dict) -> np.ndarray:
    if beta == 0:
        return z[f"{name}_S"]
    V, g_sub, n_sub = z[f"{name}_V"], z["G_subject"], len(z["subjects"])
    S = np.full((V.shape[0], 3, n_sub), -np.inf, np.float32)
    for j, G in enumerate((z["G_white"], z["G_white"], z["G_rt"])):
        if beta == "z":
            sims = (V[:, j] @ G.T - pen["mean"][j][None, :]) / pen["std"][j][None, :]
        else:
            sims = V[:, j] @ G.T - beta * pen["knn"][j][None, :]
        np.maximum.at(S[:, j].T, g_sub, sims.T)
    return S


def ranks(z, name: str, S: np.ndarray, w: np.ndarray) -> np.ndarray:
    col = {s: j for j, s in enumerate(z["subjects"])}
    truth = np.array([col[s] for s in z[f"{name}_ids"]])
    score = np.einsum("k,nkm->nm", w, S)
    own = score[np.arange(len(truth)), truth]
    return 1 + (score > own[:, None]).sum(axis=1)


def summary(r: np.ndarray) -> dict:
    return {"n": int(len(r)), **{f"rank{k}": int((r <= k).sum()) for k in (1, 5, 10)}}


def weights(w_r: float, split: float) -> np.ndarray:
    return np.array([(1 - w_r) * (1 - split), (1 - w_r) * split, w_r])


def main():
    z = dict(np.load(ROOT / "runs" / "open_scores.npz"))
    pen = hub_penalties(z)
    today = {"fusion": (0.0, FUSION_WEIGHT_INVERTED), "roundtrip": (ROUNDTRIP_WEIGHT, FUSION_WEIGHT_INVERTED)}
    grid = []
    for beta in (0.0, 0.5, 1.0, "z"):
        S = subject_scores(z, "fs2k_select", beta, pen)
        for w_r, split in product(np.round(np.arange(0, 0.61, 0.1), 2), np.round(np.arange(0.3, 0.81, 0.1), 2)):
            s = summary(ranks(z, "fs2k_select", S, weights(w_r, split)))
            grid.append({"beta": beta, "w_r": float(w_r), "split": float(split), **s,
                         "criterion": s["rank1"] + s["rank10"]})
        for mode, (w_r, split) in today.items():
            s = summary(ranks(z, "fs2k_select", S, weights(w_r, split)))
            grid.append({"beta": beta, "w_r": w_r, "split": split, "today": mode, **s, "criterion": s["rank1"] + s["rank10"]})

    def nearest_best(rows, ref):
        return max(rows, key=lambda g: (g["criterion"], -abs(g["w_r"] - ref[0]), -abs(g["split"] - ref[1]), g["beta"] == 0))

    plain = [g for g in grid if g["beta"] == 0 and "today" not in g]
    result = {"grid": grid, "today": {m: next(g for g in grid if g.get("today") == m and g["beta"] == 0) for m in today}}
    result["best_fusion"] = nearest_best([g for g in plain if g["w_r"] == 0], today["fusion"])
    result["best_roundtrip"] = nearest_best([g for g in plain if g["w_r"] > 0], today["roundtrip"])
    result["best_hub"] = nearest_best([g for g in grid if g["beta"] != 0 and "today" not in g], today["roundtrip"])
    for k in ("today", "best_fusion", "best_roundtrip", "best_hub"):
        print(k, json.dumps(result[k]))
    if "--report" in sys.argv:
        result["report"] = report(z, pen, result)
    out = ROOT / "research" / "open-set-scoring" / "select-weights-2026-12-02.json"
    out.write_text(json.dumps(result, indent=1))


def report(z, pen, result) -> list[dict]:
    settings = {"today fusion": result["today"]["fusion"], "today roundtrip": result["today"]["roundtrip"],
                "best fusion": result["best_fusion"], "best roundtrip": result["best_roundtrip"],
                "best hub": result["best_hub"]}
    rows = []
    for name in ("fs2k_select", "fs2k_report", "cufs_test"):
        for label, g in settings.items():
            S = subject_scores(z, name, g["beta"], pen)
            rows.append({"set": name, "setting": label, "beta": g["beta"], "w_r": g["w_r"], "split": g["split"],
                         **summary(ranks(z, name, S, weights(g["w_r"], g["split"])))})
            print(json.dumps(rows[-1]))
    return rows


if __name__ == "__main__":
    main()
