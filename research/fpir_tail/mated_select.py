"""Mated searches on the select-split galleries (2026-12-01): how strong a claim the FPIR makes for
the person actually sketched, per tail size (power, next to the non-mated shares of
select_settings.py). Probes: the other half of the CUFS training people of each part (in those
galleries) and FS2K training people train[1::8]; each search keeps its top 201 scores.

    cd benchmarks && ../.venv/bin/python ../research/fpir_tail/mated_select.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from calibration import TAIL_DEPTH, WORK  # noqa: E402
from common import forensics_cmd, write_manifest  # noqa: E402

from forensics.datasets import default_data_dir, read_manifest  # noqa: E402
from forensics.training.data import fs2k_val_identities  # noqa: E402


def main() -> None:
    data = default_data_dir(required=True)
    cufs = read_manifest(data, "cufs")
    sets = {}
    for part in ("cuhk_student", "ar", "xm2vts"):
        ids = sorted({r["identity"] for r in cufs if r["subset"] == part and r["split"] == "train"})
        sets[f"cufs_{part}"] = [r for r in cufs if r["kind"] == "sketch" and r["identity"] in set(ids[1::2])]
    fs2k = read_manifest(data, "fs2k")
    train = sorted({r["identity"] for r in fs2k} - set(fs2k_val_identities([r["identity"] for r in fs2k])))
    sets["fs2k"] = [r for r in fs2k if r["kind"] == "sketch" and r["identity"] in set(train[1::8])]
    for slug, probes in sets.items():
        out = WORK / f"calibration_select_{slug}.mated.jsonl"
        if out.is_file():
            continue
        manifest = write_manifest(probes, WORK / f"calibration_select_{slug}_mated.csv")
        forensics_cmd("evaluate", "--probes", manifest, "--mode", "fusion", "--probe-kind", "sketch", "--top",
                      TAIL_DEPTH, "--out", out, "--db", WORK / f"calibration_select_{slug}.db",
                      "--cmc", WORK / f"calibration_select_{slug}.mated.cmc.png")


if __name__ == "__main__":
    main()
