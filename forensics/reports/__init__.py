"""Forensic match reports of stored queries: HTML, PDF, JSON and CSV.

``write_report(gallery, query_uid, fmt, out)`` writes one report; every format is rendered from
the one dict :func:`build_report` collects, so they all show the same facts.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from gallery.util import umask_mode

from .accuracy import ACCURACY_FILE, load_accuracy
from .data import REPORT_SCHEMA, ReportError, build_report
from .meaning import STATEMENT

#: The report formats and their file extensions.
FORMATS: dict[str, str] = {"html": ".html", "pdf": ".pdf", "json": ".json", "csv": ".csv"}


def _writer(fmt: str) -> Callable[[Mapping[str, Any], Path], Path]:
    if fmt == "html":
        from .html import write_html

        return write_html
    if fmt == "pdf":
        from .pdf import write_pdf

        return write_pdf
    if fmt == "json":
        from .formats import write_json

        return write_json
    from .formats import write_csv

    return write_csv


def default_filename(report: Mapping[str, Any], fmt: str) -> str:
    """``report-<query uid>.<ext>`` (the uid is hex; a case id may hold any character)."""
    return f"report-{report['query']['query_uid']}{FORMATS[fmt]}"


def render_report(report: Mapping[str, Any], fmt: str, out: Path) -> Path:
    """Write an already built report dict in format ``fmt`` to ``out`` (a file, or an existing
    folder to write ``report-<uid>.<ext>`` into). The file appears whole or not at all."""
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out).expanduser()
    if out.is_dir():
        out = out / default_filename(report, fmt)
    return write_whole(out, lambda tmp: _writer(fmt)(report, tmp))


def write_whole(out: Path, write: Callable[[Path], Any]) -> Path:
    """Run ``write(tmp)`` on a temporary file beside ``out``, then rename it into place: the file
    appears whole or not at all, with the permissions the umask allows (case data: umask 077)."""
    out = Path(out)
    if not out.parent.is_dir():
        raise ReportError(f"cannot write the report to {out}: folder {out.parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def write_report(
    gallery: Any,
    query_uid: str,
    fmt: str,
    out: Path,
    *,
    accuracy_path: Optional[Path] = None,
    max_fpir: Optional[float] = None,
) -> Path:
    """Write the report of stored query ``query_uid`` of ``gallery`` (an open
    :class:`~gallery.db.Gallery`) as ``fmt`` (one of :data:`FORMATS`) to ``out`` (a file path,
    or an existing folder); returns the path written. ``max_fpir``: see `build_report`. Raises
    :class:`ReportError` for an unknown query or format."""
    if str(fmt).lower() not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    report = build_report(gallery, query_uid, accuracy_path=accuracy_path, max_fpir=max_fpir)
    return render_report(report, fmt, out)


__all__ = [
    "ACCURACY_FILE",
    "FORMATS",
    "REPORT_SCHEMA",
    "STATEMENT",
    "ReportError",
    "build_report",
    "default_filename",
    "load_accuracy",
    "render_report",
    "write_report",
    "write_whole",
]


def export_report(gallery, query_uid: str, fmt: str, out: Path | str, operator: str,
                  max_fpir: float | None = None) -> Path:
    """Write a report and record the export (format, path, the report file's SHA-256, the FPIR
    limit applied) in the audit log."""
    from gallery import audit

    from forensics.images import sha256_file

    path = write_report(gallery, query_uid, fmt, out, max_fpir=max_fpir)
    audit.append_event(gallery, actor=operator, action="report", target=query_uid,
                       details={"format": fmt, "path": str(path), "report_sha256": sha256_file(path),
                                "max_fpir": max_fpir})
    return path
