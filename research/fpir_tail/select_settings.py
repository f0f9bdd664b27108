"""Choose the gallery-adaptive FPIR's tail size on the select split (2026-12-01).

Reads the select-split searches of `benchmarks/calibration.py --split select` (every search kept
its top 201 subject scores) and, for each tail size k and each rule (the search's own tail alone,
or the larger of it and the reference calibration), prints the share of non-mated top candidates
claimed at or below 0.1%, 1% and 10%, for the stated value and for the upper end of its interval,
against the acceptance bound max(2 x level, level + 3 SE). Nothing here reads the report split.

    .venv/bin/python research/fpir_tail/select_settings.py
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from forensics.calibration import fit_tail, stated_fpir  # noqa: E402

WORK = ROOT / "benchmarks" / "work"
LEVELS = (0.001, 0.01, 0.1)


def load(slug: str):
    lines = [json.loads(x) for x in (WORK / f"{slug}.jsonl").read_text().splitlines()]
    with open(WORK / f"{slug}_gallery.csv") as f:
        n = len({r["subject_id"] for r in csv.DictReader(f)})
    return [[c["score"] for c in x["candidates"]] for x in lines if x["candidates"]], n


def load_mated(slug: str):
    path = WORK / f"{slug}.mated.jsonl"
    if not path.is_file() or not path.stat().st_size:
        return None
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    return [([c["score"] for c in x["candidates"]], x["candidates"][0]["subject_id"] == x["subject_id"])
            for x in lines if x["candidates"]]


def power(slug: str, n: int, ref, k: int) -> str:
    """Mated searches: the share whose top candidate is the person sketched AND is claimed at or
    below 1% / 10% (how strong a true lead reads)."""
    mated = load_mated(slug)
    if not mated:
        return ""
    cells = []
    for lv in (0.01, 0.1):
        hits = 0
        for tail, correct in mated:
            st = stated_fpir(tail[0], n, ref, fit_tail(tail, n, k=k, min_subjects=2 * k))
            hits += bool(correct and st is not None and st.value <= lv)
        cells.append(f"{lv:.0%}: {hits / len(mated):5.1%}")
    rank1 = sum(c for _, c in mated) / len(mated)
    return f"   mated (rank-1 {rank1:4.0%}) true top claimed <= " + " ".join(cells)


def main() -> None:
    from forensics.app import Forensics, ModelChoice
    from forensics.calibration import load_calibration
    from forensics.whitening import load_whitening

    fx = Forensics(WORK / "calibration_select_fs2k.db", ModelChoice("dlib-resnet", None, "central"), "research")
    info = fx.pipeline().embedder.info
    w = load_whitening(info.key.slug)
    ref = load_calibration(info, "fusion", space=w.space_id if w is not None else None)
    pops = sorted(p.stem.replace("_gallery", "") for p in WORK.glob("calibration_select_*_gallery.csv"))
    print("reference calibration:", ref.describe() if ref else None)
    for rule in ("tail", "max"):
        for k in (20, 30, 50, 100):
            print(f"\n== rule {rule}, k {k}  (observed share claimed <= level: value / upper end; bound)")
            for slug in pops:
                tails, n = load(slug)
                use_ref = ref if rule == "max" and "lfw" not in slug else None
                vals, highs = [], []
                for t in tails:
                    st = stated_fpir(t[0], n, use_ref, fit_tail(t, n, k=k, min_subjects=2 * k))
                    vals.append(st.value if st else None)
                    highs.append(st.high if st else None)
                cells = []
                for lv in LEVELS:
                    m = len(vals)
                    a = sum(1 for v in vals if v is not None and v <= lv) / m
                    b = sum(1 for v in highs if v is not None and v <= lv) / m
                    bound = max(2 * lv, lv + 3 * math.sqrt(lv * (1 - lv) / m))
                    cells.append(f"{lv:.1%}: {a:5.1%}/{b:5.1%} ({bound:4.1%}){'' if a <= bound else ' FAIL'}")
                print(f"  {slug.replace('calibration_select_', ''):18} n={n:5} m={len(vals):4}  " + "  ".join(cells)
                      + power(slug, n, use_ref, k))


if __name__ == "__main__":
    main()
