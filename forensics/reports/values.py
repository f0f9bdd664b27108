"""Stored values made JSON-safe for the report dict: finite numbers, integers, plain copies."""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
from typing import Any, Mapping, Optional

from gallery.util import iso_utc


def num(value: Any) -> Optional[float]:
    """A finite float, or None (JSON has no NaN/Infinity)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def as_int(value: Any) -> Optional[int]:
    """An int, or None where the value is none or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def plain(value: Any) -> Any:
    """A JSON-safe deep copy: non-finite floats become None, tuples lists, keys strings."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        return {"sha256": hashlib.sha256(value).hexdigest(), "size_bytes": len(value)}
    if isinstance(value, _dt.datetime):
        return iso_utc(value)
    return str(value)


__all__ = ["as_int", "num", "plain"]
