"""Synthesize training sketches from aligned face photos.

Convolutional Sketch Inversion (Güçlütürk et al. 2016) is trained on face photos paired with
*synthetic* sketches in three styles; this module makes them:

``line``
    XDoG edge stylization (Winnemöller et al. 2012): a soft-thresholded difference of
    Gaussians gives thin dark strokes on white paper (hair comes out as strands).
``pencil``
    greyscale pencil sketch: the colour dodge of the greyscale image with its inverted,
    blurred copy (``grey / blur(grey)``) draws the strokes; a shading layer (the smoothed
    darkness of the photo, broken up by a directional hatching texture) is multiplied in.
``colour``
    colour pencil sketch: the pencil luminance with the photo's desaturated, softened colour
    laid over it (only where pencil went, not on the backdrop).

Real artists leave the backdrop white: a cheap low-resolution estimate of the plain backdrop
(colour of the two top corners, untextured, away from the face) fades strokes, shading and
colour there.

With ``randomize=True`` (default) what artists vary is drawn from ``rng``: stroke weight
(sigma), XDoG threshold sharpness, contrast/gamma, amount of shading and hatching (direction,
length), paper tone/blotches/grain, blur, JPEG re-compression at a random quality, and a small
misalignment (shift ±3 px, rotation ±3°, scale ±4 %). ``randomize=False`` gives one
deterministic canonical rendering.

Only numpy and PIL are used, and the per-image work is kept to a few dozen whole-image
operations (8-bit PIL blurs where 8 bits suffice, exact separable numpy blurs for XDoG, cached
hatching/grain textures, low-resolution backdrop mask), so it can run on the fly in data
loaders: a few milliseconds for a 150x150 face on one core.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageFilter

__all__ = ["STYLES", "sketchify", "sketchify_file"]

STYLES = ("line", "pencil", "colour")

_STYLE_ALIASES = {"color": "colour", "grey": "pencil", "gray": "pencil", "greyscale": "pencil"}

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# canonical parameters (randomize=False); sizes are for a ~200 px face and scale with the image
_CANON = {
    "line": dict(sigma=0.9, k=1.6, tau=0.985, eps=0.0, phi=70.0, gamma=1.0),
    "pencil": dict(sigma=5.0, shade=0.55, tone_sigma=1.5, hatch=0.55, gamma=1.0),
    "colour": dict(sigma=5.0, shade=0.35, tone_sigma=1.5, hatch=0.5, gamma=1.0, sat=0.5),
}

_HATCH_ANGLES = (30.0, 45.0, 60.0, 75.0, 105.0, 120.0, 135.0, 150.0)
_HATCH_LENGTHS = (3.5, 7.0)


# --------------------------------------------------------------------------------------------
# blurs and textures
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _kernel(sigma_q: int) -> np.ndarray:
    sigma = sigma_q / 100.0
    r = max(1, int(np.ceil(2.5 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1, dtype=np.float64) / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _blur_axis(x: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    if sigma < 0.2:
        return x
    k = _kernel(int(round(sigma * 100)))
    r = len(k) // 2
    n = x.shape[axis]
    if r >= n:  # tiny image: fall back to numpy's general padding
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        p = np.pad(x, pad, mode="symmetric")
    else:  # half-sample symmetric padding, cheaper than np.pad
        head = np.flip(np.take(x, np.arange(r), axis=axis), axis=axis)
        tail = np.flip(np.take(x, np.arange(n - r, n), axis=axis), axis=axis)
        p = np.concatenate([head, x, tail], axis=axis)
    idx = [slice(None)] * x.ndim

    def tap(i: int) -> np.ndarray:
        idx[axis] = slice(i, i + n)
        return p[tuple(idx)]

    # symmetric kernel: pair taps i and 2r - i
    out = tap(r) * k[r]
    for i in range(r):
        out += (tap(i) + tap(2 * r - i)) * k[i]
    return out


def _blur(x: np.ndarray, sigma: float, sigma_x: float | None = None) -> np.ndarray:
    """Exact float Gaussian blur of (..., H, W) with half-sample-symmetric borders."""
    return _blur_axis(_blur_axis(x, sigma, x.ndim - 2), sigma if sigma_x is None else sigma_x, x.ndim - 1)


def _pil_blur(img: Image.Image, sigma: float) -> Image.Image:
    """8-bit Gaussian blur; large sigmas are done at reduced resolution (same look, cheaper)."""
    if sigma < 0.3:
        return img
    f = 4 if sigma >= 6.0 else 2 if sigma >= 3.0 else 1
    if f == 1:
        return img.filter(ImageFilter.GaussianBlur(sigma))
    w, h = img.size
    small = img.reduce(f).filter(ImageFilter.GaussianBlur(sigma / f))
    return small.resize((w, h), Image.BILINEAR)


def _f32(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) * np.float32(1.0 / 255.0)


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _bucket(n: int) -> int:
    return int(64 * np.ceil((n + 24) / 64.0))


@lru_cache(maxsize=4)
def _hatch_bank(size: int) -> np.ndarray:
    """(angles, lengths, size, size) pencil-hatching textures in [-1, 1], built once per size.

    White noise smeared along one direction, rotated. Deterministic (fixed seed); per image a
    random crop/flip is taken from it, which is cheap and reproducible from the caller's rng.
    """
    gen = np.random.default_rng(20160523)
    d = int(np.ceil(size * 1.42)) + 4
    top = (d - size) // 2
    bank = np.empty((len(_HATCH_ANGLES), len(_HATCH_LENGTHS), size, size), dtype=np.float32)
    for li, length in enumerate(_HATCH_LENGTHS):
        for ai, angle in enumerate(_HATCH_ANGLES):
            noise = gen.standard_normal((d, d)).astype(np.float32)
            streaks = _blur(noise, 0.6, length)
            streaks /= streaks.std() + 1e-6
            rot = Image.fromarray(streaks, mode="F").rotate(angle, resample=Image.BILINEAR)
            crop = np.asarray(rot, dtype=np.float32)[top : top + size, top : top + size]
            bank[ai, li] = np.clip(crop * 0.5, -1.0, 1.0)
    bank.setflags(write=False)
    return bank


@lru_cache(maxsize=4)
def _grain_bank(size: int) -> np.ndarray:
    """(2, size, size) paper grain (fine and coarser), zero mean, unit std, built once."""
    gen = np.random.default_rng(19871209)
    out = np.empty((2, size, size), dtype=np.float32)
    for i, s in enumerate((0.5, 1.0)):
        g = _blur(gen.standard_normal((size, size)).astype(np.float32), s)
        out[i] = g / (g.std() + 1e-6)
    out.setflags(write=False)
    return out


def _crop(bank2d: np.ndarray, h: int, w: int, rng: np.random.Generator | None) -> np.ndarray:
    s = bank2d.shape[0]
    if rng is None:
        return bank2d[:h, :w]
    y, x = int(rng.integers(0, s - h + 1)), int(rng.integers(0, s - w + 1))
    t = bank2d[y : y + h, x : x + w]
    return t[::-1] if rng.random() < 0.5 else t


# --------------------------------------------------------------------------------------------
# backdrop mask
# --------------------------------------------------------------------------------------------


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
    m1 = _blur(grey, 1.0)
    m2 = _blur(grey * grey, 1.0)
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
        d2 += (grey - float(colour @ _LUMA)) ** 2 * np.float32(1.0 / 0.15**2)
        sim = np.maximum(sim, conf * np.exp(-0.5 * d2))
    return sim, top_conf


def _face_radius(sh: int, sw: int) -> np.ndarray:
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


def _background(photo: Image.Image, halo: float, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
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
    rgb = _f32(photo.reduce(f) if f > 1 else photo)
    sh, sw = rgb.shape[:2]
    grey = rgb @ _LUMA
    if fill_full is None:
        fill = np.zeros((sh, sw), dtype=bool)
    else:
        fill = np.asarray(Image.fromarray(fill_full.astype(np.uint8) * 255).reduce(f)) > 127 if f > 1 else fill_full
    sim, top_conf = _corner_similarity(rgb, grey, fill)
    r = _face_radius(sh, sw)
    sim *= np.clip((r - 0.8) * 2.0, 0.0, 1.0)  # the face itself is never backdrop
    face_level = float(np.median(grey[r < 0.6])) if np.any(r < 0.6) else float(np.median(grey))
    bg = sim * _flatness(grey)
    if fill.any():
        bg = np.maximum(bg, fill.astype(np.float32))
    bg = np.maximum(bg, sim * np.clip(_blur(bg, 3.0 / f) * 2.5, 0.0, 1.0))
    clutter = 1.0 - top_conf / 2.0
    if clutter > 0.0:
        # cluttered backdrop (top corners not plain): artists leave it out all the same
        bg = np.maximum(bg, clutter * _clutter_fade(sh, sw))
    near = np.maximum(bg, np.clip(_blur(bg, halo / f) * 2.0, 0.0, 1.0))
    if f > 1:
        bg, near = (
            np.asarray(Image.fromarray(m, mode="F").resize((w, h), Image.BILINEAR), dtype=np.float32)
            for m in (bg, near)
        )
    # strokes on a backdrop are faded, not erased (an artist's outline of the shoulders, a stray
    # line); alignment fill is not part of the picture at all: erase it and a 2-3 px margin
    bg = 0.85 * bg
    if fill_full is not None:
        fillw = np.clip(_blur(fill_full.astype(np.float32), 1.5) * 3.0, 0.0, 1.0)
        bg = np.maximum(bg, fillw)
        near = np.maximum(near, fillw)
    return bg, near, face_level


# --------------------------------------------------------------------------------------------
# styles
# --------------------------------------------------------------------------------------------


def _draw_params(style: str, rng: np.random.Generator) -> dict:
    u = rng.uniform
    if style == "line":
        return dict(
            sigma=u(0.6, 1.3), k=1.6, tau=u(0.975, 0.992), eps=u(-0.008, 0.003), phi=u(50.0, 120.0),
            gamma=u(0.75, 1.3),
        )
    p = dict(sigma=u(3.0, 8.0), shade=u(0.3, 0.8), tone_sigma=u(0.8, 2.5), hatch=u(0.3, 0.8), gamma=u(0.8, 1.25))
    if style == "colour":
        p["sat"] = u(0.25, 0.65)
        p["shade"] *= 0.8
    return p


def _xdog(grey: np.ndarray, p: dict, scale: float) -> np.ndarray:
    """XDoG (Winnemöller et al. 2012): ``1 + tanh(phi (G_s - tau G_ks - eps))`` below eps, else 1."""
    s = p["sigma"] * scale
    g1 = _blur(grey, s)
    g2 = _blur(g1, s * np.sqrt(p["k"] ** 2 - 1.0))  # G_ks = G_s' * G_s (cascade is cheaper)
    d = g1 - p["tau"] * g2 - p["eps"]
    np.minimum(d, 0.0, out=d)
    return 1.0 + np.tanh(p["phi"] * d)


@lru_cache(maxsize=64)
def _darkness_lut(gain_q: int) -> np.ndarray:
    """tone (0..255) -> shading darkness; compressed so skin stays light, hair/shadows dark.

    ``gain_q`` (hundredths) brightens dark photos first: artists draw skin light-ish whatever
    the exposure or skin tone, and keep the dark for hair, eyes and shadows.
    """
    t = np.clip(np.arange(256, dtype=np.float32) / 255.0 * (gain_q / 100.0), 0.0, 1.0)
    return ((1.0 - t) ** 1.6).astype(np.float32)


def _pencil(
    grey_img: Image.Image, grey: np.ndarray, p: dict, scale: float, bg: np.ndarray, near_bg: np.ndarray,
    hatch: np.ndarray,
) -> np.ndarray:
    """Colour-dodge strokes x hatched tonal shading, float [0, 1] (H, W)."""
    blurred = _f32(_pil_blur(grey_img, p["sigma"] * scale))
    # colour dodge of grey with its inverted blurred copy: grey / (1 - (1 - blurred)); the small
    # offset stops noise in dark regions from being blown up into speckle
    strokes = np.minimum((grey + 0.04) / (blurred + 0.04), 1.0)
    strokes = 1.0 - (1.0 - strokes) * (1.0 - bg)
    tone8 = np.asarray(_pil_blur(grey_img, p["tone_sigma"] * scale))
    dark = _darkness_lut(int(round(p["gain"] * 100)))[tone8] * (1.0 - near_bg)
    if p["hatch"] > 0:
        dark *= 1.0 + p["hatch"] * hatch
    return strokes * (1.0 - p["shade"] * np.clip(dark, 0.0, 1.5))


def _colourize(photo: Image.Image, lum: np.ndarray, p: dict, near_bg: np.ndarray) -> np.ndarray:
    """Lay the photo's desaturated, softened chroma over the pencil luminance: (H, W, 3)."""
    w, h = photo.size
    f = 2 if min(w, h) >= 64 else 1
    small = _f32(photo.reduce(f)) if f > 1 else _f32(photo)
    chroma = small - (small @ _LUMA)[..., None]  # in [-0.9, 0.9]
    if f > 1:
        # upsample as 8-bit (softening the colour like a coloured pencil does)
        enc = Image.fromarray(_u8(chroma * 0.5 + 0.5))
        chroma = (_f32(enc.resize((w, h), Image.BILINEAR)) - 0.5) * 2.0
    # colour only where there is pencil, and none on the backdrop
    cover = np.clip((1.0 - lum) * 3.0 + 0.35, 0.0, 1.0) * (1.0 - near_bg) * p["sat"]
    return lum[..., None] + cover[..., None] * chroma


def _soften(x: np.ndarray, sigma: float) -> np.ndarray:
    """Softer strokes (soft pencil, scanning blur): 8-bit blur of a float [0, 1] (H, W) drawing."""
    return _f32(Image.fromarray(_u8(x)).filter(ImageFilter.GaussianBlur(sigma)))


def _affine_coeffs(w: int, h: int, shift: tuple[float, float], angle_deg: float, scale: float) -> tuple:
    """PIL inverse-map coefficients of a similarity transform about the image centre."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a) / scale, np.sin(a) / scale
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    dx, dy = shift
    return (c, s, cx - c * (cx + dx) - s * (cy + dy), -s, c, cy + s * (cx + dx) - c * (cy + dy))


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
        rng: numpy Generator for the random variation; ``None`` with ``randomize=True`` uses
            fresh OS entropy. The same seed gives the same sketch.
        randomize: ``False`` gives the deterministic canonical rendering (``rng`` is ignored).

    Returns:
        (H, W, 3) uint8 RGB sketch (for line and pencil R = G = B).
    """
    style = _STYLE_ALIASES.get(style, style)
    if style not in STYLES:
        raise ValueError(f"unknown sketch style {style!r}; expected one of {STYLES}")
    photo = _rgb_photo(photo)
    img = Image.fromarray(photo, mode="RGB")
    h, w = photo.shape[:2]
    # parameters are tuned for ~200-250 px aligned faces; stroke sizes scale with the image
    scale = float(np.clip(min(h, w) / 200.0, 0.4, 4.0))
    if randomize:
        rng = np.random.default_rng() if rng is None else rng
        p = _draw_params(style, rng)
    else:
        rng = None
        p = dict(_CANON[style])
    grey_img = _exposed_grey(img, rng)
    bg, near_bg, face_level = _background(img, 2.5 * scale, photo)
    # exposure normalization towards a light face (at most 1.6x brighter, never darker)
    p["gain"] = float(np.clip(0.72 / max(face_level, 1e-3), 1.0, 1.6))
    if style == "line":
        out = _line_drawing(_f32(grey_img), p, scale, bg, rng)
    else:
        out = _pencil_drawing(img, grey_img, style, p, scale, bg, near_bg, rng)
    out8 = _tone_curve(out, p["gamma"])
    if rng is None:
        return np.ascontiguousarray(np.repeat(out8[..., None], 3, axis=2) if out8.ndim == 2 else out8)
    return _on_paper(out8, rng)


def _rgb_photo(photo: np.ndarray) -> np.ndarray:
    """The photo as contiguous (H, W, 3) uint8 RGB (greyscale repeated, alpha dropped); checks its shape."""
    photo = np.asarray(photo)
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    if photo.ndim != 3 or photo.shape[2] not in (3, 4) or min(photo.shape[:2]) < 8:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {photo.shape}")
    if photo.dtype != np.uint8:
        photo = np.clip(photo, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(photo[..., :3])


def _exposed_grey(img: Image.Image, rng: np.random.Generator | None) -> Image.Image:
    """The photo in greyscale; randomized, with the exposure and contrast of the reference photo
    varied (the artist's rendering follows them)."""
    grey_img = img.convert("L")
    if rng is None:
        return grey_img
    c, b = rng.uniform(0.85, 1.15), rng.uniform(-12.0, 12.0)
    lut = np.clip((np.arange(256.0) - 128.0) * c + 128.0 + b, 0.0, 255.0) + 0.5
    return grey_img.point(lut.astype(np.uint8).tolist())


def _line_drawing(grey: np.ndarray, p: dict, scale: float, bg: np.ndarray,
                  rng: np.random.Generator | None) -> np.ndarray:
    """The ``line`` style: XDoG strokes, faded on the backdrop, sometimes softened; float (H, W)."""
    out = _xdog(np.minimum(grey * p["gain"], 1.0) if p["gain"] > 1.0 else grey, p, scale)
    out = 1.0 - (1.0 - out) * (1.0 - bg)
    if rng is not None and rng.random() < 0.5:
        out = _soften(out, rng.uniform(0.3, 0.75) * scale)
    return out


def _pencil_drawing(img: Image.Image, grey_img: Image.Image, style: str, p: dict, scale: float, bg: np.ndarray,
                    near_bg: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """The ``pencil`` and ``colour`` styles: hatched pencil, sometimes softened, colour laid over for
    ``colour``; float (H, W) or (H, W, 3)."""
    h, w = bg.shape
    bank = _hatch_bank(_bucket(max(h, w)))
    if rng is None:
        ai, li = _HATCH_ANGLES.index(45.0), 0
    else:
        ai, li = int(rng.integers(len(_HATCH_ANGLES))), int(rng.integers(len(_HATCH_LENGTHS)))
    hatch = _crop(bank[ai, li], h, w, rng)
    out = _pencil(grey_img, _f32(grey_img), p, scale, bg, near_bg, hatch)
    if rng is not None and rng.random() < 0.5:
        out = _soften(out, rng.uniform(0.3, 0.75) * scale)
    if style == "colour":
        out = _colourize(img, out, p, near_bg)
    return out


def _tone_curve(out: np.ndarray, gamma: float) -> np.ndarray:
    """The drawing as uint8, with its contrast / gamma applied via an 8-bit lookup table."""
    out8 = _u8(out)
    if gamma != 1.0:
        lut = np.round(255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)
        out8 = lut[out8]
    return out8


def _on_paper(out8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A randomized drawing as scanned: misaligned with the photo, on toned, blotchy, grainy paper,
    often JPEG re-compressed. (H, W, 3) uint8."""
    h, w = out8.shape[:2]
    grey_out = out8.ndim == 2
    sk = Image.fromarray(out8, mode="L" if grey_out else "RGB")
    # misalignment between photo and sketch
    coeffs = _affine_coeffs(
        w, h, (rng.uniform(-3, 3), rng.uniform(-3, 3)), rng.uniform(-3, 3), rng.uniform(0.96, 1.04)
    )
    sk = sk.transform((w, h), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=255 if grey_out else (255,) * 3)
    # paper: tone, low-frequency blotches, grain
    tone = rng.uniform(0.0, 0.12) if rng.random() < 0.35 else rng.uniform(0.0, 0.03)
    blotch_cells = Image.fromarray(rng.standard_normal((6, 6)).astype(np.float32), mode="F")
    blotch = np.asarray(blotch_cells.resize((w, h), Image.BICUBIC), dtype=np.float32)
    grain = _crop(_grain_bank(_bucket(max(h, w)))[int(rng.integers(2))], h, w, rng)
    paper = (1.0 - tone) * (1.0 + rng.uniform(0.0, 0.03) * blotch + rng.uniform(0.003, 0.02) * grain)
    paper8 = Image.fromarray(_u8(paper), mode="L")  # paper only darkens: clip at white
    sk = ImageChops.multiply(sk, paper8 if grey_out else Image.merge("RGB", (paper8,) * 3))
    # re-compression
    if rng.random() < 0.75:
        buf = io.BytesIO()
        sk.save(buf, format="JPEG", quality=int(rng.integers(45, 96)))
        buf.seek(0)
        sk = Image.open(buf)
    return np.ascontiguousarray(np.asarray(sk.convert("RGB")))


def sketchify_file(src: Path, dst: Path, style: str, seed: int | None) -> Path:
    """Read a photo, synthesize a sketch, write it to ``dst`` (format from the extension).

    ``seed=None`` writes the deterministic canonical sketch; an integer seed writes a
    randomized one, reproducible for that seed.
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
