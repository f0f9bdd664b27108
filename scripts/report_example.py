#!/usr/bin/env python
"""The example report image of the docs: a real query's HTML report, seen in headless Chromium.

Enrolls CUFS test photos (read in place, with a few recorded details each), queries them with the
sketch of one of the people, writes the HTML report and screenshots its sketch and first
comparison rows, with every picture on the page blurred: the research data's faces (CUFS, LFW)
are shown in the docs only as a layout, never redistributed as recognisable images.

    python scripts/report_example.py            # -> docs/img/report_example.png

Needs ../shared/data (research-only data: the files used are copied into a temporary folder
under neutral names, and only the screenshot is written) and `chromium` on the PATH.
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


def booking(src: Path, work: Path, name: str) -> Path:
    """A copy of `src` named `name` under work/bookings: the report prints the file's path, and the
    research data's file names carry real people's names."""
    dest = work / "bookings" / f"{name}{src.suffix.lower()}"
    dest.parent.mkdir(exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def write_manifest(data: Path, rows: list[dict], path: Path) -> list[dict]:
    """A manifest of N_PHOTOS CUFS test photos (every k-th) with made-up recorded details (CUFS
    records no sex or age: none is made up for them), and N_LFW LFW people as other bookings, named
    "Person N" like the rest (a real person's name is never printed beside a sketch of another)."""
    test = [r for r in rows if r["kind"] == "photo" and r["split"] == "test"]
    photos = test[::len(test) // N_PHOTOS][:N_PHOTOS]  # spread over the three CUFS parts, as bookings are mixed
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id", "name", "district"])
        for k, r in enumerate(photos):
            w.writerow([booking(data / "cufs" / r["file"], path.parent, f"B-{1001 + k}"), f"B-{1001 + k}",
                        f"Person {k + 1}", "north" if k < N_PHOTOS // 2 else "south"])
        lfw = data / "lfw" / "deepfunneled_250"
        singles = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) == 1)[:N_LFW]
        for k, person in enumerate(singles):
            w.writerow([booking(next(person.glob("*.jpg")), path.parent, f"B-{2001 + k}"), f"B-{2001 + k}",
                        f"Person {N_PHOTOS + k + 1}", "west"])
    return photos


def forensics(*args) -> str:
    exe = [sys.executable, "-m", "forensics.cli"]
    res = subprocess.run([*exe, *map(str, args)], capture_output=True, text=True, cwd=ROOT, check=True)
    return res.stdout


#: added to a copy of the report before the screenshot: every picture blurred beyond recognition
BLUR_STYLE = "<style>img { filter: blur(14px); }</style>"


def blurred_copy(html: Path, work: Path) -> Path:
    """A copy of the report with BLUR_STYLE last in its head (the report itself is not changed)."""
    text = html.read_text(encoding="utf-8")
    if "</head>" not in text:
        sys.exit(f"{html}: no </head> to add the blur style to")
    out = work / "report_blurred.html"
    out.write_text(text.replace("</head>", BLUR_STYLE + "</head>", 1), encoding="utf-8")
    return out


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
        sketch = booking(next(args.data / "cufs" / r["file"] for r in rows
                              if r["kind"] == "sketch" and r["identity"] == photos[0]["identity"]),
                         work, "sketch-C-17")
        out = json.loads(forensics("query", sketch, "--top", 5, "--case", "C-17", "--operator", "jdoe",
                                   "--json", "--db", db))
        forensics("report", out["query_id"], "-o", work / "report.html", "--db", db)
        screenshot(blurred_copy(work / "report.html", work), args.out, work)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
