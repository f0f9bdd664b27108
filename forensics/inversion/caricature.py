"""Mild caricature of an aligned face chip, as sketch artists draw (FS2K's artists exaggerate).

A caricature exaggerates how a face differs from the average face. On a chip aligned with dlib's
5 points (`forensics.align`: eyes and nose base always land on the same pixels) what is left to
differ is measured from two 1-D profiles of the chip, which is cheap and needs no landmarks:

- the mouth row: the darkest row (the line between the lips) of a central strip below the nose;
- the face's sides: the strongest horizontal edges, left and right, across the cheeks.

`exaggerate` moves each of them further from the mean layout by ``strength`` times its deviation
(0.5: a face 4% wider than the mean is drawn 6% wider) with a smooth separable warp that keeps
the eyes and the nose base in place. Each measured deviation is clipped to `MAX_DEVIATION` (a
profile fooled by a beard or a backdrop edge cannot distort the face much). The warp is
resolution-independent (layout in chip fractions); photos that are not aligned chips get a
meaningless, though still mild, warp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics.inversion.sketch_filters import LUMA, blur

#: Mean layout of dlib's 150 px chip, in fractions of its side. Eye and nose-base rows follow from
#: `forensics.align.DLIB_5PT_TEMPLATE` (padding 0.25); the mouth row and the face's sides are the
#: medians of `measure_layout` over 118 aligned photo chips (60 LFW, 52 FS2K, 6 CUFS; 2026-12-02).
EYE_ROW = 0.313
NOSE_ROW = 0.585
MEAN_MOUTH_ROW = 0.700
MEAN_LEFT = 0.140
MEAN_RIGHT = 0.873
#: the most a measured position may deviate from the mean layout (fraction of the chip side)
MAX_DEVIATION = 0.06

# the search bands keep every exaggerated position (strength <= 1) strictly between its neighbours:
# the mouth below the nose base, the face sides inside the chip
_MOUTH_BAND = (0.65, 0.80)  # rows searched for the mouth line
_MOUTH_COLS = (0.42, 0.58)
_CHEEK_ROWS = (0.40, 0.63)
_SIDE_BANDS = ((0.08, 0.30), (0.70, 0.92))  # columns searched for the left and right face side


@dataclass(frozen=True)
class FaceLayout:
    """Where a chip's mouth line and face sides are, in fractions of the chip side."""

    mouth_row: float
    left: float
    right: float


def _argext(profile: np.ndarray, lo: float, hi: float, n: int, largest: bool) -> float:
    """The fractional position, in [lo, hi) of a profile of length n, of its largest or smallest value."""
    a, b = int(lo * n), max(int(lo * n) + 1, int(hi * n))
    seg = profile[a:b]
    return (a + int(np.argmax(seg) if largest else np.argmin(seg)) + 0.5) / n


def measure_layout(grey: np.ndarray) -> FaceLayout:
    """The mouth row and the face's sides of an aligned chip, float (H, W) grey."""
    h, w = grey.shape
    smooth = blur(grey, 0.012 * h)
    strip = smooth[:, int(_MOUTH_COLS[0] * w):int(_MOUTH_COLS[1] * w)].mean(axis=1)
    mouth = _argext(strip, *_MOUTH_BAND, h, largest=False)
    edges = np.abs(np.diff(smooth[int(_CHEEK_ROWS[0] * h):int(_CHEEK_ROWS[1] * h)], axis=1)).mean(axis=0)
    edges = np.append(edges, 0.0)  # the edge between x and x+1, at x
    left = _argext(edges, *_SIDE_BANDS[0], w, largest=True)
    right = _argext(edges, *_SIDE_BANDS[1], w, largest=True)
    return FaceLayout(mouth, left, right)


def _deviation(measured: float, mean: float) -> float:
    return float(np.clip(measured - mean, -MAX_DEVIATION, MAX_DEVIATION))


def _source_coords(out_anchors: list[float], src_anchors: list[float], n: int) -> np.ndarray:
    """Source pixel coordinate of every output pixel along one axis: piecewise linear through the
    anchors (fractions), then smoothed (a smooth warp, no kinks)."""
    x = (np.arange(n, dtype=np.float32) + 0.5) / n
    disp = np.interp(x, out_anchors, src_anchors).astype(np.float32) - x
    disp = blur(disp[None, :], 0.0, 0.04 * n)[0]
    return np.clip((x + disp) * n - 0.5, 0.0, n - 1.0)


def _resample(img: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``img`` (H, W, C) float at fractional indices ``coords`` along ``axis``."""
    i0 = np.floor(coords).astype(np.int64)
    i1 = np.minimum(i0 + 1, img.shape[axis] - 1)
    t = (coords - i0).astype(np.float32)
    shape = [1, 1, 1]
    shape[axis] = -1
    t = t.reshape(shape)
    return np.take(img, i0, axis=axis) * (1.0 - t) + np.take(img, i1, axis=axis) * t


def exaggerate(photo: np.ndarray, strength: float) -> np.ndarray:
    """The aligned chip ``photo`` ((H, W, 3) uint8) warped so that its mouth row and face sides move
    ``strength`` (0..1) times their deviation further from the mean layout; 0 returns it as is."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"caricature strength must be in [0, 1], not {strength}")
    if strength == 0.0:
        return photo
    h, w = photo.shape[:2]
    lay = measure_layout(photo.astype(np.float32) @ LUMA / 255.0)
    dm = strength * _deviation(lay.mouth_row, MEAN_MOUTH_ROW)
    dl = strength * _deviation(lay.left, MEAN_LEFT)
    dr = strength * _deviation(lay.right, MEAN_RIGHT)
    # output anchor (where a feature is drawn) -> source anchor (where it is in the photo)
    ys = _source_coords([0.0, EYE_ROW, NOSE_ROW, lay.mouth_row + dm, 1.0],
                        [0.0, EYE_ROW, NOSE_ROW, lay.mouth_row, 1.0], h)
    xs = _source_coords([0.0, lay.left + dl, 0.5, lay.right + dr, 1.0],
                        [0.0, lay.left, 0.5, lay.right, 1.0], w)
    out = _resample(_resample(photo.astype(np.float32), ys, 0), xs, 1)
    return (out + 0.5).astype(np.uint8)
