"""Derive the map from an MTCNN face box to the box dlib's 5-point landmark predictor expects.

dlib's `shape_predictor_5_face_landmarks` was trained on boxes from dlib's HOG face detector; we
find faces with MTCNN, whose boxes are placed and sized differently (taller, reaching higher). So
we learn, by least squares, the HOG box's centre offset and side from the MTCNN box's width and
height:

1. For N LFW photos (every 7th person folder, first photo) run dlib-bin's HOG detector
   (upsampled once, as face_recognition does) and our MTCNN; keep photos where both find exactly
   one face.
2. Fit  cx_hog - cx_mtcnn = a*w + b*h,  cy_hog - cy_mtcnn = c*w + d*h,  side_hog = e*w + f*h.
3. Check: the landmarks predicted from the mapped MTCNN box against those from the HOG box.

Prints `MTCNN_TO_DLIB_BOX` for forensics/align.py. Needs dlib-bin (dev dependency) and
../shared/data:
    .venv/bin/python scripts/derive_landmark_box.py [--n 600]
"""
import argparse
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

from forensics.align import dlib_box_from_mtcnn
from forensics.models.dlib_landmarks import load_shape_predictor
from forensics.models.mtcnn import MTCNN

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    args = ap.parse_args()
    people = sorted(p for p in (DATA / "lfw" / "deepfunneled_250").iterdir() if p.is_dir())[::7]
    hog = dlib.get_frontal_face_detector()
    mtcnn = MTCNN()
    images, hog_boxes, mt_boxes = [], [], []
    for person in people[: args.n]:
        img = np.asarray(Image.open(sorted(person.glob("*.jpg"))[0]).convert("RGB"))
        dets = hog(img, 1)
        found = mtcnn.detect(img[None], min_face=50)[0]
        if len(dets) != 1 or len(found.boxes) != 1:
            continue
        d = dets[0]
        images.append(img)
        hog_boxes.append([d.left(), d.top(), d.right(), d.bottom()])
        mt_boxes.append(found.boxes[0])
    h, m = np.array(hog_boxes, float), np.array(mt_boxes, float)
    mw, mh = m[:, 2] - m[:, 0], m[:, 3] - m[:, 1]
    X = np.column_stack([mw, mh])
    dx = np.linalg.lstsq(X, (h[:, 0] + h[:, 2]) / 2 - (m[:, 0] + m[:, 2]) / 2, rcond=None)[0]
    dy = np.linalg.lstsq(X, (h[:, 1] + h[:, 3]) / 2 - (m[:, 1] + m[:, 3]) / 2, rcond=None)[0]
    side = np.linalg.lstsq(X, h[:, 2] - h[:, 0], rcond=None)[0]
    coef = np.concatenate([dx, dy, side])
    print(f"# photos where both detectors found one face: {len(images)} of {min(len(people), args.n)}")
    print("MTCNN_TO_DLIB_BOX = (" + ", ".join(f"{c:.4f}" for c in coef) + ")")

    sp = load_shape_predictor()
    from_hog = sp.predict_many(images, h.astype(int))
    mapped = np.array([dlib_box_from_mtcnn(b, coef) for b in m])
    from_mtcnn = sp.predict_many(images, mapped)
    err = np.linalg.norm(from_hog - from_mtcnn, axis=2)  # (faces, 5) px
    iod = np.linalg.norm(from_hog[:, 0] - from_hog[:, 2], axis=1)  # outer eye corners
    print(f"# landmarks from the mapped MTCNN box vs from the HOG box: median {np.median(err):.2f} px, "
          f"mean {err.mean():.2f} px, {np.mean(err / iod[:, None]) * 100:.1f}% of the outer-eye distance")


if __name__ == "__main__":
    main()
