"""Tests of the training-sketch synthesis (forensics.inversion.sketchify)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from forensics.inversion.sketchify import STYLES, sketchify, sketchify_file


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("randomize", [False, True])
@pytest.mark.parametrize("shape", [(150, 150), (250, 200), (48, 64)])
def test_shape_and_dtype(toy_face, style, randomize, shape):
    photo = toy_face(*shape)
    out = sketchify(photo, style, rng=np.random.default_rng(1), randomize=randomize)
    assert out.shape == (*shape, 3)
    assert out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]


def test_greyscale_input_accepted(face):
    grey = np.asarray(Image.fromarray(face).convert("L"))
    for style in STYLES:
        out = sketchify(grey, style, randomize=False)
        assert out.shape == (*grey.shape, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("style", STYLES)
def test_deterministic_with_seed(face, style):
    a = sketchify(face, style, rng=np.random.default_rng(123))
    b = sketchify(face, style, rng=np.random.default_rng(123))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("style", STYLES)
def test_canonical_is_deterministic_and_ignores_rng(face, style):
    a = sketchify(face, style, randomize=False)
    b = sketchify(face, style, rng=np.random.default_rng(7), randomize=False)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("style", STYLES)
def test_randomize_varies_output(face, style):
    outs = [sketchify(face, style, rng=np.random.default_rng(s)).astype(np.int16) for s in range(4)]
    canon = sketchify(face, style, randomize=False).astype(np.int16)
    for i in range(len(outs)):
        assert np.abs(outs[i] - canon).mean() > 1.0
        for j in range(i + 1, len(outs)):
            assert np.abs(outs[i] - outs[j]).mean() > 1.0


def test_styles_differ(face):
    outs = {s: sketchify(face, s, randomize=False).astype(np.int16) for s in STYLES}
    for i, a in enumerate(STYLES):
        for b in STYLES[i + 1 :]:
            assert np.abs(outs[a] - outs[b]).mean() > 2.0, (a, b)


def test_line_is_mostly_white_strokes(face):
    out = sketchify(face, "line", randomize=False)
    grey = out[..., 0].astype(np.float32)
    assert (grey > 200).mean() > 0.75  # white paper
    assert (grey < 100).mean() > 0.01  # ... with some dark strokes
    assert grey[:15, :15].mean() > 240  # the plain backdrop is left white


def test_grey_styles_are_grey_and_colour_has_colour(face):
    for style in ("line", "pencil"):
        for rnd in (False, True):
            out = sketchify(face, style, rng=np.random.default_rng(3), randomize=rnd)
            assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    col = sketchify(face, "colour", randomize=False).astype(np.int16)
    chroma = col.max(axis=-1) - col.min(axis=-1)
    assert chroma.mean() > 3.0


def test_pencil_keeps_backdrop_light_and_hair_dark(face):
    out = sketchify(face, "pencil", randomize=False)[..., 0].astype(np.float32)
    assert out[:15, :15].mean() > 235  # backdrop: not drawn
    assert out[20:30, 65:85].mean() < out[:15, :15].mean() - 30  # hair: shaded


def test_rng_none_randomizes(toy_face):
    face = toy_face(64, 64)
    a = sketchify(face, "pencil")
    b = sketchify(face, "pencil")
    assert a.shape == b.shape == (64, 64, 3)


def test_unknown_style_and_bad_shape(toy_face):
    with pytest.raises(ValueError):
        sketchify(toy_face(32, 32), "watercolour")
    with pytest.raises(ValueError):
        sketchify(np.zeros((32, 32, 5), np.uint8), "line")


def test_sketchify_file(tmp_path, face):
    src = tmp_path / "photo.jpg"
    Image.fromarray(face).save(src, quality=95)
    dst = tmp_path / "out" / "sketch.png"
    assert sketchify_file(src, dst, "line", None) == dst
    a = np.asarray(Image.open(dst))
    assert a.shape == face.shape
    sketchify_file(src, dst, "line", None)
    np.testing.assert_array_equal(a, np.asarray(Image.open(dst)))  # seed None: canonical
    sketchify_file(src, tmp_path / "s1.png", "colour", 5)
    sketchify_file(src, tmp_path / "s2.png", "colour", 5)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "s1.png")), np.asarray(Image.open(tmp_path / "s2.png")))


@pytest.mark.data
def test_real_photos_give_sketch_like_output(data_dir):
    with open(data_dir / "cufs" / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["kind"] == "photo"]
    picks = [r for r in sorted(rows, key=lambda r: r["identity"])][::101][:6]
    rng = np.random.default_rng(0)
    for r in picks:
        photo = np.asarray(Image.open(data_dir / "cufs" / r["file"]).convert("RGB"))
        line = sketchify(photo, "line", rng=rng)[..., 0]
        assert (line > 200).mean() > 0.7, r["file"]
        for style in STYLES:
            out = sketchify(photo, style, randomize=False).astype(np.float32)
            # CUFS backdrops are plain (blue / white): the top corners stay paper-white
            assert out[:20, :20].mean() > 225, (r["file"], style)
            assert out[:20, -20:].mean() > 225, (r["file"], style)
