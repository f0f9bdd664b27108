"""The face pipeline's detection paths: photo, sketch retry, centred-portrait fallback, no face."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from forensics.errors import NoFaceError
from forensics.images import load_image
from forensics.pipeline import BLANK_INK_FRACTION, centred_portrait_face, detect_faces, ink_fraction


def _blank(tmp_path, name="blank.png", strokes=0):
    """A textured grey page (with `strokes` dark pencil lines): nothing MTCNN will call a face."""
    rng = np.random.default_rng(0)
    img = Image.fromarray((200 + rng.integers(0, 20, (250, 200))).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(strokes):
        draw.line([tuple(int(v) for v in rng.integers(0, 200, 2)) for _ in range(2)], fill=60, width=3)
    path = tmp_path / name
    img.save(path)
    return load_image(path)


def test_photo_gets_dlib_points_and_a_chip(pipeline, data_dir):
    im = load_image(data_dir / "lfw" / "deepfunneled_250" / "Al_Gore" / "Al_Gore_0001.jpg")
    (det,) = detect_faces(pipeline.detector, [im], kind="photo", select="central")
    assert det.face.method == "mtcnn" and det.chip.shape == (150, 150, 3)
    pts = det.face.points
    # dlib's order: outer and inner corner of the eye on the image's right, then outer and inner
    # corner of the eye on its left (so left to right: 2, 3, 1, 0), then the base of the nose,
    # below the eyes and between them
    assert pts[2, 0] < pts[3, 0] < pts[1, 0] < pts[0, 0]
    assert pts[4, 1] > pts[:4, 1].max() and pts[3, 0] < pts[4, 0] < pts[1, 0]
    x1, y1, x2, y2 = det.face.box
    assert np.all((pts[:, 0] > x1) & (pts[:, 0] < x2) & (pts[:, 1] > y1) & (pts[:, 1] < y2))


def test_no_face_in_a_photo_is_an_error_but_a_sketch_gets_the_fallback(pipeline, tmp_path):
    im = _blank(tmp_path, "scribbles.png", strokes=40)
    assert ink_fraction(im.rgb) > 10 * BLANK_INK_FRACTION
    (err,) = detect_faces(pipeline.detector, [im], kind="photo")
    assert isinstance(err, NoFaceError) and "scribbles.png" in str(err)
    (det,) = detect_faces(pipeline.detector, [im], kind="sketch")
    assert det.face.method == "centred-portrait-fallback" and det.n_faces == 0
    assert det.chip.shape == (150, 150, 3) and det.face.points.shape == (5, 2)


def test_a_blank_page_is_not_given_the_fallback(pipeline, tmp_path):
    """No face found and (nearly) nothing drawn: an error, not a face assumed on an empty page."""
    im = _blank(tmp_path)
    assert ink_fraction(im.rgb) < BLANK_INK_FRACTION
    (err,) = detect_faces(pipeline.detector, [im], kind="sketch")
    assert isinstance(err, NoFaceError) and "blank.png" in str(err) and "blank" in err.problem


def test_real_sketches_are_far_from_blank(data_dir):
    """The blank threshold sits well below the faintest real sketch (CUFS, FS2K)."""
    paths = sorted((data_dir / "fs2k" / "sketches").glob("*.jpg"))[::10]
    paths += sorted((data_dir / "cufs").glob("*/sketches/*.jpg"))[::10]
    assert len(paths) > 150
    faintest = min(ink_fraction(load_image(p).rgb) for p in paths)
    assert faintest > 5 * BLANK_INK_FRACTION


def test_centred_fallback_is_placed_like_the_sketches(pipeline, tmp_path):
    im = _blank(tmp_path)
    det = centred_portrait_face(pipeline.detector, im.rgb)
    h, w = im.rgb.shape[:2]
    centre = det.face.points.mean(0)
    assert abs(centre[0] - w / 2) < 0.15 * w and 0.3 * h < centre[1] < 0.7 * h


@pytest.mark.slow
def test_large_faces_are_searched_first_and_small_ones_only_where_none_was_found(pipeline, data_dir):
    """Two passes: a mugshot-sized face is found by the cheap first pass alone; an image whose
    face is under the first pass's size gets the second pass and the same face as a single
    search down to the smallest size would give."""
    from forensics.detect import FaceDetector

    lfw = data_dir / "lfw" / "deepfunneled_250"
    big = load_image(lfw / "Al_Gore" / "Al_Gore_0001.jpg").rgb
    canvas = np.full((900, 900, 3), 128, np.uint8)  # the face ~13% of the shorter side
    canvas[300:550, 325:575] = load_image(lfw / "Naomi_Watts" / "Naomi_Watts_0001.jpg").rgb
    det = pipeline.detector
    sizes = []
    real_detect = det._mtcnn.detect

    def spy(images, min_face, thresholds=None):
        sizes.append((images.shape[1], min_face))
        return real_detect(images, min_face, thresholds)

    det._mtcnn.detect = spy
    try:
        found = det.detect_many([big, canvas], select="largest")
    finally:
        del det._mtcnn.detect
    assert (250, 75) in sizes and (800, 240) in sizes  # first pass: 30% of the shorter side
    assert (800, 160) in sizes and (250, 50) not in sizes  # second pass only for the canvas
    assert all(d.face is not None for d in found)
    big_one, canvas_one = FaceDetector(large_face_frac=None).detect_many([big, canvas], select="largest")
    np.testing.assert_allclose(found[1].face.box, canvas_one.face.box, atol=1e-3)
    np.testing.assert_array_equal(found[1].chip, canvas_one.chip)
    # the first pass's pyramid has other scales: the same face, its box a pixel or two apart
    np.testing.assert_allclose(found[0].face.box, big_one.face.box, atol=4)
