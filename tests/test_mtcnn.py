"""Our vectorised MTCNN cascade against its reference, facenet_pytorch.MTCNN, on real images."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from forensics.mtcnn import MTCNN, nms


def test_nms_keeps_best_and_drops_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], float)
    scores = np.array([0.9, 0.95, 0.5, 0.1])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 0, 2, 3]
    # "min": overlap over the smaller box; a box inside another is suppressed whatever its size
    inner = np.array([[0, 0, 100, 100], [10, 10, 20, 20]], float)
    assert nms(inner, np.array([0.9, 0.8]), 0.7, method="min").tolist() == [0]
    assert nms(inner, np.array([0.9, 0.8]), 0.7).tolist() == [0, 1]


def test_importing_the_detector_does_not_import_torchvision():
    code = "import sys, forensics.detect, forensics.mtcnn; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _images(data_dir, dataset, kind, n, size):
    from forensics.datasets import read_manifest
    from forensics.images import load_image

    rows = [r for r in read_manifest(data_dir, dataset) if r["kind"] == kind]
    imgs = [load_image(r["path"]).rgb for r in rows[:: max(1, len(rows) // (3 * n))]]
    return np.stack([im for im in imgs if im.shape[:2] == size][:n])


@pytest.mark.parametrize("dataset,kind,size,min_face", [
    ("lfw", "photo", (250, 250), 50),
    ("lfw", "photo", (250, 250), 20),
    ("cufs", "sketch", (250, 200), 40),
])
def test_same_faces_as_facenet_pytorch(data_dir, dataset, kind, size, min_face):
    facenet = pytest.importorskip("facenet_pytorch")
    images = _images(data_dir, dataset, kind, 24, size)
    assert len(images) >= 16
    ref = facenet.MTCNN(keep_all=True, post_process=False, min_face_size=min_face)
    ref_boxes, ref_probs, ref_points = ref.detect(images, landmarks=True)
    ours = MTCNN().detect(images, min_face)
    n_faces = 0
    for rb, rp, rl, o in zip(ref_boxes, ref_probs, ref_points, ours):
        if rb is None:
            assert len(o.boxes) == 0
            continue
        assert len(o.boxes) == len(rb)
        for box, prob, pts in zip(rb, rp, rl):
            box, pts = np.asarray(box, float), np.asarray(pts, float)
            j = int(np.argmin(np.abs(o.boxes - box).sum(1)))
            np.testing.assert_allclose(o.boxes[j], box, atol=1e-2)
            np.testing.assert_allclose(o.points[j], pts, atol=1e-2)
            assert abs(o.probs[j] - prob) < 1e-4
            n_faces += 1
    assert n_faces >= len(images)
