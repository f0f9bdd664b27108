"""The report as ONE self-contained HTML file (inline CSS, images as data: URIs, no script).

The page forbids every fetch and every script with a Content-Security-Policy, so a hostile
value that slipped through could still do nothing; and every value is escaped by Jinja2's
autoescaping in the first place. User-supplied text (names, ids, paths) is shown with
``dir="auto"`` and wraps anywhere, so long or right-to-left text never breaks the layout.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional

import jinja2

from gallery.util import parse_iso_utc

from .meaning import format_rate

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "report.html.j2"

#: The page's Content-Security-Policy: images from data: URIs and inline styles only.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def data_uri(image: Optional[Mapping[str, Any]]) -> str:
    """``data:<mime>;base64,...`` for an image entry of the report dict ("" for none)."""
    if not image:
        return ""
    mime = image.get("mime")
    if mime not in ("image/png", "image/jpeg"):
        return ""
    return f"data:{mime};base64,{image['base64']}"


def when(value: Optional[str]) -> str:
    """ISO 8601 UTC text as ``2024-01-02 03:04:05 UTC`` (empty for None)."""
    if not value:
        return ""
    try:
        return parse_iso_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return str(value)


def fmt_score(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (autoescape always on)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["data_uri"] = data_uri
    env.filters["when"] = when
    env.filters["score"] = fmt_score
    env.filters["pct"] = format_rate
    return env


def render_html(report: Mapping[str, Any]) -> str:
    """The HTML text of a report dict from :func:`forensics.reports.data.build_report`."""
    assert '"' not in CSP and "<" not in CSP  # it is written into an attribute unescaped
    return environment().get_template(TEMPLATE_NAME).render(r=report, csp=CSP)


def write_html(report: Mapping[str, Any], out: Path) -> Path:
    """Write the HTML report to ``out`` (UTF-8); returns ``out``."""
    out = Path(out)
    out.write_text(render_html(report), encoding="utf-8")
    return out


__all__ = ["CSP", "render_html", "write_html", "data_uri"]
