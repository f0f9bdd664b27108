"""Images a report shows: stored image bytes as entries of the report dict, and the original
files (sketches, mugshots) read at report time and checked against their recorded SHA-256.

An original file is shown only when it is there and its SHA-256 is still the one recorded; its
entry says plainly when it was not recorded, is missing or unreadable, or has changed. What is
shown is a reduced copy (at most :data:`DISPLAY_SIZE` pixels a side, JPEG) of the checked file,
so a report with many candidates stays small; ``sha256`` names the original file.
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Any, Optional

from PIL import Image, ImageOps

#: The longest side of the reduced copy of an original file (about 190 dpi at 42 mm in print).
DISPLAY_SIZE = 320


def image_mime(data: Optional[bytes]) -> Optional[str]:
    """The MIME type of PNG or JPEG bytes, None for anything else (never put in a data: URI)."""
    if not data:
        return None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


def image_entry(data: Optional[bytes]) -> Optional[dict[str, Any]]:
    """``{"mime", "base64", "sha256", "size_bytes", "width", "height"}`` for image bytes, None when
    there are none or they are not a readable PNG/JPEG."""
    mime = image_mime(data)
    if mime is None:
        return None
    assert data is not None
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            im.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    return {
        "mime": mime,
        "base64": base64.b64encode(data).decode("ascii"),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "width": int(width),
        "height": int(height),
    }


def _display_copy(data: bytes) -> Optional[bytes]:
    """A reduced JPEG of image bytes, upright (EXIF orientation applied); None if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=88)
            return buf.getvalue()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _evidence(status: str, text: str, path: Optional[str], recorded: Optional[str],
              now: Optional[str] = None, display: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    return {"status": status, "status_text": text, "path": path, "sha256": recorded, "sha256_now": now,
            "display": display}


def original_file(path: Optional[str], sha256: Optional[str], what: str) -> dict[str, Any]:
    """The original file of `what` ("sketch", "mugshot") at `path`, checked against `sha256`.

    ``status``: ``"verified"`` (``display`` is its reduced copy), ``"not recorded"``,
    ``"missing"``, ``"changed"`` or ``"not an image"``; ``status_text`` says it in a sentence."""
    if not path or not sha256:
        return _evidence("not recorded", f"The original {what} file was not recorded with the gallery "
                         "or the search; it cannot be shown.", path, sha256)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return _evidence("missing", f"The original {what} file could not be read when this report was made "
                         f"({exc.strerror or type(exc).__name__}); it is not shown.", path, sha256)
    now = hashlib.sha256(data).hexdigest()
    if now != sha256.lower():
        return _evidence("changed", f"The original {what} file has CHANGED since it was recorded: its SHA-256 "
                         "is no longer the one recorded, so it is not shown.", path, sha256, now)
    display = image_entry(_display_copy(data))
    if display is None:
        return _evidence("not an image", f"The original {what} file matches its recorded SHA-256 but is not "
                         "an image this report can show.", path, sha256, now)
    return _evidence("verified", f"Original {what} file, read when this report was made; its SHA-256 "
                     "matches the one recorded.", path, sha256, now, display)


__all__ = ["DISPLAY_SIZE", "image_entry", "image_mime", "original_file"]
