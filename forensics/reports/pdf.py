"""The report as PDF: the HTML report laid out by WeasyPrint (A4, print stylesheet).

Nothing is fetched while rendering: every image is a data: URI, and the URL fetcher refuses
any other URL (the template has none; this only guards against a future mistake).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .html import render_html


def _data_only_fetcher() -> Any:
    """A WeasyPrint URL fetcher that loads data: URIs only."""
    try:  # WeasyPrint >= 68: fetcher objects
        from weasyprint.urls import URLFetcher
    except ImportError:  # older WeasyPrint: a function
        from weasyprint import default_url_fetcher

        def fetch(url: str, *args: Any, **kwargs: Any) -> dict:
            if not url.startswith("data:"):
                raise ValueError(f"the report may not load external resources ({url[:60]!r})")
            return default_url_fetcher(url, *args, **kwargs)

        return fetch
    return URLFetcher(allowed_protocols={"data"})


def render_pdf(report: Mapping[str, Any]) -> bytes:
    """The PDF bytes of a report dict from :func:`forensics.reports.data.build_report`."""
    import logging

    from weasyprint import HTML

    # WeasyPrint warns about every screen-only CSS property it does not support (grid...).
    log = logging.getLogger("weasyprint")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        doc = HTML(string=render_html(report), base_url=None, url_fetcher=_data_only_fetcher())
        return doc.write_pdf()
    finally:
        log.setLevel(level)


def write_pdf(report: Mapping[str, Any], out: Path) -> Path:
    """Write the PDF report to ``out``; returns ``out``."""
    out = Path(out)
    out.write_bytes(render_pdf(report))
    return out


__all__ = ["render_pdf", "write_pdf"]
