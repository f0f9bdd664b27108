"""Detection rate of MTCNN (as configured in forensics.detect) on the CUFS and FS2K sketches.

Prints a table (per dataset: sketches, found by MTCNN, found after the relaxed retry, left to the
centred-portrait fallback) and writes JSON. It also prints the mean landmark positions of the
detected sketches relative to the image size: the numbers used by the centred-portrait fallback
in forensics/pipeline.py (SKETCH_FALLBACK_LANDMARKS).

    .venv/bin/python benchmarks/sketch_detection.py [--data ../shared/data] [--out benchmarks/results/sketch_detection.json]
"""
import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import code_version, machine_description

from forensics.datasets import default_data_dir
from forensics.detect import FaceDetector
from forensics.images import load_image
from forensics.pipeline import relaxed_sketch_detection


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/sketch_detection.json"))
    args = ap.parse_args()
    data = args.data or default_data_dir(required=True)
    torch.set_num_threads(2)
    det = FaceDetector()
    rows_out, rel = [], []
    for ds in ("cufs", "fs2k"):
        rows = [r for r in csv.DictReader(open(data / ds / "manifest.csv")) if r["kind"] == "sketch"]
        imgs = [load_image(data / ds / r["file"]).rgb for r in rows]
        t = time.perf_counter()
        res = det.detect_many(imgs)
        dt = time.perf_counter() - t
        missed = [i for i, x in enumerate(res) if x.face is None]
        retry = [relaxed_sketch_detection(det, imgs[i]) for i in missed]
        still = [rows[i]["file"] for i, x in zip(missed, retry) if x.face is None]
        for img, x in zip(imgs, res):
            if x.face is not None:
                h, w = img.shape[:2]
                rel.append(x.face.landmarks / np.array([w, h]))
        rows_out.append({"dataset": ds, "sketches": len(rows), "mtcnn_found": len(rows) - len(missed),
                         "found_after_retry": len(rows) - len(still), "centred_fallback": len(still),
                         "detection_rate": (len(rows) - len(missed)) / len(rows),
                         "ms_per_image": dt / len(rows) * 1000, "fallback_files": still})
    print(f"{'dataset':8} {'sketches':>8} {'MTCNN':>6} {'+retry':>7} {'fallback':>8} {'rate':>6} {'ms/img':>7}")
    for r in rows_out:
        print(f"{r['dataset']:8} {r['sketches']:8d} {r['mtcnn_found']:6d} {r['found_after_retry']:7d} "
              f"{r['centred_fallback']:8d} {r['detection_rate']:6.1%} {r['ms_per_image']:7.1f}")
    mean_rel = np.mean(rel, 0)
    print("SKETCH_FALLBACK_LANDMARKS =", np.round(mean_rel, 4).tolist())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows_out, "fallback_landmarks": mean_rel.tolist(),
                                     "machine": machine_description(), "code": code_version()}, indent=2))


if __name__ == "__main__":
    main()
