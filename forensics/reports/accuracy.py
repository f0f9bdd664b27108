"""The measured accuracy a report shows, read from ``forensics/reports/accuracy.json``.

The file is written from the benchmarks (schema in :func:`load_accuracy`). When it is absent or
unreadable the report says the accuracy was not measured for this version; it never shows
figures from anywhere else.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

#: Where the lead writes the measured accuracy of this version (see :func:`load_accuracy`).
ACCURACY_FILE = Path(__file__).parent / "accuracy.json"


def _not_measured(version_txt: str, why: Optional[str] = None) -> dict[str, Any]:
    note = (f"The accuracy of {version_txt} was not measured; no accuracy figures are given." if why is None
            else f"The accuracy of {version_txt} was not measured: the accuracy file could not be read "
                 f"({why}); no accuracy figures are given.")
    return {"measured": False, "measured_on": None, "tool_version": None, "rows": [], "note": note}


def _row(r: Any) -> dict[str, Any]:
    """One checked row: ``what`` and ``source`` text, ``value`` text or a finite number."""
    if not isinstance(r, dict) or set(r) < {"what", "value", "source"}:
        raise ValueError("each row needs what, value and source")
    what, value, source = r["what"], r["value"], r["source"]
    if not isinstance(what, str) or not isinstance(source, str):
        raise ValueError("what and source must be strings")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("value must be text or a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("value must be finite")
    return {"what": what, "value": value, "value_text": str(value), "source": source}


def _parse(path: Path) -> tuple[str, list[dict[str, Any]], Optional[str]]:
    """``(measured_on, rows, tool_version)`` of the file; raises on anything malformed."""
    data = json.loads(path.read_text(encoding="utf-8"))
    measured_on, rows_in = data["measured_on"], data["rows"]
    if not isinstance(measured_on, str) or not measured_on.strip():
        raise ValueError("measured_on must be a non-empty string")
    if not isinstance(rows_in, list) or not rows_in:
        raise ValueError("rows must be a non-empty list")
    measured_version = data.get("tool_version")
    if measured_version is not None and not isinstance(measured_version, str):
        raise ValueError("tool_version must be a string")
    return measured_on, [_row(r) for r in rows_in], measured_version


def load_accuracy(path: Optional[Path] = None, tool_version: Optional[str] = None) -> dict[str, Any]:
    """The measured accuracy to show, from ``accuracy.json``.

    Schema of the file (UTF-8 JSON object)::

        {
          "measured_on": "forensics 0.1.0, CUFS + FS2K test sketches vs. a 6,000-subject gallery, 2025-06-01",
          "tool_version": "0.1.0",          # optional: the forensics version measured
          "rows": [
            {"what": "Rank-1 identification rate, fusion mode, CUFS test",
             "value": "71%",                 # text or number, shown as given
             "source": "benchmarks/accuracy.py, docs/benchmarks.md"},
            ...
          ]
        }

    Returns ``{"measured": bool, "measured_on", "tool_version", "rows", "note"}``. When the file
    is missing, unreadable or malformed, ``measured`` is False, ``rows`` is empty and ``note``
    says the accuracy was not measured for this version (no figure is ever made up).
    """
    path = ACCURACY_FILE if path is None else Path(path)
    version_txt = f"forensics {tool_version}" if tool_version else "this version of forensics"
    if not path.is_file():
        return _not_measured(version_txt)
    try:
        measured_on, rows, measured_version = _parse(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _not_measured(version_txt, f"{type(exc).__name__}: {exc}")
    note = None
    if measured_version and tool_version and measured_version != tool_version:
        note = (f"These figures were measured with forensics {measured_version}; this query was run "
                f"with forensics {tool_version}.")
    return {"measured": True, "measured_on": measured_on, "tool_version": measured_version, "rows": rows,
            "note": note}


__all__ = ["ACCURACY_FILE", "load_accuracy"]
