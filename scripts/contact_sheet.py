#!/usr/bin/env python
"""Contact sheet of synthesized training sketches next to real artist sketches.

Rows: three CUFS photo/sketch pairs (one per part: cuhk_student, ar, xm2vts; the real sketch is of
the same person, drawn while looking at the photo) and three FS2K pairs, one per FS2K sketch
style (0, 1, 2). Columns: photo, our synthesized ``line``, ``pencil`` and ``colour`` sketches
(randomized, seeded), and the real sketch.

    python scripts/contact_sheet.py            # -> docs/img/sketch_contact_sheet.png

``--artist`` sets the artist-like styles (``charcoal``, ``pressure``; ``pencil`` for reference)
beside the real sketches of six FS2K training pairs, two per FS2K style, for a look by eye; the
sheet shows dataset images, so it goes to runs/ (git-ignored), never into the repository:

    python scripts/contact_sheet.py --artist   # -> runs/artist_contact_sheet.png

Needs ../shared/data (research-only data, read in place; only the rendered sheet is written).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from forensics.inversion.sketchify import ARTIST_STYLES, STYLES, sketchify  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "docs" / "img" / "sketch_contact_sheet.png"
ARTIST_OUT = ROOT / "runs" / "artist_contact_sheet.png"
ARTIST_COLUMNS = ("pencil", *ARTIST_STYLES)
#: (FS2K style, index among that style's training pairs): two pairs per style
ARTIST_ROWS = ((0, 20), (0, 120), (1, 40), (1, 140), (2, 60), (2, 160))

# which FS2K style our styles resemble most (FS2K has no colour sketches: all three are graphite)
FS2K_STYLE_NOTE = {
    0: "FS2K style 0: thin line drawing (~ line)",
    1: "FS2K style 1: dark strokes + hatching (~ pencil)",
    2: "FS2K style 2: soft shading, grey paper (~ pencil)",
}


def _cufs_pairs(data: Path, picks: dict[str, int]) -> list[tuple[str, Path, Path]]:
    with open(data / "cufs" / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for subset, k in picks.items():
        by_id: dict[str, dict[str, str]] = {}
        for r in rows:
            if r["subset"] == subset:
                by_id.setdefault(r["identity"], {})[r["kind"]] = r["file"]
        ids = sorted(i for i, kinds in by_id.items() if {"photo", "sketch"} <= kinds.keys())
        ident = ids[k % len(ids)]
        out.append(
            (f"CUFS {subset}", data / "cufs" / by_id[ident]["photo"], data / "cufs" / by_id[ident]["sketch"])
        )
    return out


def _fs2k_pairs(data: Path, picks) -> list[tuple[str, Path, Path]]:
    """(label, photo, sketch) of FS2K training pairs, ``picks``: (FS2K style, index in that style)."""
    with open(data / "fs2k" / "anno_train.json") as fh:
        anno = json.load(fh)
    out = []
    for style, k in picks:
        items = sorted((a for a in anno if a["style"] == style), key=lambda a: a["image_name"])
        a = items[k % len(items)]
        folder, name = a["image_name"].split("/")  # e.g. photo1/image0110
        ident = f"fs2k_p{folder[-1]}_{name.replace('image', '')}"
        photo = data / "fs2k" / "photos" / f"{ident}.jpg"
        sketch = data / "fs2k" / "sketches" / f"{ident}.jpg"
        out.append((FS2K_STYLE_NOTE[style], photo, sketch))
    return out


def _fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to cover ``size`` and centre-crop (250x250 FS2K -> 200x250 keeps the full height)."""
    w, h = size
    s = max(w / img.width, h / img.height)
    img = img.resize((max(w, round(img.width * s)), max(h, round(img.height * s))), Image.LANCZOS)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((left, top, left + w, top + h))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def build(data: Path, out: Path, seed: int = 0, cell: tuple[int, int] = (168, 210), artist: bool = False) -> Path:
    """The sheet at ``out``: the recipe styles on CUFS and FS2K pairs, or (``artist``) the artist styles on FS2K pairs."""
    if artist:
        pairs, styles = _fs2k_pairs(data, ARTIST_ROWS), ARTIST_COLUMNS
    else:
        pairs = _cufs_pairs(data, {"cuhk_student": 3, "ar": 7, "xm2vts": 11})
        pairs += _fs2k_pairs(data, ((0, 20), (1, 40), (2, 60)))
        styles = STYLES
    cw, ch = cell
    pad, head, label = 6, 28, 18
    cols = ["photo", *[f"synth {s}" for s in styles], "real sketch"]
    width = pad + len(cols) * (cw + pad)
    height = head + len(pairs) * (label + ch + pad)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    f_head, f_label = _font(16), _font(13)
    for c, name in enumerate(cols):
        draw.text((pad + c * (cw + pad) + 4, 6), name, fill="black", font=f_head)
    rng = np.random.default_rng(seed)
    for r, (name, photo_path, sketch_path) in enumerate(pairs):
        y = head + r * (label + ch + pad)
        draw.text((pad + 4, y + 2), name, fill=(90, 90, 90), font=f_label)
        photo = _fit(Image.open(photo_path).convert("RGB"), cell)
        arr = np.asarray(photo)
        cells = [photo]
        cells += [Image.fromarray(sketchify(arr, s, rng=rng)) for s in styles]
        cells.append(_fit(Image.open(sketch_path).convert("RGB"), cell))
        for c, im in enumerate(cells):
            sheet.paste(im, (pad + c * (cw + pad), y + label))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data root (default: %(default)s)")
    ap.add_argument("-o", "--out", type=Path, default=None,
                    help=f"output PNG (default: {DEFAULT_OUT}, with --artist {ARTIST_OUT})")
    ap.add_argument("--artist", action="store_true", help="the artist styles on six FS2K training pairs")
    ap.add_argument("--seed", type=int, default=0, help="seed of the randomized sketches")
    ap.add_argument("--cell", type=int, nargs=2, default=(168, 210), metavar=("W", "H"), help="cell size in px")
    args = ap.parse_args(argv)
    if not (args.data / "cufs" / "manifest.csv").exists() or not (args.data / "fs2k" / "anno_train.json").exists():
        print(f"data not found under {args.data}; nothing to do", file=sys.stderr)
        return 1
    out = args.out or (ARTIST_OUT if args.artist else DEFAULT_OUT)
    path = build(args.data, out, seed=args.seed, cell=tuple(args.cell), artist=args.artist)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
