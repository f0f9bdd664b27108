"""Synthesize training sketches from aligned face photos.

Convolutional Sketch Inversion (Güçlütürk et al. 2016) is trained on face photos paired with
*synthetic* sketches; this module makes them, in the three styles of the shipped training recipe
(`STYLES`):

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

and two styles closer to what FS2K's and CUFS's artists draw (`ARTIST_STYLES`,
`forensics.inversion.artist_styles`): ``charcoal`` (broad smudged strokes, smudged shading,
darker hair masses) and ``pressure`` (line weights that vary within a drawing: thick on the
outline, hair and dark features, light inner lines). ``caricature`` > 0 first warps an aligned
chip so that its mouth row and face width deviate more from the mean face
(`forensics.inversion.caricature`), as artists exaggerate.

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
hatching/grain textures, low-resolution backdrop mask; `forensics.inversion.sketch_filters`), so
it can run on the fly in data loaders: a few milliseconds for a 150x150 face on one core (5-12 ms
on a busy shared core, the artist styles the slower; their tests hold them under 50 ms).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from forensics.errors import ForensicsError
from forensics.inversion import artist_styles
from forensics.inversion.artist_styles import ARTIST_STYLES
from forensics.inversion.backdrop import background
from forensics.inversion.caricature import exaggerate
from forensics.inversion.sketch_filters import (
    HATCH_ANGLES,
    HATCH_LENGTHS,
    LUMA,
    bucket,
    crop_texture,
    darkness_lut,
    f32,
    grain_bank,
    hatch_bank,
    pil_blur,
    u8,
    xdog,
)

__all__ = ["ALL_STYLES", "ARTIST_STYLES", "STYLES", "sketchify", "sketchify_file"]

#: the styles of the shipped training recipe (configs/inverter_gan.json)
STYLES = ("line", "pencil", "colour")
#: every style `sketchify` draws
ALL_STYLES = STYLES + ARTIST_STYLES

_STYLE_ALIASES = {"color": "colour", "grey": "pencil", "gray": "pencil", "greyscale": "pencil"}


class UnknownStyleError(ForensicsError, ValueError):
    """A sketch style that is none of `ALL_STYLES` (nor an alias of one)."""


def canonical_style(style: str) -> str:
    """The style `style` names (an alias resolved), or UnknownStyleError."""
    style = _STYLE_ALIASES.get(style, style)
    if style not in ALL_STYLES:
        raise UnknownStyleError(f"unknown sketch style {style!r}; choose one of {', '.join(ALL_STYLES)}")
    return style

# canonical parameters (randomize=False); sizes are for a ~200 px face and scale with the image
_CANON = {
    "line": dict(sigma=0.9, k=1.6, tau=0.985, eps=0.0, phi=70.0, gamma=1.0),
    "pencil": dict(sigma=5.0, shade=0.55, tone_sigma=1.5, hatch=0.55, gamma=1.0),
    "colour": dict(sigma=5.0, shade=0.35, tone_sigma=1.5, hatch=0.5, gamma=1.0, sat=0.5),
}


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


def _pencil(
    grey_img: Image.Image, grey: np.ndarray, p: dict, scale: float, bg: np.ndarray, near_bg: np.ndarray,
    hatch: np.ndarray,
) -> np.ndarray:
    """Colour-dodge strokes x hatched tonal shading, float [0, 1] (H, W)."""
    blurred = f32(pil_blur(grey_img, p["sigma"] * scale))
    # colour dodge of grey with its inverted blurred copy: grey / (1 - (1 - blurred)); the small
    # offset stops noise in dark regions from being blown up into speckle
    strokes = np.minimum((grey + 0.04) / (blurred + 0.04), 1.0)
    strokes = 1.0 - (1.0 - strokes) * (1.0 - bg)
    tone8 = np.asarray(pil_blur(grey_img, p["tone_sigma"] * scale))
    dark = darkness_lut(int(round(p["gain"] * 100)))[tone8] * (1.0 - near_bg)
    if p["hatch"] > 0:
        dark *= 1.0 + p["hatch"] * hatch
    return strokes * (1.0 - p["shade"] * np.clip(dark, 0.0, 1.5))


def _colourize(photo: Image.Image, lum: np.ndarray, p: dict, near_bg: np.ndarray) -> np.ndarray:
    """Lay the photo's desaturated, softened chroma over the pencil luminance: (H, W, 3)."""
    w, h = photo.size
    f = 2 if min(w, h) >= 64 else 1
    small = f32(photo.reduce(f)) if f > 1 else f32(photo)
    chroma = small - (small @ LUMA)[..., None]  # in [-0.9, 0.9]
    if f > 1:
        # upsample as 8-bit (softening the colour like a coloured pencil does)
        enc = Image.fromarray(u8(chroma * 0.5 + 0.5))
        chroma = (f32(enc.resize((w, h), Image.BILINEAR)) - 0.5) * 2.0
    # colour only where there is pencil, and none on the backdrop
    cover = np.clip((1.0 - lum) * 3.0 + 0.35, 0.0, 1.0) * (1.0 - near_bg) * p["sat"]
    return lum[..., None] + cover[..., None] * chroma


def _soften(x: np.ndarray, sigma: float) -> np.ndarray:
    """Softer strokes (soft pencil, scanning blur): 8-bit blur of a float [0, 1] (H, W) drawing."""
    return f32(Image.fromarray(u8(x)).filter(ImageFilter.GaussianBlur(sigma)))


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
    caricature: float = 0.0,
) -> np.ndarray:
    """Turn an aligned face photo into a synthetic sketch.

    Args:
        photo: (H, W, 3) uint8 RGB (a (H, W) greyscale array is accepted too).
        style: one of :data:`ALL_STYLES` ("line", "pencil", "colour", "charcoal", "pressure").
        rng: numpy Generator for the random variation; ``None`` with ``randomize=True`` uses
            fresh OS entropy. The same seed gives the same sketch.
        randomize: ``False`` gives the deterministic canonical rendering (``rng`` is ignored).
        caricature: exaggeration of an aligned chip's deviation from the mean face (0: none;
            0.5: deviations drawn 1.5 times as large), `forensics.inversion.caricature`.

    Returns:
        (H, W, 3) uint8 RGB sketch (R = G = B but for colour).
    """
    style = canonical_style(style)
    photo = exaggerate(_rgb_photo(photo), caricature)
    img = Image.fromarray(photo, mode="RGB")
    h, w = photo.shape[:2]
    # parameters are tuned for ~200-250 px aligned faces; stroke sizes scale with the image
    scale = float(np.clip(min(h, w) / 200.0, 0.4, 4.0))
    rng, p = _params(style, rng, randomize)
    grey_img = _exposed_grey(img, rng)
    bg, near_bg, face_level = background(img, 2.5 * scale, photo)
    # exposure normalization towards a light face (at most 1.6x brighter, never darker)
    p["gain"] = float(np.clip(0.72 / max(face_level, 1e-3), 1.0, 1.6))
    if style == "line":
        out = _line_drawing(f32(grey_img), p, scale, bg, rng)
    elif style == "charcoal":
        out = artist_styles.charcoal(grey_img, p, scale, bg, near_bg, _paper_tooth(h, w, rng))
    elif style == "pressure":
        out = artist_styles.pressure(f32(grey_img), p, scale, bg)
    else:
        out = _pencil_drawing(img, grey_img, style, p, scale, bg, near_bg, rng)
    out8 = _tone_curve(out, p["gamma"])
    if rng is None:
        return np.ascontiguousarray(np.repeat(out8[..., None], 3, axis=2) if out8.ndim == 2 else out8)
    return _on_paper(out8, rng)


def _params(style: str, rng: np.random.Generator | None, randomize: bool) -> tuple[np.random.Generator | None, dict]:
    """The rng to draw the rest from (None: canonical rendering) and the style's parameters."""
    if not randomize:
        return None, dict(artist_styles.CANON[style] if style in ARTIST_STYLES else _CANON[style])
    rng = np.random.default_rng() if rng is None else rng
    return rng, artist_styles.draw_params(style, rng) if style in ARTIST_STYLES else _draw_params(style, rng)


def _paper_tooth(h: int, w: int, rng: np.random.Generator | None) -> np.ndarray:
    """The paper's coarse grain that charcoal catches on (a crop of the cached grain texture)."""
    return crop_texture(grain_bank(bucket(max(h, w)))[1], h, w, rng)


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
    out = xdog(np.minimum(grey * p["gain"], 1.0) if p["gain"] > 1.0 else grey, p, scale)
    out = 1.0 - (1.0 - out) * (1.0 - bg)
    if rng is not None and rng.random() < 0.5:
        out = _soften(out, rng.uniform(0.3, 0.75) * scale)
    return out


def _pencil_drawing(img: Image.Image, grey_img: Image.Image, style: str, p: dict, scale: float, bg: np.ndarray,
                    near_bg: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """The ``pencil`` and ``colour`` styles: hatched pencil, sometimes softened, colour laid over for
    ``colour``; float (H, W) or (H, W, 3)."""
    h, w = bg.shape
    bank = hatch_bank(bucket(max(h, w)))
    if rng is None:
        ai, li = HATCH_ANGLES.index(45.0), 0
    else:
        ai, li = int(rng.integers(len(HATCH_ANGLES))), int(rng.integers(len(HATCH_LENGTHS)))
    hatch = crop_texture(bank[ai, li], h, w, rng)
    out = _pencil(grey_img, f32(grey_img), p, scale, bg, near_bg, hatch)
    if rng is not None and rng.random() < 0.5:
        out = _soften(out, rng.uniform(0.3, 0.75) * scale)
    if style == "colour":
        out = _colourize(img, out, p, near_bg)
    return out


def _tone_curve(out: np.ndarray, gamma: float) -> np.ndarray:
    """The drawing as uint8, with its contrast / gamma applied via an 8-bit lookup table."""
    out8 = u8(out)
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
    grain = crop_texture(grain_bank(bucket(max(h, w)))[int(rng.integers(2))], h, w, rng)
    paper = (1.0 - tone) * (1.0 + rng.uniform(0.0, 0.03) * blotch + rng.uniform(0.003, 0.02) * grain)
    paper8 = Image.fromarray(u8(paper), mode="L")  # paper only darkens: clip at white
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
    from forensics.images import load_image
    from forensics.outputs import check_extension, image_extensions, output_errors

    style = canonical_style(style)
    dst = check_extension(dst, "--out", image_extensions())
    photo = load_image(src).rgb
    if seed is None:
        sketch = sketchify(photo, style, randomize=False)
    else:
        sketch = sketchify(photo, style, rng=np.random.default_rng(seed), randomize=True)
    with output_errors(dst, "--out"):
        dst.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sketch).save(dst)
    return dst
