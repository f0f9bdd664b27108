"""Tests of the artist-like sketch styles and the caricature warp (forensics.inversion.artist_styles,
forensics.inversion.caricature), and that the recipe's styles still render exactly as before."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

from forensics.inversion.artist_styles import ARTIST_STYLES
from forensics.inversion.caricature import MAX_DEVIATION, MEAN_LEFT, MEAN_MOUTH_ROW, exaggerate, measure_layout
from forensics.inversion.sketchify import ALL_STYLES, STYLES, sketchify

#: sha256 (first 32 hex digits) of the recipe styles on the toy face, canonical and seed 5, as
#: rendered before the artist styles were added: the round-trip mode's gallery is built from the
#: canonical pencil sketch, and training replays its seeded sketches
RECIPE_HASHES = {
    "line": ("a2b5bdc6fb49a8f222a5fc8e0bf82585", "cebc65e26475898c9ffa18c00046dc5c"),
    "pencil": ("796fa81b545c9bef2b89deb3b2a25bd3", "2a3e690e03b87f440f918a5421615bf8"),
    "colour": ("c1fe9d649ea4bcc8c23107063ba341c3", "675e8419636cadcc33fa728922a10282"),
}


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:32]


@pytest.mark.parametrize("style", STYLES)
def test_recipe_styles_render_exactly_as_before(face, style):
    canonical, seeded = RECIPE_HASHES[style]
    assert _sha(sketchify(face, style, randomize=False)) == canonical
    assert _sha(sketchify(face, style, rng=np.random.default_rng(5))) == seeded


def test_all_styles_are_the_recipe_and_artist_styles():
    assert ALL_STYLES == ("line", "pencil", "colour", "charcoal", "pressure")
    assert set(ARTIST_STYLES) == {"charcoal", "pressure"}


@pytest.mark.parametrize("style", ARTIST_STYLES)
@pytest.mark.parametrize("randomize", [False, True])
@pytest.mark.parametrize("shape", [(150, 150), (250, 200), (48, 64)])
def test_shape_dtype_and_grey(toy_face, style, randomize, shape):
    out = sketchify(toy_face(*shape), style, rng=np.random.default_rng(1), randomize=randomize)
    assert out.shape == (*shape, 3) and out.dtype == np.uint8 and out.flags["C_CONTIGUOUS"]
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


@pytest.mark.parametrize("style", ARTIST_STYLES)
def test_canonical_is_deterministic_and_seeded_is_reproducible(face, style):
    a = sketchify(face, style, randomize=False)
    np.testing.assert_array_equal(a, sketchify(face, style, rng=np.random.default_rng(7), randomize=False))
    s1 = sketchify(face, style, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(s1, sketchify(face, style, rng=np.random.default_rng(3)))
    s2 = sketchify(face, style, rng=np.random.default_rng(4))
    assert np.abs(s1.astype(np.int16) - s2).mean() > 1.0  # randomized: drawings vary


@pytest.mark.parametrize("style", ARTIST_STYLES)
def test_differs_from_every_other_style(face, style):
    out = sketchify(face, style, randomize=False).astype(np.int16)
    for other in ALL_STYLES:
        if other != style:
            assert np.abs(out - sketchify(face, other, randomize=False)).mean() > 2.0, other


def test_charcoal_fills_hair_darker_than_pencil_and_leaves_backdrop_white(face):
    charcoal = sketchify(face, "charcoal", randomize=False)[..., 0].astype(np.float32)
    pencil = sketchify(face, "pencil", randomize=False)[..., 0].astype(np.float32)
    hair = (slice(20, 30), slice(65, 85))
    assert charcoal[hair].mean() < pencil[hair].mean() - 10
    assert charcoal[:15, :15].mean() > 235


def test_pressure_draws_heavy_strokes_on_hair_and_outline_not_on_cheeks(face):
    out = sketchify(face, "pressure", randomize=False)[..., 0].astype(np.float32)
    assert (out > 200).mean() > 0.6  # mostly paper
    dark = out < 80
    # heavy (dark) strokes on the hair and the head's outline; the plain cheeks stay paper
    assert dark[10:40].mean() > 0.05 and dark[78:92, 50:100].mean() < 0.01


@pytest.mark.parametrize("style", ARTIST_STYLES)
def test_fast_enough_for_a_data_loader(face, style):
    rng = np.random.default_rng(0)
    sketchify(face, style, rng=rng)  # textures built and cached
    times = []
    for _ in range(7):
        t = time.perf_counter()
        sketchify(face, style, rng=rng)
        times.append(time.perf_counter() - t)
    assert np.median(times) < 0.05  # ~10 ms on one shared core; 50 ms leaves room for a busy machine


def test_caricature_zero_is_identity_and_positive_warps_mildly(face):
    assert exaggerate(face, 0.0) is face
    np.testing.assert_array_equal(sketchify(face, "pencil", randomize=False, caricature=0.0),
                                  sketchify(face, "pencil", randomize=False))
    warped = exaggerate(face, 1.0)
    assert warped.shape == face.shape and warped.dtype == np.uint8
    assert not np.array_equal(warped, face)
    np.testing.assert_array_equal(warped, exaggerate(face, 1.0))  # deterministic
    a = sketchify(face, "pressure", randomize=False, caricature=0.5)
    assert np.abs(a.astype(np.int16) - sketchify(face, "pressure", randomize=False)).mean() > 0.2


def _stripes(mouth_row: float, left: float, right: float, n: int = 150) -> np.ndarray:
    """A grey chip with a dark mouth line and bright face between dark sides at the given fractions."""
    img = np.full((n, n), 0.2, np.float32)
    img[:, int(left * n):int(right * n)] = 0.8
    img[int(mouth_row * n) - 1:int(mouth_row * n) + 2, int(0.4 * n):int(0.6 * n)] = 0.1
    return img


def test_measure_layout_finds_mouth_and_face_sides():
    lay = measure_layout(_stripes(0.72, 0.16, 0.86))
    assert lay.mouth_row == pytest.approx(0.72, abs=0.02)
    assert lay.left == pytest.approx(0.16, abs=0.02) and lay.right == pytest.approx(0.86, abs=0.02)


def test_exaggerate_moves_features_away_from_the_mean_by_strength_times_deviation():
    n = 150
    chip = np.repeat((_stripes(MEAN_MOUTH_ROW + 0.04, MEAN_LEFT - 0.03, 0.88) * 255).astype(np.uint8)[..., None], 3, 2)
    before = measure_layout(chip[..., 0] / 255.0)
    after = measure_layout(exaggerate(chip, 1.0)[..., 0] / 255.0)
    assert after.mouth_row > before.mouth_row + 0.02  # lower mouth: lower still
    assert after.left < before.left - 0.01  # wider face: wider still
    # a deviation beyond MAX_DEVIATION is exaggerated only by the clipped amount
    far = np.repeat((_stripes(0.79, MEAN_LEFT, 0.88) * 255).astype(np.uint8)[..., None], 3, 2)
    moved = measure_layout(exaggerate(far, 1.0)[..., 0] / 255.0).mouth_row - measure_layout(far[..., 0] / 255.0).mouth_row
    assert moved <= MAX_DEVIATION + 2.0 / n


def test_exaggerate_never_folds_and_rejects_strengths_outside_0_1(face):
    # features at the ends of their search bands, deviating the most: the warp stays monotone
    for lay in ((0.65, 0.08, 0.70), (0.80, 0.30, 0.92)):
        chip = np.repeat((_stripes(*lay) * 255).astype(np.uint8)[..., None], 3, 2)
        after = measure_layout(exaggerate(chip, 1.0)[..., 0] / 255.0)
        assert 0.0 < after.left < after.right < 1.0 and after.mouth_row > 0.585
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="strength"):
            sketchify(face, "pencil", randomize=False, caricature=bad)

