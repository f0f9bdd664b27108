"""Small helpers shared by the gallery modules: canonical JSON, UTC timestamps, hash checks."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _json_default(obj: Any) -> Any:
    """Turn numpy scalars/arrays, tuples-in-disguise and datetimes into plain JSON values."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return iso_utc(obj) if isinstance(obj, _dt.datetime) else obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, bytes):
        raise TypeError("bytes are not JSON; store a hash or base64 text instead")
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def canonical_json(value: Any) -> str:
    """Deterministic JSON text: sorted keys, no whitespace, UTF-8 kept, NaN/Infinity refused.

    The same value always gives the same text, so it can be hashed (audit chain, fingerprints).
    numpy arrays/scalars are converted to plain lists/numbers.
    """
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
    )


def to_plain(value: Any) -> Any:
    """Round-trip ``value`` through canonical JSON: numpy types become lists/floats, tuples lists."""
    return json.loads(canonical_json(value))


def utc_now() -> _dt.datetime:
    """The current time as a timezone-aware UTC datetime (microsecond precision)."""
    return _dt.datetime.now(_dt.timezone.utc)


def iso_utc(value: _dt.datetime | None = None) -> str:
    """``value`` (default: now) as ISO 8601 UTC text with microseconds and a ``Z``.

    The fixed width makes the strings sort in time order. Naive datetimes are taken as UTC.
    """
    value = utc_now() if value is None else value
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    value = value.astimezone(_dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso_utc(text: str) -> _dt.datetime:
    """Parse text written by :func:`iso_utc` (or any ISO 8601 form) to an aware UTC datetime."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    value = _dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


#: Cell beginnings that spreadsheet programs run as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """``value``, or for text starting like a formula (:data:`FORMULA_START`) the same text after
    an apostrophe, so that a spreadsheet shows it instead of running it. Every CSV the tool
    writes passes its cells through this one rule."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (the owner of a temporary file named after it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_orphans(folder: Path, prefix: str) -> list[Path]:
    """Delete the files in ``folder`` named ``<prefix><pid>`` or ``<prefix><pid>-<tag>`` whose
    process no longer exists (the temporaries of a killed writer); returns them."""
    removed = []
    for p in folder.glob(f"{prefix}*"):
        pid = p.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def is_sha256_hex(text: Any) -> bool:
    """True when ``text`` is a SHA-256 digest as 64 lowercase hex characters."""
    return isinstance(text, str) and bool(_HEX64.match(text))


def sha256_bytes(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex characters."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Any, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes as 64 lowercase hex characters (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def tool_version() -> str:
    """The installed forensics version, or ``0+unknown`` when the package metadata is absent."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("forensics")
        except PackageNotFoundError:
            return "0+unknown"
    except Exception:  # pragma: no cover - importlib.metadata always present on 3.10+
        return "0+unknown"


def umask_mode(mode: int = 0o666) -> int:
    """The permissions a file created with `mode` gets under the process's umask (a temporary file
    made by `tempfile.mkstemp` is 0600 whatever the umask: chmod it to this before renaming it
    into place, so every file the tool writes honours the umask)."""
    current = os.umask(0)
    os.umask(current)
    return mode & ~current
