"""What a candidate's score means, in plain words: the FPIR as text, its caveat, and when a
candidate is no lead at all.

One place for the sentences every report format shows next to a candidate (see
:func:`forensics.reports.data.build_report`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

from forensics.calibration import TAIL_CONFIDENCE

from .values import as_int

#: Shown on every report, in every format.
STATEMENT = (
    "Candidates are investigative leads that require review by a trained examiner. "
    "They are not an identification."
)

#: From this FPIR up a score is what chance alone gives: nine searches in ten for someone who
#: is not in the gallery return a candidate at least this similar.
CHANCE_FPIR = 0.9


def format_rate(rate: float) -> str:
    """A rate in [0, 1] as short plain text: ``"45%"``, ``"4.5%"``, ``"0.34%"``,
    ``"less than 0.01% (about 1 in 25,000)"``."""
    if rate >= 0.995:
        return "more than 99%"
    if rate >= 0.1:
        return f"{rate * 100:.0f}%"
    if rate >= 0.01:
        return f"{rate * 100:.1f}%"
    if rate >= 0.0001:
        return f"{rate * 100:.2g}%"
    if rate <= 0:
        return "0%"
    return f"less than 0.01% (about 1 in {round(1 / rate):,})"


def _is_upper_bound(fpir: float, gallery_size: Optional[int], calibration: Optional[Mapping[str, Any]]) -> bool:
    """Whether the FPIR is the floor of the calibration: the score is beyond every non-mated
    score measured, so the rate is only an upper bound."""
    n_imp = as_int((calibration or {}).get("n_impostor_scores"))
    if not n_imp or not gallery_size:
        return False
    p = 1.0 / n_imp
    bound = -math.expm1(gallery_size * math.log1p(-min(p, 1 - 1e-15)))
    return math.isclose(fpir, bound, rel_tol=1e-6, abs_tol=1e-12)


def fpir_range(detail: Optional[Mapping[str, Any]]) -> Optional[tuple[float, float]]:
    """The interval stored with a candidate's FPIR (``detail["fpir_range"]``), or None (queries
    stored before the FPIR was measured on the search's own gallery)."""
    r = (detail or {}).get("fpir_range")
    if isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(x, (int, float)) for x in r):
        return min(max(float(r[0]), 0.0), 1.0), min(max(float(r[1]), 0.0), 1.0)
    return None


def _rate_range(low: float, high: float) -> str:
    """``"between 0.52% and 3.1%"``, or one rate where both ends read the same."""
    a, b = format_rate(low), format_rate(high)
    if a == b:
        return a if a.startswith(("less", "more")) else f"about {a}"
    if low < 0.0001:
        a = "less than 0.01%"
    return f"between {a} and {b}"


def score_meaning(
    score: Optional[float],
    fpir: Optional[float],
    gallery_size: Optional[int],
    calibration: Optional[Mapping[str, Any]],
    interval: Optional[tuple[float, float]] = None,
    basis: Optional[str] = None,
    confidence: float = TAIL_CONFIDENCE,
) -> tuple[Optional[str], str]:
    """``(short, sentence)``: the FPIR as short text (None when not estimated) and what it means.
    With its `interval` (the stored ``fpir_range``) the text gives the range; `basis` says which
    estimate set it ("gallery": the search's own scores, "reference": the calibration set) and
    `confidence` the interval's level (as stored with the query's score tail)."""
    if fpir is None:
        return None, (
            "No false-positive rate was estimated for this candidate: the search covered too few "
            "subjects to measure its own gallery, so there is no estimate of how often a score this "
            "high occurs by chance; the score alone does not say how likely a chance resemblance is."
        )
    fpir = min(max(fpir, 0.0), 1.0)
    n = f"{gallery_size:,}" if gallery_size is not None else "an unknown number of"
    score_txt = f" (score {score:.3f} or higher)" if score is not None else ""
    if interval is not None:
        short = _rate_range(*interval)
        how = ("measured on this search's own scores over the gallery" if basis == "gallery" else
               "set by the reference calibration, which is higher here than this gallery's own estimate")
        return short, (f"A search for someone who is not among the {n} subjects searched returns a candidate "
                       f"this similar{score_txt} {short} of the time ({confidence:.0%} interval, {how}).")
    rate = format_rate(fpir)
    short = rate if rate.startswith(("less", "more")) else f"about {rate}"
    tail = ""
    if _is_upper_bound(fpir, gallery_size, calibration):
        upper = rate if fpir >= 0.0001 else f"1 in {round(1 / fpir):,}" if fpir > 0 else "0%"
        short = f"at most {upper}"
        tail = " (an upper bound: the score is above every non-mated score measured in calibration)"
    sentence = (
        f"A search for someone who is not among the {n} subjects searched returns a "
        f"candidate this similar{score_txt} {short} of the time{tail}."
    )
    return short, sentence


def fpir_caveat(fpir: Optional[float], calibration: Optional[Mapping[str, Any]],
                gallery_measured: bool = False) -> Optional[str]:
    """The limit of the FPIR estimate, shown on every card that has one (None without an FPIR).
    `gallery_measured`: the FPIR was measured on the search's own gallery (an interval is stored)."""
    if fpir is None:
        return None
    if gallery_measured:
        floor = ("never stated below the reference calibration (section 7)" if calibration
                 else "with no reference floor in this mode")
        return (
            f"The FPIR is an estimate from this search's own scores over the subjects searched, {floor}. "
            "Validated on CUFS, FS2K and LFW galleries "
            "(docs/forensic-use.md). It assumes no other subject is the person sketched or a close relative; "
            "it is not the probability that this candidate is the person sketched."
        )
    reference = (calibration or {}).get("reference")
    like = f"galleries like its calibration set ({reference})" if reference else "galleries like its calibration set"
    return (
        f"The FPIR is an estimate, valid for {like}. In a gallery of people who look like the person "
        "sketched (same capture, age group or ethnicity) chance resemblances are more common. This query "
        "was stored before the FPIR was measured on the searched gallery itself."
    )


def not_a_lead(score: Optional[float], fpir: Optional[float]) -> Optional[str]:
    """Why a candidate is no lead (a negative score, or an FPIR no better than chance), or None."""
    if score is not None and score < 0:
        return (
            f"Not a lead: the score ({score:.3f}) is below zero, so this face is less similar to "
            "the sketch than unrelated faces typically are. It is listed only to fill the ranking."
        )
    if fpir is not None and fpir >= CHANCE_FPIR:
        return (
            f"Not a lead: a search for someone who is not in the gallery returns a candidate this "
            f"similar {format_rate(min(fpir, 1.0))} of the time, so this score is what chance alone "
            "gives. It is listed only to fill the ranking."
        )
    return None


__all__ = ["CHANCE_FPIR", "STATEMENT", "format_rate", "fpir_caveat", "fpir_range", "not_a_lead", "score_meaning"]
