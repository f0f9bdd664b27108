"""What a candidate's score means, in plain words: the FPIR as text, its caveat, and when a
candidate is no lead at all.

One place for the sentences every report format shows next to a candidate (see
:func:`forensics.reports.data.build_report`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

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


def score_meaning(
    score: Optional[float],
    fpir: Optional[float],
    gallery_size: Optional[int],
    calibration: Optional[Mapping[str, Any]],
) -> tuple[Optional[str], str]:
    """``(short, sentence)``: the FPIR as short text (None when uncalibrated) and what it means."""
    if fpir is None:
        return None, (
            "No calibration is available for this model and search mode, so there is no "
            "estimate of how often a score this high occurs by chance; the score alone does "
            "not say how likely a chance resemblance is."
        )
    fpir = min(max(fpir, 0.0), 1.0)
    n = f"{gallery_size:,}" if gallery_size is not None else "an unknown number of"
    rate = format_rate(fpir)
    short = rate if rate.startswith(("less", "more")) else f"about {rate}"
    tail = ""
    if _is_upper_bound(fpir, gallery_size, calibration):
        upper = rate if fpir >= 0.0001 else f"1 in {round(1 / fpir):,}" if fpir > 0 else "0%"
        short = f"at most {upper}"
        tail = " (an upper bound: the score is above every non-mated score measured in calibration)"
    score_txt = f" (score {score:.3f} or higher)" if score is not None else ""
    sentence = (
        f"A search for someone who is not among the {n} subjects searched returns a "
        f"candidate this similar{score_txt} {short} of the time{tail}."
    )
    return short, sentence


def fpir_caveat(fpir: Optional[float], calibration: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The limit of the FPIR estimate, shown on every card that has one (None without an FPIR)."""
    if fpir is None:
        return None
    reference = (calibration or {}).get("reference")
    like = f"galleries like its calibration set ({reference})" if reference else "galleries like its calibration set"
    return (
        f"The FPIR is an estimate, valid for {like}. In a gallery of people who look like the person "
        "sketched (same capture, age group or ethnicity) chance resemblances are more common."
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


__all__ = ["CHANCE_FPIR", "STATEMENT", "format_rate", "fpir_caveat", "not_a_lead", "score_meaning"]
