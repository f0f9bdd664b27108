"""The case report: every search run in one case, with its top candidate and review status.

`forensics report --case ID -o case.html` (or `.json`) lists every stored query of the case,
newest first, those that returned no candidate included, so a reviewer sees the whole history of
searches in a case, not only the ones someone chose to export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gallery.util import iso_utc

from forensics import __version__
from forensics.reports import write_whole
from forensics.reports.data import ReportError
from forensics.reports.html import environment

CASE_FORMATS = ("html", "json")
PAGE = 500

TEMPLATE_NAME = "case.html.j2"


def build_case_report(fx, case_id: str) -> dict[str, Any]:
    """Every stored query of `case_id` (through the application object `fx`), with its review
    status; a clear error when the case has none."""
    rows: list = []
    while True:
        page = fx.queries(limit=PAGE, case_id=case_id, offset=len(rows))
        rows += page
        if len(page) < PAGE:
            break
    if not rows:
        raise ReportError(f"no stored search has the case id {case_id!r} (`forensics queries list` lists them)")
    return {"case_id": case_id, "generated_at": iso_utc(), "generated_by": f"forensics {__version__}",
            "n_queries": len(rows),
            "queries": [{"query_uid": q.query_uid, "created_at": iso_utc(q.created_at), "operator": q.operator,
                         "mode": q.mode, "n_inputs": q.n_inputs, "n_candidates": q.n_candidates,
                         "top_subject": q.top_external_id, "top_score": q.top_score,
                         "review": fx.review_status(q.query_uid)} for q in rows]}


def render_case_report(report: dict[str, Any], fmt: str) -> str:
    if fmt not in CASE_FORMATS:
        raise ReportError(f"a case report is written as {' or '.join(CASE_FORMATS)}, not {fmt!r}")
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False)
    return environment().get_template(TEMPLATE_NAME).render(c=report)


def write_case_report(report: dict[str, Any], fmt: str, out: Path) -> Path:
    """Write it whole or not at all, as the umask allows (`forensics.reports.write_whole`)."""
    if Path(out).is_dir():
        raise ReportError(f"{out} is a folder: give the case report a file name, e.g. case.html")
    text = render_case_report(report, fmt)
    return write_whole(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
