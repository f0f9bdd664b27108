"""Derive where MTCNN's 5 landmarks fall inside dlib-made 150x150 face chips.

dlib's recognition network expects chips made by dlib's own 5-point predictor and
`get_face_chip(img, shape, size=150, padding=0.25)`. MTCNN's landmarks are other points, so we
learn their positions in dlib's chip frame:

1. For N LFW photos (every 7th person folder, first photo), run dlib-bin's pipeline: HOG
   detector, `shape_predictor_5_face_landmarks`, `get_face_chip(..., 150, 0.25)`.
2. Run MTCNN on each dlib chip (keep the most confident face) and collect its 5 landmarks.
3. The template is the per-landmark median (robust to the odd miss), printed for
   `forensics/align.py` together with the spread.

Needs the dev dependency dlib-bin and ../shared/data. Usage:
    .venv/bin/python scripts/derive_mtcnn_template.py [--n 600]
"""
import argparse
from pathlib import Path

import dlib
import face_recognition_models as frm
import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    args = ap.parse_args()
    people = sorted(p for p in (DATA / "lfw" / "deepfunneled_250").iterdir() if p.is_dir())[::7]
    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    mtcnn = MTCNN(keep_all=False, post_process=False, min_face_size=40)
    chips = []
    for person in people:
        if len(chips) >= args.n:
            break
        img = np.asarray(Image.open(sorted(person.glob("*.jpg"))[0]).convert("RGB"))
        dets = det(img, 1)
        if len(dets) != 1:
            continue
        chips.append(dlib.get_face_chip(img, sp(img, dets[0]), size=150, padding=0.25))
    pts = []
    with torch.inference_mode():
        for i in range(0, len(chips), 64):
            _, probs, lms = mtcnn.detect(np.stack(chips[i:i + 64]), landmarks=True)
            for p, lm in zip(probs, lms):
                if lm is not None:
                    pts.append(np.asarray(lm[0] if lm.ndim == 3 else lm, float))
    pts = np.stack(pts)
    med = np.median(pts, 0)
    print(f"# dlib chips: {len(chips)}, MTCNN landmarks found on {len(pts)}")
    print("MTCNN_TEMPLATE_150 = np.array(")
    print("    [")
    for (x, y) in med:
        print(f"        [{x:.4f}, {y:.4f}],")
    print("    ],")
    print("    dtype=np.float64,\n)")
    print("# per-landmark std (px):", np.round(pts.std(0), 2).tolist())
    print("# per-landmark median abs deviation (px):", np.round(np.median(np.abs(pts - med), 0), 2).tolist())


if __name__ == "__main__":
    main()
