"""The numpy port of dlib's 5-point landmark predictor and dlib's chip geometry, against dlib-bin."""

from __future__ import annotations

import numpy as np
import pytest

from forensics.align import align_dlib, dlib_box_from_mtcnn
from forensics.models.dlib_landmarks import load_shape_predictor, parse_shape_predictor


@pytest.fixture(scope="module")
def predictor():
    return load_shape_predictor()


def _faces(data_dir, n=24):
    """(rgb, dlib HOG rectangle) of LFW photos and CUFS sketches where dlib-bin finds a face."""
    dlib = pytest.importorskip("dlib")
    from forensics.datasets import read_manifest
    from forensics.images import load_image

    hog = dlib.get_frontal_face_detector()
    out = []
    for dataset, kind in (("lfw", "photo"), ("cufs", "sketch")):
        rows = [r for r in read_manifest(data_dir, dataset) if r["kind"] == kind]
        for r in rows[:: len(rows) // n][:n]:
            rgb = load_image(r["path"]).rgb
            found = hog(rgb, 1)
            if len(found):
                out.append((rgb, found[0]))
    return out


def test_landmarks_equal_dlib_bin(data_dir, predictor):
    dlib = pytest.importorskip("dlib")
    ref = dlib.shape_predictor(str(predictor.weights_path))
    faces = _faces(data_dir)
    assert len(faces) >= 30
    ours = predictor.predict_many([rgb for rgb, _ in faces],
                                  [(d.left(), d.top(), d.right(), d.bottom()) for _, d in faces])
    for (rgb, d), pts in zip(faces, ours):
        shape = ref(rgb, d)
        expected = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)])
        np.testing.assert_array_equal(pts, expected)
    # one face at a time, a box reaching outside the image, and a grey image give dlib's answer too
    rgb, d = faces[0]
    box = (d.left() - 40, d.top() - 40, d.right() + 10, d.bottom() + 10)
    shape = ref(rgb, dlib.rectangle(*box))
    np.testing.assert_array_equal(predictor.predict(rgb, box), [[p.x, p.y] for p in shape.parts()])
    grey = np.ascontiguousarray(rgb[:, :, 1])
    shape = ref(grey, d)
    np.testing.assert_array_equal(predictor.predict(grey, (d.left(), d.top(), d.right(), d.bottom())),
                                  [[p.x, p.y] for p in shape.parts()])


def test_chip_geometry_equals_dlib_get_face_chip(data_dir, predictor):
    dlib = pytest.importorskip("dlib")
    ref = dlib.shape_predictor(str(predictor.weights_path))
    for rgb, d in _faces(data_dir, n=8):
        shape = ref(rgb, d)
        pts = np.array([[p.x, p.y] for p in shape.parts()], float)
        expected = dlib.get_face_chip(rgb, shape, size=150, padding=0.25).astype(float)
        ours = align_dlib(rgb, pts).astype(float)
        # same geometry: only interpolation rounding differs (a half-pixel shift would give ~3-6)
        assert np.abs(ours - expected)[5:-5, 5:-5].mean() < 1.0


def test_cache_gives_the_parsed_predictor(tmp_path, monkeypatch, predictor):
    monkeypatch.setenv("FORENSICS_CACHE", str(tmp_path))
    first = load_shape_predictor()  # parses and writes the cache
    assert list((tmp_path / "forensics").glob("*.npz"))
    second = load_shape_predictor()  # reads it
    for k in ("initial_shape", "anchor_idx", "deltas", "split_idx", "split_thresh", "leaves"):
        np.testing.assert_array_equal(getattr(first, k), getattr(second, k))
    assert second.weights_sha256 == predictor.weights_sha256


def test_a_crafted_cache_is_never_trusted(tmp_path, monkeypatch, predictor):
    """A cache whose recorded source hash is right but whose arrays were changed (landmarks that
    would make photos stop matching themselves) is ignored: the source is parsed again."""
    monkeypatch.setenv("FORENSICS_CACHE", str(tmp_path))
    load_shape_predictor()
    (cache,) = (tmp_path / "forensics").glob("*.npz")
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["initial_shape"] = arrays["initial_shape"] + 5.0
    np.savez(cache.with_suffix(""), **arrays)  # np.savez adds the .npz suffix back
    again = load_shape_predictor()
    np.testing.assert_array_equal(again.initial_shape, predictor.initial_shape)


def test_damaged_file_is_refused(tmp_path, predictor):
    data = predictor.weights_path.read_bytes()
    bad = tmp_path / "cut.dat"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a valid"):
        parse_shape_predictor(bad)


def test_mtcnn_box_maps_to_a_square_dlib_box():
    left, top, right, bottom = dlib_box_from_mtcnn([100, 80, 200, 210])
    assert right - left == bottom - top
    assert 60 < right - left < 140 and left > 80 and top > 80


def test_outer_axis_sum_adds_in_dlibs_order():
    """The cascade relies on numpy adding the rows of a reduction over the outer axis one after
    another in float32, as dlib adds its trees' updates (pairwise summation would round differently)."""
    rng = np.random.default_rng(3)
    rows = (rng.standard_normal((501, 7, 10)) * 10.0 ** rng.integers(-4, 3, (501, 1, 1))).astype(np.float32)
    expected = rows[0].copy()
    for r in rows[1:]:
        expected = expected + r
    np.testing.assert_array_equal(np.add.reduce(rows, axis=0, dtype=np.float32), expected)
    assert not np.array_equal(rows.astype(np.float64).sum(0).astype(np.float32), expected)
