"""The case report: every search run in one case, with its top candidate and review status.

`forensics report --case ID -o case.html` (or `.json`) lists every stored query of the case,
newest first, those that returned no candidate included, so a reviewer sees the whole history of
searches in a case, not only the ones someone chose to export.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gallery.util import iso_utc

from forensics import __version__
from forensics.reports.data import ReportError
from forensics.reports.html import environment

CASE_FORMATS = ("html", "json")
PAGE = 500

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Case {{ c.case_id }}: searches</title>
<style>body{font-family:sans-serif;margin:2em;color:#111}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #bbb;padding:4px 6px;text-align:left;vertical-align:top;font-size:13px}
th{background:#eef}.mono{font-family:monospace;word-break:keep-all}</style></head><body>
<h1>Case {{ c.case_id }}: every search run</h1>
<p>{{ c.n_queries }} stored searches, newest first, generated {{ c.generated_at }} by {{ c.generated_by }}.
Candidates are investigative leads that require review by a trained examiner; they are not an identification.
Export any search's full report with <code>forensics report QUERY_ID</code>.</p>
<table><tr><th>Time (UTC)</th><th>Query id</th><th>Operator</th><th>Mode</th><th>Sketches</th><th>Candidates</th>
<th>Top candidate (score)</th><th>Review</th></tr>
{% for q in c.queries %}<tr><td>{{ q.created_at }}</td><td class="mono">{{ q.query_uid }}</td><td>{{ q.operator or "" }}</td>
<td>{{ q.mode or "" }}</td><td>{{ q.n_inputs }}</td><td>{{ q.n_candidates }}{% if not q.n_candidates %} (none returned){% endif %}</td>
<td>{% if q.top_subject %}{{ q.top_subject }} ({{ "%.3f"|format(q.top_score) }}){% else %}none{% endif %}</td><td>{{ q.review }}</td></tr>
{% endfor %}</table></body></html>
"""


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
    return environment().from_string(_TEMPLATE).render(c=report)


def write_case_report(report: dict[str, Any], fmt: str, out: Path) -> Path:
    """Write it whole or not at all (a temporary file beside `out`, then renamed; the umask
    decides its permissions)."""
    out = Path(out)
    if not out.parent.is_dir():
        raise ReportError(f"cannot write the case report to {out}: folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(render_case_report(report, fmt), encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
