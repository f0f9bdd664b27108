"""LFW verification (the 6,000 pairs of pairs.txt, 10-fold accuracy) through our full pipeline
(MTCNN → dlib-geometry alignment → PyTorch dlib ResNet), and through dlib-bin's own pipeline
(HOG detector, 5-point predictor, get_face_chip 150/0.25, compute_face_descriptor) in the same run.

For each fold, the threshold is chosen on the other nine folds (best accuracy) and applied to
the held-out fold; the table gives the mean and standard deviation over the ten folds.
A face that is not found counts as a wrong answer for every pair it is in.

    .venv/bin/python benchmarks/lfw_verification.py [--skip-dlib] [--limit-folds N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import torch
from common import code_version, machine_description

from forensics.datasets import default_data_dir


def read_pairs(path: Path):
    lines = path.read_text().split("\n")
    n_folds, n = map(int, lines[0].split())
    pairs = []
    for line in lines[1:]:
        f = line.split()
        if len(f) == 3:
            pairs.append(((f[0], int(f[1])), (f[0], int(f[2])), True))
        elif len(f) == 4:
            pairs.append(((f[0], int(f[1])), (f[2], int(f[3])), False))
    assert len(pairs) == n_folds * 2 * n, len(pairs)
    return pairs, n_folds, 2 * n


def img_path(root: Path, name: str, num: int) -> Path:
    return root / name / f"{name}_{num:04d}.jpg"


def ten_fold(scores: np.ndarray, same: np.ndarray, n_folds: int, per_fold: int, higher_is_same: bool):
    """Per-fold accuracy with the threshold tuned on the other folds. NaN scores are errors."""
    s = scores if higher_is_same else -scores
    accs = []
    for k in range(n_folds):
        test = np.zeros(len(s), bool)
        test[k * per_fold:(k + 1) * per_fold] = True
        tr_s, tr_y = s[~test], same[~test]
        cand = np.unique(tr_s[~np.isnan(tr_s)])
        best_t, best_acc = 0.0, -1.0
        for t in cand[:: max(1, len(cand) // 2000)]:
            acc = np.mean(np.where(np.isnan(tr_s), False, (tr_s >= t) == tr_y))
            if acc > best_acc:
                best_acc, best_t = acc, t
        te_s, te_y = s[test], same[test]
        accs.append(float(np.mean(np.where(np.isnan(te_s), False, (te_s >= best_t) == te_y))))
    return float(np.mean(accs)), float(np.std(accs)), accs


def ours(paths: list[Path]) -> tuple[dict[Path, np.ndarray], float, int]:
    from forensics.models.registry import load_embedder
    from forensics.pipeline import FacePipeline, PipelineFailure

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    pipe = FacePipeline(embedder=load_embedder(), select="central")
    out, failed = {}, 0
    for batch in pipe.process(paths, kind="photo", batch_size=64):
        for r in batch:
            if isinstance(r, PipelineFailure):
                failed += 1
            else:
                out[r.path] = r.embedding.vector
    return out, time.perf_counter() - t0, failed


_dlib = {}


def _dlib_init(upsample: int = 1):
    import dlib
    import face_recognition_models as frm

    _dlib["upsample"] = upsample
    _dlib["det"] = dlib.get_frontal_face_detector()
    _dlib["sp"] = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    _dlib["rec"] = dlib.face_recognition_model_v1(frm.face_recognition_model_location())


def _dlib_one(path: str):
    import dlib
    from PIL import Image

    img = np.asarray(Image.open(path).convert("RGB"))
    dets = _dlib["det"](img, _dlib["upsample"])
    if not len(dets):
        return path, None
    h, w = img.shape[:2]
    d = min(dets, key=lambda r: ((r.left() + r.right()) / 2 - w / 2) ** 2 + ((r.top() + r.bottom()) / 2 - h / 2) ** 2)
    chip = dlib.get_face_chip(img, _dlib["sp"](img, d), size=150, padding=0.25)
    return path, np.asarray(_dlib["rec"].compute_face_descriptor(chip), np.float32)


def dlib_pipeline(paths: list[Path], processes: int = 2, upsample: int = 1):
    """dlib-bin's own pipeline: HOG detector (upsampling the image `upsample` times first, 1 as
    face_recognition does by default), 5-point landmarks, get_face_chip, descriptor."""
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(processes, initializer=_dlib_init, initargs=(upsample,)) as pool:
        res = dict(pool.imap_unordered(_dlib_one, [str(p) for p in paths], chunksize=16))
    out = {Path(p): v for p, v in res.items() if v is not None}
    return out, time.perf_counter() - t0, sum(v is None for v in res.values())


def pair_scores(pairs, root, emb, metric):
    s = np.full(len(pairs), np.nan)
    for i, (a, b, _) in enumerate(pairs):
        va, vb = emb.get(img_path(root, *a)), emb.get(img_path(root, *b))
        if va is None or vb is None:
            continue
        s[i] = float(va @ vb) if metric == "cos" else float(np.linalg.norm(va - vb))
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--skip-dlib", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/lfw_verification.json"))
    args = ap.parse_args()
    data = args.data or default_data_dir(required=True)
    root = data / "lfw" / "deepfunneled_250"
    pairs, n_folds, per_fold = read_pairs(data / "lfw" / "protocol" / "pairs.txt")
    same = np.array([p[2] for p in pairs])
    paths = sorted({img_path(root, *x) for a, b, _ in pairs for x in (a, b)})
    rows = []
    emb, secs, failed = ours(paths)
    m, sd, _ = ten_fold(pair_scores(pairs, root, emb, "cos"), same, n_folds, per_fold, True)
    rows.append({"pipeline": "forensics (MTCNN + dlib 5-point landmarks + PyTorch dlib ResNet)", "accuracy": m,
                 "std": sd, "images": len(paths), "no_face": failed, "seconds": secs})
    if args.skip_dlib:
        # dlib-bin's pipeline does not depend on this code (about 25 min here): keep its last row,
        # marked as such, so the comparison stays in the results
        previous = json.loads(args.out.read_text())["rows"] if args.out.is_file() else []
        for r in previous:
            if r["pipeline"].startswith("dlib-bin"):
                rows.append({**r, "reused_from": r.get("reused_from") or r.get("measured_at") or "an earlier run"})
    else:
        emb, secs, failed = dlib_pipeline(paths)
        m, sd, _ = ten_fold(pair_scores(pairs, root, emb, "l2"), same, n_folds, per_fold, False)
        rows.append({"pipeline": "dlib-bin (HOG + 5-point + get_face_chip + ResNet)", "accuracy": m, "std": sd,
                     "images": len(paths), "no_face": failed, "seconds": secs,
                     "measured_at": time.strftime("%Y-%m-%d")})
    print(f"LFW pairs.txt, {len(pairs)} pairs, 10-fold")
    print(f"{'pipeline':58} {'accuracy':>9} {'± std':>7} {'no face':>8} {'seconds':>8}")
    for r in rows:
        note = f"  (from {r['reused_from']})" if r.get("reused_from") else ""
        print(f"{r['pipeline']:58} {r['accuracy']:9.2%} {r['std']:7.2%} {r['no_face']:8d} {r['seconds']:8.0f}{note}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "machine": machine_description(), "code": code_version()}, indent=2))


if __name__ == "__main__":
    main()
