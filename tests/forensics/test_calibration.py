"""FPIR calibration and the search's own score tail, on synthetic scores (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from forensics.calibration import (TAIL_MIN_SUBJECTS, TAIL_SIZE, fit_calibration, fit_tail, parse_max_fpir,
                                   stated_fpir, within_max_fpir)


def test_fpir_grows_with_gallery_size_and_falls_with_score():
    rng = np.random.default_rng(0)
    cal = fit_calibration(rng.normal(0.5, 0.1, 200_000), "e", "raw", 100, 2000, "synthetic")
    assert cal.p_nonmated(0.5) == pytest.approx(0.5, abs=0.01)
    assert cal.fpir(0.8, 10) < cal.fpir(0.8, 1000) < 1
    assert cal.fpir(0.9, 100) < cal.fpir(0.7, 100)
    # beyond every observed impostor score: bounded by 1/n, not zero
    assert cal.p_nonmated(0.999) == pytest.approx(1 / 200_000)
    assert cal.fpir(0.5, 1) == pytest.approx(cal.p_nonmated(0.5), rel=1e-6)


# -- the search's own score tail (gallery-adaptive FPIR) -------------------------------------------


def _top_fpirs(draw, n_searches=2000, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_searches):
        s = np.sort(draw(rng, n))[::-1]
        out.append(fit_tail(s[:TAIL_SIZE + 1], n).fpir(s[0]))
    return np.array(out)


def test_tail_fpir_is_calibrated_where_the_tail_is_exponential():
    """Non-mated searches (every score an impostor's): with an exponential tail, the FPIR of the
    best score is about uniform, so about `level` of searches are claimed at or below `level`."""
    f = _top_fpirs(lambda rng, n: 0.3 + rng.exponential(0.05, n))
    for level in (0.05, 0.1, 0.5):
        assert abs(np.mean(f <= level) - level) < 3 * np.sqrt(level * (1 - level) / len(f)) + 0.01, level


def test_tail_fpir_errs_high_where_the_tail_is_lighter():
    """Cosine scores are bounded (a tail lighter than exponential): the estimate over-states the
    FPIR there, never under-states it."""
    f = _top_fpirs(lambda rng, n: rng.normal(0.2, 0.1, n), n_searches=1000)
    for level in (0.01, 0.1, 0.5):
        assert np.mean(f <= level) <= level


def test_a_score_far_above_the_tail_gets_a_small_fpir_inside_its_interval():
    rng = np.random.default_rng(3)
    s = np.sort(rng.normal(0.2, 0.1, 800))[::-1][:TAIL_SIZE + 1]
    mate = np.concatenate([[0.95], s[:TAIL_SIZE]])
    tail = fit_tail(mate, 801)
    low, high = tail.interval(0.95)
    assert low <= tail.fpir(0.95) <= high < 0.01
    assert tail.fpir(s[5]) > 0.5  # a score inside the tail is what chance gives
    d = tail.describe()
    assert d["k"] == TAIL_SIZE and d["n_searched"] == 801 and d["confidence"] == 0.9


def test_too_few_subjects_searched_give_no_fpir():
    s = np.linspace(0.9, 0.1, TAIL_SIZE + 1)
    assert fit_tail(s, TAIL_MIN_SUBJECTS - 1) is None
    assert stated_fpir(0.9, TAIL_MIN_SUBJECTS - 1, None, None) is None
    assert fit_tail(s[:TAIL_SIZE], 5000) is None  # fewer scores than the tail needs


def test_the_stated_fpir_is_never_below_the_reference():
    rng = np.random.default_rng(0)
    ref = fit_calibration(rng.normal(0.2, 0.1, 100_000), "e", "fusion", 10, 1000, "synthetic")
    s = np.sort(rng.normal(0.0, 0.05, 2000))[::-1][:TAIL_SIZE + 1]  # a gallery scoring low: tail says rare
    tail = fit_tail(s, 2000)
    st = stated_fpir(0.45, 2000, ref, tail)
    assert st.basis == "reference" and st.value == pytest.approx(ref.fpir(0.45, 2000))
    assert st.low == st.high == st.value  # the reference is above the whole interval here
    alike = np.sort(rng.normal(0.4, 0.1, 2000))[::-1][:TAIL_SIZE + 1]  # look-alikes: tail says common
    st = stated_fpir(0.7, 2000, ref, fit_tail(alike, 2000))
    assert st.basis == "gallery" and st.value > ref.fpir(0.7, 2000) and st.low <= st.value <= st.high


def test_max_fpir_parsing_and_rule():
    assert parse_max_fpir("0.01") == 0.01 and parse_max_fpir("1%") == pytest.approx(0.01)
    for bad in ("0", "-1", "1.5", "abc", "nan", "200%"):
        with pytest.raises(ValueError, match="--max-fpir"):
            parse_max_fpir(bad)
    assert within_max_fpir(0.01, 0.01) and not within_max_fpir(0.02, 0.01)
    assert within_max_fpir(None, None) and not within_max_fpir(None, 0.5)
