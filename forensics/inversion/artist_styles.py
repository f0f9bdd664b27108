"""The artist-like styles of `forensics.inversion.sketchify`: what FS2K's and CUFS's artists do
that the ``line``, ``pencil`` and ``colour`` styles do not (docs/models.md, "Training data and
sketch synthesis"):

``charcoal``
    broad soft strokes (the colour-dodge strokes of a wide blur, thickened and smudged), smudged
    tonal shading (the photo's darkness blurred wide and smeared along one direction, caught by
    the paper's tooth), and hair and other dark masses filled in darker.
``pressure``
    a line drawing with the varying pressure of a hand: thick dark strokes on the head's outline,
    the hair and the dark features (brows, eyes, lips), light thin inner lines elsewhere; skin
    tone and lighting are left out, as artists leave them out.

Each returns a float (H, W) drawing in [0, 1] (1 = paper) with the backdrop faded, from the
exposure-normalised grey photo; `sketchify` adds the tone curve, softening and paper.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from forensics.inversion.backdrop import face_radius
from forensics.inversion.sketch_filters import blur, darkness_lut, f32, pil_blur, u8, xdog

ARTIST_STYLES = ("charcoal", "pressure")

# canonical parameters (randomize=False); sizes are for a ~200 px face and scale with the image
CANON = {
    "charcoal": {"sigma": 7.0, "weight": 1.6, "thick": True, "smudge": 1.0, "shade": 0.7, "tone_sigma": 4.0,
                 "smear": 2.0, "smear_axis": 1, "hair": 0.5, "tooth": 0.1, "gamma": 1.0},
    "pressure": {"sigma": 1.0, "k": 1.6, "tau": 0.98, "eps": 0.0, "phi": 60.0, "light": 0.45, "heavy": 1.0,
                 "gamma": 1.0},
}


def draw_params(style: str, rng: np.random.Generator) -> dict:
    """Randomized parameters of an artist style: what varies between artists and drawings."""
    u = rng.uniform
    if style == "charcoal":
        return {"sigma": u(5.0, 10.0), "weight": u(1.2, 2.0), "thick": bool(rng.random() < 0.7),
                "smudge": u(0.6, 1.8), "shade": u(0.5, 0.85), "tone_sigma": u(3.0, 6.0), "smear": u(1.0, 3.0),
                "smear_axis": int(rng.integers(2)), "hair": u(0.3, 0.8), "tooth": u(0.0, 0.2),
                "gamma": u(0.85, 1.25)}
    return {"sigma": u(0.7, 1.3), "k": 1.6, "tau": u(0.975, 0.99), "eps": u(-0.005, 0.003), "phi": u(40.0, 100.0),
            "light": u(0.25, 0.6), "heavy": u(0.7, 1.0), "gamma": u(0.8, 1.2)}


def _thicken(x: np.ndarray) -> np.ndarray:
    """Strokes one pixel wider each side (3x3 minimum of a float [0, 1] drawing, in 8 bits)."""
    return f32(Image.fromarray(u8(x)).filter(ImageFilter.MinFilter(3)))


def _broad_strokes(grey_img: Image.Image, p: dict, scale: float) -> np.ndarray:
    """Colour-dodge strokes of a wide blur, darkened (``weight``), optionally thickened, smudged."""
    blurred = f32(pil_blur(grey_img, p["sigma"] * scale))
    strokes = np.minimum((f32(grey_img) + 0.04) / (blurred + 0.04), 1.0) ** p["weight"]
    if p["thick"]:
        strokes = _thicken(strokes)
    return f32(Image.fromarray(u8(strokes)).filter(ImageFilter.GaussianBlur(p["smudge"] * scale)))


def _smudged_tone(grey_img: Image.Image, p: dict, scale: float) -> np.ndarray:
    """Shading darkness: the photo's tone blurred wide, dark masses (hair) filled in, smeared along one axis."""
    tone8 = np.asarray(pil_blur(grey_img, p["tone_sigma"] * scale))
    dark = darkness_lut(int(round(p["gain"] * 100)))[tone8]
    dark = dark + p["hair"] * np.clip((dark - 0.45) / 0.3, 0.0, 1.0)  # masses darker than mid-grey
    smear, across = p["smear"] * scale, 0.5 * scale
    return blur(dark, across, smear) if p["smear_axis"] == 1 else blur(dark, smear, across)


def charcoal(grey_img: Image.Image, p: dict, scale: float, bg: np.ndarray, near_bg: np.ndarray,
             tooth: np.ndarray) -> np.ndarray:
    """The ``charcoal`` style: broad smudged strokes x smudged shading caught by the paper ``tooth``."""
    strokes = _broad_strokes(grey_img, p, scale)
    strokes = 1.0 - (1.0 - strokes) * (1.0 - bg)
    dark = _smudged_tone(grey_img, p, scale) * (1.0 - near_bg) * (1.0 + p["tooth"] * tooth)
    return strokes * (1.0 - p["shade"] * np.clip(dark, 0.0, 1.5))


def _pressure_map(grey: np.ndarray, scale: float) -> np.ndarray:
    """Where the hand presses (0 light .. 1 heavy): dark masses, strong edges, the head's outline."""
    h, w = grey.shape
    tone = blur(grey, 3.0 * scale)
    masses = np.clip((0.5 - tone) / 0.3, 0.0, 1.0)
    strong = np.clip(np.abs(grey - tone) * 6.0 - 0.2, 0.0, 1.0)
    outline = np.clip((face_radius(h, w) - 0.75) * 3.0, 0.0, 1.0)
    return np.clip(masses + strong + 0.7 * outline, 0.0, 1.0)


def pressure(grey: np.ndarray, p: dict, scale: float, bg: np.ndarray) -> np.ndarray:
    """The ``pressure`` style: XDoG lines, light and thin where the hand is light, thick and dark where it presses."""
    g = np.minimum(grey * p["gain"], 1.0) if p["gain"] > 1.0 else grey
    lines = xdog(g, p, scale)
    weight = _pressure_map(g, scale)
    light = 1.0 - (1.0 - lines) * (p["light"] + (1.0 - p["light"]) * weight)
    heavy = 1.0 - (1.0 - _thicken(lines)) * weight * p["heavy"]
    return 1.0 - (1.0 - np.minimum(light, heavy)) * (1.0 - bg)
