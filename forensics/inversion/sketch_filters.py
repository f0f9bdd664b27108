"""Image primitives of the sketch synthesis (`forensics.inversion.sketchify`): exact separable
Gaussian blurs, 8-bit PIL blurs, float/uint8 conversions, the cached pencil-hatching and
paper-grain textures (built once per size from fixed seeds, cropped per image), XDoG line
extraction and the tone-to-darkness curve of the shading."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

HATCH_ANGLES = (30.0, 45.0, 60.0, 75.0, 105.0, 120.0, 135.0, 150.0)
HATCH_LENGTHS = (3.5, 7.0)


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


def blur(x: np.ndarray, sigma: float, sigma_x: float | None = None) -> np.ndarray:
    """Exact float Gaussian blur of (..., H, W) with half-sample-symmetric borders."""
    return _blur_axis(_blur_axis(x, sigma, x.ndim - 2), sigma if sigma_x is None else sigma_x, x.ndim - 1)


def pil_blur(img: Image.Image, sigma: float) -> Image.Image:
    """8-bit Gaussian blur; large sigmas are done at reduced resolution (same look, cheaper)."""
    if sigma < 0.3:
        return img
    f = 4 if sigma >= 6.0 else 2 if sigma >= 3.0 else 1
    if f == 1:
        return img.filter(ImageFilter.GaussianBlur(sigma))
    w, h = img.size
    small = img.reduce(f).filter(ImageFilter.GaussianBlur(sigma / f))
    return small.resize((w, h), Image.BILINEAR)


def f32(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) * np.float32(1.0 / 255.0)


def u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def bucket(n: int) -> int:
    return int(64 * np.ceil((n + 24) / 64.0))


@lru_cache(maxsize=4)
def hatch_bank(size: int) -> np.ndarray:
    """(angles, lengths, size, size) pencil-hatching textures in [-1, 1], built once per size.

    White noise smeared along one direction, rotated. Deterministic (fixed seed); per image a
    random crop/flip is taken from it, which is cheap and reproducible from the caller's rng.
    """
    gen = np.random.default_rng(20160523)
    d = int(np.ceil(size * 1.42)) + 4
    top = (d - size) // 2
    bank = np.empty((len(HATCH_ANGLES), len(HATCH_LENGTHS), size, size), dtype=np.float32)
    for li, length in enumerate(HATCH_LENGTHS):
        for ai, angle in enumerate(HATCH_ANGLES):
            noise = gen.standard_normal((d, d)).astype(np.float32)
            streaks = blur(noise, 0.6, length)
            streaks /= streaks.std() + 1e-6
            rot = Image.fromarray(streaks, mode="F").rotate(angle, resample=Image.BILINEAR)
            crop = np.asarray(rot, dtype=np.float32)[top : top + size, top : top + size]
            bank[ai, li] = np.clip(crop * 0.5, -1.0, 1.0)
    bank.setflags(write=False)
    return bank


@lru_cache(maxsize=4)
def grain_bank(size: int) -> np.ndarray:
    """(2, size, size) paper grain (fine and coarser), zero mean, unit std, built once."""
    gen = np.random.default_rng(19871209)
    out = np.empty((2, size, size), dtype=np.float32)
    for i, s in enumerate((0.5, 1.0)):
        g = blur(gen.standard_normal((size, size)).astype(np.float32), s)
        out[i] = g / (g.std() + 1e-6)
    out.setflags(write=False)
    return out


def crop_texture(bank2d: np.ndarray, h: int, w: int, rng: np.random.Generator | None) -> np.ndarray:
    s = bank2d.shape[0]
    if rng is None:
        return bank2d[:h, :w]
    y, x = int(rng.integers(0, s - h + 1)), int(rng.integers(0, s - w + 1))
    t = bank2d[y : y + h, x : x + w]
    return t[::-1] if rng.random() < 0.5 else t


def xdog(grey: np.ndarray, p: dict, scale: float) -> np.ndarray:
    """XDoG (Winnemöller et al. 2012): ``1 + tanh(phi (G_s - tau G_ks - eps))`` below eps, else 1."""
    s = p["sigma"] * scale
    g1 = blur(grey, s)
    g2 = blur(g1, s * np.sqrt(p["k"] ** 2 - 1.0))  # G_ks = G_s' * G_s (cascade is cheaper)
    d = g1 - p["tau"] * g2 - p["eps"]
    np.minimum(d, 0.0, out=d)
    return 1.0 + np.tanh(p["phi"] * d)


@lru_cache(maxsize=64)
def darkness_lut(gain_q: int) -> np.ndarray:
    """tone (0..255) -> shading darkness; compressed so skin stays light, hair/shadows dark.

    ``gain_q`` (hundredths) brightens dark photos first: artists draw skin light-ish whatever
    the exposure or skin tone, and keep the dark for hair, eyes and shadows.
    """
    t = np.clip(np.arange(256, dtype=np.float32) / 255.0 * (gain_q / 100.0), 0.0, 1.0)
    return ((1.0 - t) ** 1.6).astype(np.float32)
