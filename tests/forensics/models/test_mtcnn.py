"""Our vectorised MTCNN cascade against its reference, facenet_pytorch.MTCNN, on real images."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from forensics.models.mtcnn import MTCNN, _facenet_min_nms, batched_nms


def _greedy_nms(boxes, scores, threshold):
    """Textbook greedy NMS (IoU), one group: the reference for the batched version."""
    order, keep = list(np.argsort(-scores, kind="stable")), []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order:
        i = order.pop(0)
        keep.append(i)
        w = np.maximum(0, np.minimum(boxes[i, 2], boxes[order, 2]) - np.maximum(boxes[i, 0], boxes[order, 0]))
        h = np.maximum(0, np.minimum(boxes[i, 3], boxes[order, 3]) - np.maximum(boxes[i, 1], boxes[order, 1]))
        iou = w * h / (area[i] + area[order] - w * h)
        order = [o for o, v in zip(order, iou) if v <= threshold]
    return keep


def test_batched_nms_equals_greedy_nms_per_group():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.9, 0.95, 0.5, 0.1], np.float32)
    assert sorted(batched_nms(boxes, scores, np.zeros(4, int), 0.5).tolist()) == [1, 2]
    assert sorted(batched_nms(boxes, scores, np.array([0, 1, 0, 1]), 0.5).tolist()) == [0, 1, 2]
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 60))
        xy = rng.uniform(0, 50, (n, 2))
        boxes = np.c_[xy, xy + rng.uniform(5, 30, (n, 2))].astype(np.float32)
        scores = rng.uniform(0, 1, n).astype(np.float32)
        groups = rng.integers(0, 4, n)
        threshold = float(rng.choice([0.3, 0.5, 0.7]))
        expected = [int(idx[k]) for g in np.unique(groups) for idx in [np.flatnonzero(groups == g)]
                    for k in _greedy_nms(boxes[idx], scores[idx], threshold)]
        assert sorted(batched_nms(boxes, scores, groups, threshold).tolist()) == sorted(expected)


def test_last_stage_nms_uses_overlap_over_the_smaller_box():
    # "Min": a box inside another is suppressed whatever its size (IoU would keep it)
    inner = np.array([[0, 0, 100, 100], [10, 10, 20, 20]], np.float32)
    assert _facenet_min_nms(inner, np.array([0.9, 0.8], np.float32), np.zeros(2, int), 0.7).tolist() == [0]
    assert sorted(batched_nms(inner, np.array([0.9, 0.8], np.float32), np.zeros(2, int), 0.7).tolist()) == [0, 1]


def test_importing_the_detector_does_not_import_torchvision():
    code = "import sys, forensics.detect, forensics.models.mtcnn; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _images(data_dir, dataset, kind, n, size):
    from forensics.datasets import read_manifest
    from forensics.images import load_image

    rows = [r for r in read_manifest(data_dir, dataset) if r["kind"] == kind]
    imgs = [load_image(r["path"]).rgb for r in rows[:: max(1, len(rows) // (3 * n))]]
    return np.stack([im for im in imgs if im.shape[:2] == size][:n])


@pytest.mark.slow
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
