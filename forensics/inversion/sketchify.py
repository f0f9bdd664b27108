"""Synthesize training sketches from aligned face photos.

Convolutional Sketch Inversion (Güçlütürk et al. 2016) is trained on photos paired with
*synthetic* sketches in three styles; this module produces them:

``line``
    XDoG edge stylization (Winnemöller et al. 2012): thin dark strokes on white paper.
``pencil``
    greyscale pencil sketch: colour dodge of the greyscale image with its inverted blurred
    copy (``grey / blur(grey)``) for the strokes, multiplied with a hatched shading layer
    derived from the image tone, on lightly textured paper.
``colour``
    colour pencil sketch: the pencil luminance with the (desaturated, softened) colour of the
    photo laid over it.

With ``randomize=True`` (the default) the things real artists vary are drawn from ``rng``:
stroke weight, contrast/gamma, amount of shading, hatching direction, paper texture, blur,
JPEG re-compression quality and a small misalignment (shift ±3 px, rotation ±3°, scale ±4 %).
``randomize=False`` gives one deterministic, canonical rendering.

Everything is numpy + PIL. Gaussian blurs are done as two small dense matrix products
(``Gh @ X @ Gw.T``, with reflect padding folded into the cached matrices), which costs the
same for any sigma and keeps a 150x150 sketch at a few milliseconds on one CPU core, so the
function can run on the fly in data loaders.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["STYLES", "sketchify", "sketchify_file"]

STYLES = ("line", "pencil", "colour")

_STYLE_ALIASES = {"color": "colour", "grey": "pencil", "gray": "pencil", "greyscale": "pencil"}


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _gauss_matrix(n: int, sigma_q: int) -> np.ndarray:
    """Dense (n, n) Gaussian blur operator with half-sample symmetric ('reflect') borders.

    ``sigma_q`` is sigma in hundredths of a pixel (quantized so the cache gets hits).
    """
    sigma = sigma_q / 100.0
    i = np.arange(n, dtype=np.float32)[:, None]
    j = np.arange(n, dtype=np.float32)[None, :]
    c = np.float32(-0.5 / (sigma * sigma))
    # direct tap + the two mirror images of tap j about the borders (-0.5 and n-0.5)
    m = np.exp(c * (j - i) ** 2) + np.exp(c * (-1.0 - j - i) ** 2) + np.exp(c * (2 * n - 1.0 - j - i) ** 2)
    m /= m.sum(axis=1, keepdims=True)
    m.setflags(write=False)
    return m.astype(np.float32, copy=False)


def _blur(x: np.ndarray, sigma: float, sigma_x: float | None = None) -> np.ndarray:
    """Gaussian blur of a float32 (H, W) or (C, H, W) array (sigma_x: other sigma along W)."""
    sy = float(sigma)
    sx = sy if sigma_x is None else float(sigma_x)
    h, w = x.shape[-2:]
    out = x
    if sy >= 0.2:
        out = _gauss_matrix(h, int(round(sy * 100))) @ out
    if sx >= 0.2:
        out = out @ _gauss_matrix(w, int(round(sx * 100))).T
    return out


def _luma(rgb: np.ndarray) -> np.ndarray:
    """float32 [0,1] (H, W, 3) -> (H, W) Rec.601 luma."""
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _upsampled_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth low-frequency noise (zero mean, ~unit std) via bicubic upsampling of a small grid."""
    small = rng.standard_normal((cells, cells)).astype(np.float32)
    img = Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def _hatch_texture(rng: np.random.Generator, h: int, w: int, angle: float, length: float) -> np.ndarray:
    """Pencil-hatching-like texture in ~[-1, 1]: white noise smeared along one direction."""
    d = int(np.ceil(np.hypot(h, w))) + 2
    noise = rng.standard_normal((d, d)).astype(np.float32)
    streaks = _blur(noise, 0.5, length)  # long along x, thin along y
    streaks *= 1.0 / (streaks.std() + 1e-6)
    img = Image.fromarray(streaks, mode="F").rotate(angle, resample=Image.BILINEAR)
    top, left = (d - h) // 2, (d - w) // 2
    return np.clip(np.asarray(img, dtype=np.float32)[top : top + h, left : left + w] * 0.5, -1.0, 1.0)


def _affine(x: np.ndarray, shift: tuple[float, float], angle_deg: float, scale: float) -> np.ndarray:
    """Small similarity transform about the centre of a float32 [0,1] (H, W[, C]) sketch.

    Uncovered borders become paper white.
    """
    h, w = x.shape[:2]
    a = np.deg2rad(angle_deg)
    cos, sin = np.cos(a) / scale, np.sin(a) / scale
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    dx, dy = shift
    # inverse map: output (u, v) -> input (x, y)
    coeffs = (
        cos,
        sin,
        cx - cos * (cx + dx) - sin * (cy + dy),
        -sin,
        cos,
        cy + sin * (cx + dx) - cos * (cy + dy),
    )
    chans = [x] if x.ndim == 2 else [x[..., c] for c in range(x.shape[2])]
    out = []
    for ch in chans:
        # transform 1 - x so that the zero fill is white paper
        img = Image.fromarray(np.ascontiguousarray(1.0 - ch), mode="F")
        img = img.transform((w, h), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=0.0)
        out.append(1.0 - np.asarray(img, dtype=np.float32))
    return out[0] if x.ndim == 2 else np.stack(out, axis=-1)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _jpeg(rgb8: np.ndarray, quality: int, grey: bool) -> np.ndarray:
    buf = io.BytesIO()
    img = Image.fromarray(rgb8[..., 0] if grey else rgb8)
    img.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    out = np.asarray(Image.open(buf).convert("RGB"))
    return out


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------

# canonical values (randomize=False) and the ranges drawn from when randomizing
_CANON = {
    "line": dict(sigma=0.9, k=1.6, tau=0.985, eps=0.0, phi=60.0, gamma=1.0),
    "pencil": dict(sigma=5.0, shade=0.45, tone_sigma=1.5, hatch=0.55, hatch_len=5.0, gamma=1.0),
    "colour": dict(sigma=5.0, shade=0.35, tone_sigma=1.5, hatch=0.5, hatch_len=5.0, gamma=1.0, sat=0.55),
}


def _draw_params(style: str, rng: np.random.Generator, scale: float) -> dict:
    u = rng.uniform
    if style == "line":
        return dict(
            sigma=u(0.6, 1.3) * scale,
            k=1.6,
            tau=u(0.975, 0.992),
            eps=u(-0.005, 0.01),
            phi=u(50.0, 120.0),
            gamma=u(0.75, 1.3),
        )
    p = dict(
        sigma=u(3.0, 8.0) * scale,
        shade=u(0.2, 0.7),
        tone_sigma=u(0.8, 2.5) * scale,
        hatch=u(0.3, 0.8),
        hatch_len=u(3.0, 8.0) * scale,
        gamma=u(0.8, 1.25),
    )
    if style == "colour":
        p["sat"] = u(0.25, 0.65)
        p["shade"] *= 0.8
    return p


# --------------------------------------------------------------------------------------------
# styles
# --------------------------------------------------------------------------------------------


def _xdog(grey: np.ndarray, p: dict) -> np.ndarray:
    """XDoG (Winnemöller et al. 2012): soft-thresholded difference of Gaussians."""
    g1 = _blur(grey, p["sigma"])
    g2 = _blur(grey, p["sigma"] * p["k"])
    d = g1 - p["tau"] * g2
    e = p["eps"]
    out = np.where(d >= e, 1.0, 1.0 + np.tanh(p["phi"] * (d - e)))
    return out.astype(np.float32, copy=False)


def _background(rgb: np.ndarray, grey: np.ndarray, scale: float) -> np.ndarray:
    """Soft (H, W) weight in [0, 1] of "this is plain backdrop, the artist leaves it white".

    Aligned face crops have backdrop in the two top corners: pixels whose smoothed colour is
    close to a (uniform) corner colour and whose surroundings are untextured count as backdrop.
    Hair of the same colour survives because it is textured.
    """
    h, w = grey.shape
    s = max(scale, 0.5)
    smooth = np.moveaxis(_blur(np.moveaxis(rgb, -1, 0), s), 0, -1)
    sg = _luma(smooth)  # texture of the smoothed image: ignore pixel noise / JPEG grain
    m1 = _blur(sg, 3.0 * s)
    m2 = _blur(sg * sg, 3.0 * s)
    local_std = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    flat = np.clip(1.5 - local_std * 25.0, 0.0, 1.0)  # std < .02 flat, > .06 textured
    # compare chromaticity tightly and brightness loosely: backdrops are rarely evenly lit
    chrom = smooth / (smooth.sum(axis=-1, keepdims=True) + 0.05)
    k = max(4, int(round(0.1 * min(h, w))))
    sim = np.zeros((h, w), dtype=np.float32)
    for sl in ((slice(0, k), slice(0, k)), (slice(0, k), slice(w - k, w))):
        patch = rgb[sl].reshape(-1, 3)
        colour = np.median(patch, axis=0).astype(np.float32)
        spread = float(np.mean(np.abs(patch - colour)))
        conf = float(np.clip(2.0 - spread * 25.0, 0.0, 1.0))  # uniform corner -> trust it
        if conf <= 0.0:
            continue
        c_chrom = colour / (colour.sum() + 0.05)
        c_luma = float(colour @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
        d2 = np.sum((chrom - c_chrom) ** 2, axis=-1) * np.float32(1.0 / 0.04**2)
        d2 += (sg - c_luma) ** 2 * np.float32(1.0 / 0.15**2)
        sim = np.maximum(sim, conf * np.exp(-0.5 * d2))
    # the face itself is never backdrop (aligned crops: it sits in the middle)
    yy = (np.arange(h, dtype=np.float32)[:, None] - 0.52 * h) / (0.36 * h)
    xx = (np.arange(w, dtype=np.float32)[None, :] - 0.5 * w) / (0.32 * w)
    sim *= np.clip((np.sqrt(yy * yy + xx * xx) - 0.8) * 2.0, 0.0, 1.0)
    bg = sim * flat
    # flatness drops next to the silhouette; let backdrop-coloured pixels near confident
    # backdrop join it (one step of region growing) so no tinted halo is left around the head
    grown = np.clip(_blur(bg, 3.0 * s) * 2.5, 0.0, 1.0)
    return np.maximum(bg, sim * grown)


def _pencil(
    grey: np.ndarray, p: dict, rng: np.random.Generator | None, angle: float, bg: np.ndarray
) -> np.ndarray:
    """Colour-dodge strokes x hatched tonal shading."""
    g = _blur(grey, 0.6)  # tame sensor/JPEG noise that the dodge would amplify
    blurred = _blur(g, p["sigma"])
    # colour dodge of grey with inverted blurred grey: grey / (1 - (1 - blurred)), with a small
    # offset so that noise in dark regions is not blown up into speckle
    strokes = np.minimum((g + 0.04) / (blurred + 0.04), 1.0)
    strokes = 1.0 - (1.0 - strokes) * (1.0 - 0.85 * bg)
    # tone: smoothed darkness of the photo, compressed so skin stays light and hair/shadows dark
    tone = _blur(grey, p["tone_sigma"])
    # no shading on the backdrop, nor in the band where the silhouette blends into it
    near_bg = np.maximum(bg, np.clip(_blur(bg, 0.6 * p["halo"]) * 2.0, 0.0, 1.0))
    dark = np.clip(1.0 - tone, 0.0, 1.0) ** 1.6 * (1.0 - near_bg)
    if p["hatch"] > 0:
        if rng is None:
            tex = _hatch_texture(np.random.default_rng(0), *grey.shape, angle, p["hatch_len"])
        else:
            tex = _hatch_texture(rng, *grey.shape, angle, p["hatch_len"])
        dark = dark * (1.0 + p["hatch"] * tex)
    shading = 1.0 - p["shade"] * np.clip(dark, 0.0, 1.5)
    return (strokes * shading).astype(np.float32, copy=False)


def _colourize(rgb: np.ndarray, grey: np.ndarray, lum: np.ndarray, p: dict, bg: np.ndarray) -> np.ndarray:
    """Lay the photo's desaturated, softened chroma over the pencil luminance ``lum``."""
    chroma = rgb - grey[..., None]
    chroma = _blur(np.moveaxis(chroma, -1, 0), 1.0)
    chroma = np.moveaxis(chroma, 0, -1)
    # colour pencil only deposits colour where there is some pencil: fade it on white paper
    # ... and none on the backdrop, nor in the blended band along the silhouette
    near_bg = np.maximum(bg, np.clip(_blur(bg, p["halo"]) * 2.0, 0.0, 1.0))
    cover = np.clip((1.0 - lum) * 3.0 + 0.35, 0.0, 1.0) * (1.0 - near_bg)
    return lum[..., None] + p["sat"] * cover[..., None] * chroma


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def sketchify(
    photo: np.ndarray,
    style: str,
    rng: np.random.Generator | None = None,
    randomize: bool = True,
) -> np.ndarray:
    """Turn an aligned face photo into a synthetic sketch.

    Args:
        photo: (H, W, 3) uint8 RGB (a (H, W) greyscale array is accepted too).
        style: one of :data:`STYLES` ("line", "pencil", "colour").
        rng: numpy Generator for the random variation; ``None`` with ``randomize=True``
            uses fresh OS entropy. Same seed -> same sketch.
        randomize: ``False`` gives the deterministic canonical rendering (``rng`` ignored).

    Returns:
        (H, W, 3) uint8 RGB sketch (line and pencil are grey, R = G = B).
    """
    style = _STYLE_ALIASES.get(style, style)
    if style not in STYLES:
        raise ValueError(f"unknown sketch style {style!r}; expected one of {STYLES}")
    photo = np.asarray(photo)
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    if photo.ndim != 3 or photo.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {photo.shape}")
    photo = photo[..., :3]
    if photo.dtype != np.uint8:
        photo = np.clip(photo, 0, 255).astype(np.uint8)

    h, w = photo.shape[:2]
    # parameters are tuned for ~200-250 px aligned faces; scale stroke sizes with the image
    scale = float(np.clip(min(h, w) / 200.0, 0.4, 4.0))

    if randomize:
        rng = np.random.default_rng() if rng is None else rng
        p = _draw_params(style, rng, scale)
        angle = float(rng.choice([30.0, 45.0, 60.0, 120.0, 135.0, 150.0]) + rng.uniform(-10, 10))
    else:
        rng = None
        p = dict(_CANON[style])
        for key in ("sigma", "tone_sigma", "hatch_len"):
            if key in p:
                p[key] *= scale
        angle = 45.0

    rgb = photo.astype(np.float32) * np.float32(1.0 / 255.0)
    grey = _luma(rgb)

    if randomize:
        # photo-level variation the artist would not copy: slight exposure/contrast change
        c = rng.uniform(0.85, 1.15)
        b = rng.uniform(-0.05, 0.05)
        grey = np.clip((grey - 0.5) * c + 0.5 + b, 0.0, 1.0)

    bg = _background(rgb, grey, scale)
    if style == "line":
        out = _xdog(grey, p)
        out = 1.0 - (1.0 - out) * (1.0 - 0.85 * bg)
    else:
        p["halo"] = 2.5 * scale
        out = _pencil(grey, p, rng, angle, bg)
        if style == "colour":
            out = _colourize(rgb, grey, out, p, bg)

    # stroke/contrast variation
    out = np.clip(out, 0.0, 1.0)
    if p["gamma"] != 1.0:
        out = out ** np.float32(p["gamma"])

    grey_out = out.ndim == 2
    if randomize:
        # soften strokes (pencil vs. fine liner, scanning blur)
        if rng.random() < 0.5:
            bs = rng.uniform(0.3, 0.9) * scale
            out = _blur(out, bs) if grey_out else np.moveaxis(_blur(np.moveaxis(out, -1, 0), bs), 0, -1)
        # misalignment between photo and sketch
        out = _affine(
            out,
            (rng.uniform(-3, 3), rng.uniform(-3, 3)),
            rng.uniform(-3, 3),
            rng.uniform(0.96, 1.04),
        )
        # paper: tone, low-frequency blotches and fine grain
        paper_tone = rng.uniform(0.0, 0.12) if rng.random() < 0.35 else rng.uniform(0.0, 0.03)
        blotch = _upsampled_noise(rng, h, w, 6) * rng.uniform(0.0, 0.03)
        grain = rng.standard_normal((h, w)).astype(np.float32)
        grain = _blur(grain, rng.uniform(0.4, 0.9)) * rng.uniform(0.01, 0.05)
        paper = (1.0 - paper_tone) * (1.0 + blotch + grain)
        out = out * (paper if grey_out else paper[..., None])

    out8 = _to_uint8(out)
    if grey_out:
        out8 = np.repeat(out8[..., None], 3, axis=2)

    if randomize and rng.random() < 0.75:
        out8 = _jpeg(out8, int(rng.integers(35, 96)), grey=grey_out)
    return np.ascontiguousarray(out8)


def sketchify_file(src: Path, dst: Path, style: str, seed: int | None) -> Path:
    """Read a photo, synthesize a sketch, write it to ``dst`` (format from the extension).

    ``seed=None`` writes the deterministic canonical sketch; an integer seed writes a
    randomized one that is reproducible for that seed.
    """
    src, dst = Path(src), Path(dst)
    photo = np.asarray(Image.open(src).convert("RGB"))
    if seed is None:
        sketch = sketchify(photo, style, randomize=False)
    else:
        sketch = sketchify(photo, style, rng=np.random.default_rng(seed), randomize=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sketch).save(dst)
    return dst
