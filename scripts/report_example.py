#!/usr/bin/env python
"""The example report image of the docs: a real query's HTML report, seen in headless Chromium.

Enrolls CUFS test photos (read in place, with a few recorded details each), queries them with the
sketch of one of the people, writes the HTML report and screenshots its sketch and first
comparison rows.

    python scripts/report_example.py            # -> docs/img/report_example.png

Needs ../shared/data (research-only data, read in place; only the screenshot is written) and
`chromium` on the PATH.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "docs" / "img" / "report_example.png"
N_PHOTOS = 14
#: LFW people with one photo each, enrolled beside them: a search measures its own FPIR only
#: over 100 subjects or more (forensics.calibration.TAIL_MIN_SUBJECTS)
N_LFW = 100
#: the screenshot: the page is drawn this wide and tall, and this band of it is kept
WIDTH, HEIGHT, BAND = 1280, 3600, (560, 2560)


def cufs_rows(data: Path) -> list[dict]:
    return list(csv.DictReader(open(data / "cufs" / "manifest.csv", newline="")))


def write_manifest(data: Path, rows: list[dict], path: Path) -> list[dict]:
    """A manifest of N_PHOTOS CUFS test photos (every k-th) with made-up recorded details (CUFS
    records no sex or age: none is made up for them), and N_LFW LFW people as other bookings."""
    test = [r for r in rows if r["kind"] == "photo" and r["split"] == "test"]
    photos = test[::len(test) // N_PHOTOS][:N_PHOTOS]  # spread over the three CUFS parts, as bookings are mixed
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id", "name", "district"])
        for k, r in enumerate(photos):
            w.writerow([data / "cufs" / r["file"], f"B-{1001 + k}", f"Person {k + 1}",
                        "north" if k < N_PHOTOS // 2 else "south"])
        lfw = data / "lfw" / "deepfunneled_250"
        singles = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) == 1)[:N_LFW]
        for k, person in enumerate(singles):
            w.writerow([next(person.glob("*.jpg")), f"B-{2001 + k}", person.name.replace("_", " "), "west"])
    return photos


def forensics(*args) -> str:
    exe = [sys.executable, "-m", "forensics.cli"]
    res = subprocess.run([*exe, *map(str, args)], capture_output=True, text=True, cwd=ROOT, check=True)
    return res.stdout


def screenshot(html: Path, out: Path, work: Path) -> None:
    shot = work / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={work / 'profile'}", f"--window-size={WIDTH},{HEIGHT}",
                    f"--screenshot={shot}", html.as_uri()], capture_output=True, timeout=120, check=True)
    with Image.open(shot) as im:
        band = im.convert("RGB").crop((0, BAND[0], WIDTH, BAND[1]))
    # 256 colours, dithered: a third of the size, and the faces still read as photos
    band.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
        out, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    if shutil.which("chromium") is None:
        sys.exit("needs chromium on the PATH")
    rows = cufs_rows(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = write_manifest(args.data, rows, work / "m.csv")
        db = work / "gallery.db"
        forensics("enroll", "--manifest", work / "m.csv", "--source", "booking system", "--db", db)
        sketch = next(args.data / "cufs" / r["file"] for r in rows
                      if r["kind"] == "sketch" and r["identity"] == photos[0]["identity"])
        out = json.loads(forensics("query", sketch, "--top", 5, "--case", "C-17", "--operator", "jdoe",
                                   "--json", "--db", db))
        forensics("report", out["query_id"], "-o", work / "report.html", "--db", db)
        screenshot(work / "report.html", args.out, work)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
