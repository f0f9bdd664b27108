"""Machine-readable writers: JSON (everything, images as base64) and CSV (the candidate table).

CSV: UTF-8 with a byte-order mark (so spreadsheet programs read non-Latin names correctly), one
header row, then one row per candidate by rank. A text cell that starts with ``= + - @`` or a
tab/carriage return is prefixed with an apostrophe so that spreadsheets show it as text instead
of running it as a formula (CSV injection); the JSON report holds the values unaltered.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Mapping

from gallery.util import spreadsheet_safe

#: The CSV columns, in order.
CSV_COLUMNS = (
    "rank",
    "subject_id",
    "name",
    "score",
    "fpir",
    "score_meaning",
    "image_sha256",
    "in_gallery",
    "mugshot_sha256",
    "case_id",
    "query_uid",
)


def render_json(report: Mapping[str, Any]) -> str:
    """The report dict as indented UTF-8 JSON text (no NaN; ends with a newline)."""
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(report: Mapping[str, Any], out: Path) -> Path:
    out = Path(out)
    out.write_text(render_json(report), encoding="utf-8")
    return out


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value)
    return spreadsheet_safe(value)


def csv_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The candidate table: one dict per candidate with the :data:`CSV_COLUMNS` keys."""
    q = report["query"]
    rows = []
    for c in report["candidates"]:
        rows.append(
            {
                "rank": c["rank"],
                "subject_id": c["subject_id"],
                "name": c["name"],
                "score": c["score"],
                "fpir": c["fpir"],
                "score_meaning": c["score_meaning"],
                "image_sha256": c["image_sha256"],
                "in_gallery": c["in_gallery"],
                "mugshot_sha256": (c["mugshot"] or {}).get("sha256"),
                "case_id": q["case_id"],
                "query_uid": q["query_uid"],
            }
        )
    return rows


def render_csv(report: Mapping[str, Any]) -> str:
    """The candidate table as CSV text (without the byte-order mark; see :func:`write_csv`)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writeheader()
    for row in csv_rows(report):
        w.writerow({k: _cell(v) for k, v in row.items()})
    return buf.getvalue()


def write_csv(report: Mapping[str, Any], out: Path) -> Path:
    out = Path(out)
    out.write_text(render_csv(report), encoding="utf-8-sig", newline="")
    return out


__all__ = ["CSV_COLUMNS", "csv_rows", "render_csv", "render_json", "write_csv", "write_json"]
