"""Reading input images safely: hashing, validation, EXIF orientation and mode conversion.

Every input file is hashed (SHA-256) at intake, before anything else is done with it, so that
reports and audit records can name exactly which bytes were examined.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from forensics.errors import InputImageError
from gallery.util import sha256_bytes, sha256_file  # noqa: F401  (one implementation, re-exported)

#: Largest accepted image, in pixels (a 30000x30000 header must not exhaust memory).
MAX_PIXELS = 40_000_000
#: Largest accepted file, in bytes.
MAX_BYTES = 100 * 1024 * 1024
#: Smallest side that can plausibly hold a face.
MIN_SIDE = 32

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm"}


@dataclass(frozen=True)
class LoadedImage:
    """An input image as examined: its bytes' SHA-256 and an RGB uint8 array (EXIF-upright)."""

    path: Path
    sha256: str
    size_bytes: int
    width: int
    height: int
    original_mode: str
    rgb: np.ndarray  # (H, W, 3) uint8


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode (L, LA, P, RGBA, I;16, I, F, CMYK, 1) to 8-bit RGB.

    Transparency is composited on white (sketches are drawn on white paper); 16-bit and float
    images are rescaled from their actual range, not clipped.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr8 = ((arr - lo) * scale).round().clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(path: str | Path) -> LoadedImage:
    """Read, hash and validate one image file. Raises `InputImageError` naming the file."""
    path = Path(path)
    return decode_image(read_image_bytes(path), path)


def read_image_bytes(path: Path) -> bytes:
    """The bytes of an image file, after the checks that need no decoding (exists, not empty,
    not too large). Raises `InputImageError` naming the file."""
    if not path.exists():
        raise InputImageError(path, "file not found", "check the path")
    if path.is_dir():
        raise InputImageError(path, "is a folder, not an image file", "pass image files or use enroll on the folder")
    try:
        size = path.stat().st_size
        if size == 0:
            raise InputImageError(path, "file is empty (0 bytes)", "re-export or re-copy the image")
        if size > MAX_BYTES:
            raise InputImageError(
                path, f"file is too large ({size / 2**20:.0f} MiB > {MAX_BYTES / 2**20:.0f} MiB)",
                "downscale it to at most a few thousand pixels a side",
            )
        data = path.read_bytes()
    except PermissionError:
        raise InputImageError(path, "cannot be read (permission denied)", "fix the file's permissions") from None
    except OSError as e:
        raise InputImageError(path, f"cannot be read ({e.strerror or e})", "check the file and the disk") from None
    return data


def decode_image(data: bytes, path: Path, sha256: str | None = None) -> LoadedImage:
    """Validate and decode an image file's bytes (`sha256`: their digest, if already computed)."""
    digest = sha256 or sha256_bytes(data)
    try:
        with warnings.catch_warnings():  # PIL's warning above 89 megapixels: `MAX_PIXELS` below refuses sooner
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
        with probe:
            width, height = probe.size
            fmt = probe.format
    except Image.DecompressionBombError as e:
        raise InputImageError(path, f"is too large to decode safely ({e})",
                              "downscale it so the face is a few hundred pixels wide") from None
    except UnidentifiedImageError:
        raise InputImageError(path, "is not an image PIL can read (wrong format or not an image)",
                              "convert it to JPEG or PNG") from None
    except Exception as e:  # noqa: BLE001 - PIL raises many types on corrupt headers
        raise InputImageError(path, f"has a corrupt header ({e})", "re-export the image") from None
    if width * height > MAX_PIXELS:
        raise InputImageError(
            path, f"is too large ({width}x{height} pixels, limit {MAX_PIXELS // 1_000_000} megapixels)",
            "downscale it so the face is a few hundred pixels wide",
        )
    if min(width, height) < MIN_SIDE:
        raise InputImageError(path, f"is too small ({width}x{height} pixels) to hold a face",
                              f"use an image at least {MIN_SIDE}px on each side")
    try:
        with Image.open(io.BytesIO(data)) as img, _truncated_refused():
            img.load()  # forces a full decode: a truncated file fails here
            original_mode = img.mode
            img = ImageOps.exif_transpose(img) or img
            rgb = np.asarray(_to_rgb(img), dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError) as e:
        raise InputImageError(path, f"is truncated or corrupt ({fmt}: {e})", "re-export or re-copy the image") from None
    h, w = rgb.shape[:2]
    return LoadedImage(path=path, sha256=digest, size_bytes=len(data), width=w, height=h,
                       original_mode=original_mode, rgb=rgb)


@contextmanager
def _truncated_refused():
    """PIL refusing truncated files while decoding, whatever another library set process-wide
    (weasyprint, imported for PDF reports, sets `ImageFile.LOAD_TRUNCATED_IMAGES`, which would
    let a half-copied photo be enrolled with grey where its second half was)."""
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


def iter_image_files(paths: list[Path]) -> list[Path]:
    """Expand files and folders (recursively, sorted) into a list of candidate image files.

    Files named explicitly are kept whatever their suffix (so a bad one is reported, not skipped).
    """
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            # broken links and unreadable entries are kept, so that they are reported, not skipped
            out.extend(sorted(f for f in p.rglob("*")
                              if f.suffix.lower() in IMAGE_SUFFIXES and (f.is_file() or f.is_symlink())))
        else:
            out.append(p)
    return out


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(rgb: np.ndarray) -> bytes:
    """Lossless PNG of an RGB uint8 array, written directly: every row with PNG's "Up" filter
    (difference to the row above, one numpy subtraction) and zlib level 1. Half the time of
    PIL's encoder at level 1 (which tries filters row by row) for the same size on face chips."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()
    h, w, _ = rgb.shape
    rows = np.ascontiguousarray(rgb).reshape(h, w * 3)
    raw = np.empty((h, 1 + w * 3), np.uint8)
    raw[:, 0] = 2  # filter type Up
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # modulo 256, as PNG defines it
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 1)) + _png_chunk(b"IEND", b""))


def png_to_array(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
