"""Write forensics/reports/accuracy.json (the measured accuracy quoted in every report) from the
benchmark results in benchmarks/results/*.json. Nothing is typed in by hand: rerun the
benchmarks, then this script.

    .venv/bin/python scripts/write_accuracy.py
"""

from __future__ import annotations

import json
from pathlib import Path

from forensics import __version__

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "benchmarks" / "results"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main():
    rows = []
    sk = json.loads((RES / "sketch_identification.json").read_text())
    n_open = sk["open_gallery_photos"]
    for set_name in ("CUFS test", "FS2K report"):
        for gallery in ("closed", "open"):
            for mode in ("raw", "fusion", "roundtrip"):
                r = next((x for x in sk["rows"] if x["set"] == set_name and x["gallery"] == gallery
                          and x["mode"] == mode and x["part"] == "all"), None)
                if r is None:
                    continue
                where = ("its own true photos only" if gallery == "closed"
                         else f"a gallery of {n_open:,} photos (true photos, FS2K-style and LFW distractors)")
                rows.append({"what": f"{set_name} viewed sketches ({r['n']}), {mode} mode, against {where}: "
                                     "true person ranked 1st / in top 10",
                             "value": f"{pct(r['rank1'])} / {pct(r['rank10'])}",
                             "source": "benchmarks/sketch_identification.py"})
    ph = json.loads((RES / "photo_identification.json").read_text())
    rows.append({"what": f"photo control: LFW photos ({ph['probes']}) against the open gallery, rank 1 / top 10",
                 "value": f"{pct(ph['rank1'])} / {pct(ph['rank10'])}", "source": "benchmarks/photo_identification.py"})
    lfw = json.loads((RES / "lfw_verification.json").read_text())["rows"][0]
    rows.append({"what": "LFW verification (6,000 pairs, 10-fold), full pipeline", "value": pct(lfw["accuracy"]),
                 "source": "benchmarks/lfw_verification.py"})
    out = {"measured_on": "CUFS test, FS2K (the report half of the validation pairs, never used to choose a "
                          "setting since 2026-12-02) and LFW with this version's models, on a 2-core CPU; "
                          "see docs/benchmarks.md for the commands and the full tables. Viewed sketches: an upper "
                          "bound for eyewitness sketches drawn from memory.",
           "tool_version": __version__, "rows": rows}
    path = ROOT / "forensics" / "reports" / "accuracy.json"
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print(f"wrote {path} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
