"""Where the photo is plain backdrop, which artists leave white (`forensics.inversion.sketchify`):
a cheap low-resolution estimate from the colour of the two top corners, untextured, away from the
face, plus the black fill that rotating/alignment tools leave at the borders."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from forensics.inversion.sketch_filters import LUMA, blur, f32


def _border_fill(mask: np.ndarray) -> np.ndarray:
    """Pixels of boolean ``mask`` reachable from a border along an unbroken row or column run.

    Alignment fill (the wedges left by rotating a photo) is convex along the borders, so the
    four leading runs cover it; this is far cheaper than a flood fill.
    """
    m = mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8)
    out = np.cumprod(m, axis=1, dtype=np.uint8)
    out |= np.cumprod(m[:, ::-1], axis=1, dtype=np.uint8)[:, ::-1]
    out |= np.cumprod(m, axis=0, dtype=np.uint8)
    out |= np.cumprod(m[::-1], axis=0, dtype=np.uint8)[::-1]
    return out.astype(bool)


def _alignment_fill(arr: np.ndarray) -> np.ndarray | None:
    """Black fill left by rotating/alignment tools, connected to the border (full resolution: the
    wedges can be a pixel or two wide); None when there is none."""
    h, w = arr.shape[:2]
    border = (arr[0], arr[-1], arr[:, 0], arr[:, -1])
    if min(int(b.max(axis=1).min()) for b in border) > 4:
        return None
    # fill is ~0 with sparse JPEG ringing; even the darkest hair is a few levels brighter
    maxc = np.maximum(np.maximum(arr[..., 0], arr[..., 1]), arr[..., 2])
    dark = np.asarray(Image.fromarray(maxc).filter(ImageFilter.BoxBlur(1))) <= 4
    fill = _border_fill(dark)
    if fill.sum() < 0.002 * h * w:
        return None  # a few dark pixels at the border: just a dark photo
    return fill


def _flatness(grey: np.ndarray) -> np.ndarray:
    """1 where the image is untextured (local std < .02), 0 where textured (> .06)."""
    m1 = blur(grey, 1.0)
    m2 = blur(grey * grey, 1.0)
    local_std = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    return np.clip(1.5 - local_std * 25.0, 0.0, 1.0)


def _corner_similarity(rgb: np.ndarray, grey: np.ndarray, fill: np.ndarray) -> tuple[np.ndarray, float]:
    """How close every pixel is to the colour of a uniform top corner (chromaticity tight,
    brightness loose), and the summed confidence (0..2) that the two top corners are plain backdrop."""
    sh, sw = grey.shape
    chrom = rgb / (rgb.sum(axis=-1, keepdims=True) + 0.05)
    k = max(2, int(round(0.1 * min(sh, sw))))
    regions = ((slice(0, k), slice(0, k)), (slice(0, k), slice(sw - k, sw)))  # top corners
    sim = np.zeros((sh, sw), dtype=np.float32)
    top_conf = 0.0
    for region in regions:
        patch = rgb[region][~fill[region]]  # (n, 3), ignoring black alignment fill
        if len(patch) < 4:
            top_conf += 1.0  # a corner all alignment fill: plain backdrop
            continue
        colour = np.median(patch, axis=0).astype(np.float32)
        spread = float(np.mean(np.abs(patch - colour)))
        conf = float(np.clip(2.0 - spread * 25.0, 0.0, 1.0))  # uniform corner -> trust it
        top_conf += conf
        if conf <= 0.0:
            continue
        c_chrom = colour / (colour.sum() + 0.05)
        d2 = np.sum((chrom - c_chrom) ** 2, axis=-1) * np.float32(1.0 / 0.04**2)
        d2 += (grey - float(colour @ LUMA)) ** 2 * np.float32(1.0 / 0.15**2)
        sim = np.maximum(sim, conf * np.exp(-0.5 * d2))
    return sim, top_conf


def face_radius(sh: int, sw: int) -> np.ndarray:
    """Normalised distance from the central face ellipse's centre (aligned crops: the face is in the middle)."""
    yy = (np.arange(sh, dtype=np.float32)[:, None] - 0.52 * sh) / (0.36 * sh)
    xx = (np.arange(sw, dtype=np.float32)[None, :] - 0.5 * sw) / (0.32 * sw)
    return np.sqrt(yy * yy + xx * xx)


def _clutter_fade(sh: int, sw: int) -> np.ndarray:
    """Fading towards the top and side borders, sparing head, hair and shoulders."""
    yy = (np.arange(sh, dtype=np.float32)[:, None] - 0.5 * sh) / (0.52 * sh)
    yy = np.where(yy > 0.0, 0.45 * yy, yy)
    xx = (np.arange(sw, dtype=np.float32)[None, :] - 0.5 * sw) / (0.42 * sw)
    return np.clip((np.sqrt(yy * yy + xx * xx) - 1.0) * 2.5, 0.0, 0.9)


def background(photo: Image.Image, halo: float, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Soft weights in [0, 1] of "plain backdrop" (the artist leaves it white).

    Returns ``(bg, near_bg, face_level)``: masks at full resolution (``bg``: how much to fade
    strokes, ``near_bg``: where to drop shading and colour, which also covers the band where the
    silhouette blends into the backdrop) and the median brightness of the central
    face region. Computed at 1/f resolution (the mask is smooth).
    Backdrop = colour close to a uniform top corner (chromaticity tight, brightness loose, so
    uneven lighting is fine), untextured, and outside the central face ellipse; backdrop-coloured
    pixels next to confident backdrop join it (one region-growing step). Pure black fill left by
    rotating/alignment tools (CUFS, deep-funneled LFW) is erased.
    """
    w, h = photo.size
    f = max(1, int(round(min(w, h) / 50.0)))
    fill_full = _alignment_fill(arr)
    rgb = f32(photo.reduce(f) if f > 1 else photo)
    sh, sw = rgb.shape[:2]
    grey = rgb @ LUMA
    if fill_full is None:
        fill = np.zeros((sh, sw), dtype=bool)
    else:
        fill = np.asarray(Image.fromarray(fill_full.astype(np.uint8) * 255).reduce(f)) > 127 if f > 1 else fill_full
    sim, top_conf = _corner_similarity(rgb, grey, fill)
    r = face_radius(sh, sw)
    sim *= np.clip((r - 0.8) * 2.0, 0.0, 1.0)  # the face itself is never backdrop
    face_level = float(np.median(grey[r < 0.6])) if np.any(r < 0.6) else float(np.median(grey))
    bg = sim * _flatness(grey)
    if fill.any():
        bg = np.maximum(bg, fill.astype(np.float32))
    bg = np.maximum(bg, sim * np.clip(blur(bg, 3.0 / f) * 2.5, 0.0, 1.0))
    clutter = 1.0 - top_conf / 2.0
    if clutter > 0.0:
        # cluttered backdrop (top corners not plain): artists leave it out all the same
        bg = np.maximum(bg, clutter * _clutter_fade(sh, sw))
    near = np.maximum(bg, np.clip(blur(bg, halo / f) * 2.0, 0.0, 1.0))
    if f > 1:
        bg, near = (
            np.asarray(Image.fromarray(m, mode="F").resize((w, h), Image.BILINEAR), dtype=np.float32)
            for m in (bg, near)
        )
    # strokes on a backdrop are faded, not erased (an artist's outline of the shoulders, a stray
    # line); alignment fill is not part of the picture at all: erase it and a 2-3 px margin
    bg = 0.85 * bg
    if fill_full is not None:
        fillw = np.clip(blur(fill_full.astype(np.float32), 1.5) * 3.0, 0.0, 1.0)
        bg = np.maximum(bg, fillw)
        near = np.maximum(near, fillw)
    return bg, near, face_level
