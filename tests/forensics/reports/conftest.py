"""Looking at a report PDF as pages (fixture `pdf_pages_check`): how full each page is, and its
text as laid out."""

from __future__ import annotations

import numpy as np
import pytest

#: the report's page margins (templates/report.html.j2, @page): top 20 mm, bottom 18 mm of 297 mm
TOP, BOTTOM = 20 / 297, 18 / 297


def pages(pdf_bytes: bytes):
    import pypdfium2 as pdfium  # a dev dependency: renders the PDF pages

    return pdfium.PdfDocument(pdf_bytes)


def filled_share(page) -> float:
    """How far down the page's content area the content reaches (0: empty, 1: to the bottom
    margin); the running header and footer in the margins are not counted."""
    gray = np.asarray(page.render(scale=0.5).to_pil().convert("L"))
    h = gray.shape[0]
    top, bottom = int(h * TOP), int(h * (1 - BOTTOM))
    inked = np.nonzero((gray[top:bottom] < 235).any(axis=1))[0]
    return 0.0 if len(inked) == 0 else (inked[-1] + 1) / (bottom - top)


def page_texts(pdf_bytes: bytes) -> list[str]:
    """The text of each page, with a line break wherever the layout broke a line."""
    return [p.get_textpage().get_text_range() for p in pages(pdf_bytes)]


def assert_pages_full_and_tokens_whole(pdf_bytes: bytes, tokens: list[str], min_share: float = 0.7) -> None:
    """Every page but the last is at least `min_share` full, and each of `tokens` is printed
    whole on one line somewhere."""
    doc = pages(pdf_bytes)
    shares = [filled_share(doc[i]) for i in range(len(doc))]
    assert all(s >= min_share for s in shares[:-1]), [round(s, 2) for s in shares]
    text = "\n".join(page_texts(pdf_bytes))
    missing = [t for t in tokens if t not in text]
    assert not missing, missing


@pytest.fixture(scope="session")
def pdf_pages_check():
    """`pdf_pages_check(pdf_bytes, tokens)`: see :func:`assert_pages_full_and_tokens_whole`."""
    return assert_pages_full_and_tokens_whole
