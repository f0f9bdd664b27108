"""Locating the development data (`../shared/data`): CUFS, FS2K and LFW manifests.

The tool runs without these; only the demo, benchmarks, training and tests use them.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from forensics.errors import ForensicsError

DATA_HELP = (
    "expected a data folder holding cufs/, fs2k/ and lfw/ (each with manifest.csv), "
    "as in ../shared/data; pass --data PATH or set FORENSICS_DATA"
)


def default_data_dir(required: bool = False) -> Path | None:
    """FORENSICS_DATA, else ../shared/data next to the working directory or the source tree."""
    candidates = []
    if os.environ.get("FORENSICS_DATA"):
        candidates.append(Path(os.environ["FORENSICS_DATA"]))
    candidates += [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"]
    for c in candidates:
        if (c / "lfw").is_dir() or (c / "cufs").is_dir():
            return c
    if required:
        raise ForensicsError(f"no data folder found; {DATA_HELP}")
    return None


def read_manifest(data: Path, dataset: str) -> list[dict]:
    path = data / dataset / "manifest.csv"
    if not path.is_file():
        raise ForensicsError(f"{path} not found; {DATA_HELP}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["path"] = data / dataset / r["file"]
    return rows


#: LFW files two images under two names each; drop the second name of each pair in galleries.
LFW_DUPLICATES = {"Ricky_Ray_0001", "Raul_Ibanez_0001"}
