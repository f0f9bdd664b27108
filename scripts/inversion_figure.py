"""docs/img/inversion_examples.png: aligned sketch | synthesized photo | true photo for 12 probes,
6 CUFS test and 6 FS2K validation sketches chosen at random with a fixed seed (not cherry-picked).

    .venv/bin/python scripts/inversion_figure.py [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]


def main():
    from forensics.datasets import default_data_dir, read_manifest
    from forensics.training.data import fs2k_val_identities
    from forensics.inversion.invert import invert_chips, load_inverter
    from forensics.models.registry import load_embedder
    from forensics.pipeline import FacePipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "inversion_examples.png")
    args = ap.parse_args()
    data = default_data_dir(required=True)
    rng = np.random.default_rng(args.seed)
    cufs = [r for r in read_manifest(data, "cufs") if r["split"] == "test"]
    fs2k = read_manifest(data, "fs2k")
    val = fs2k_val_identities([r["identity"] for r in fs2k])
    fs2k = [r for r in fs2k if r["identity"] in val]
    picks = []
    for rows in (cufs, fs2k):
        ids = sorted({r["identity"] for r in rows})
        chosen = [ids[i] for i in rng.choice(len(ids), 6, replace=False)]
        by = {(r["identity"], r["kind"]): r["path"] for r in rows}
        picks += [(i, by[(i, "sketch")], by[(i, "photo")]) for i in chosen]
    pipe = FacePipeline(embedder=load_embedder())
    sk = [pipe.process_one(s, kind="sketch") for _, s, _ in picks]
    ph = [pipe.process_one(p) for _, _, p in picks]
    synth = invert_chips(load_inverter(), np.stack([r.chip for r in sk]))
    e_syn = pipe.embedder.embed(synth)
    c, pad, head = 150, 6, 18
    W = 2 * (3 * c + 2 * pad) + 3 * pad
    H = head + 6 * (c + head)
    canvas = Image.new("RGB", (W, H + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(("aligned sketch", "synthesized", "true photo")):
        for block in range(2):
            draw.text((pad + block * (3 * c + 3 * pad) + j * (c + pad) + 4, 3), title, fill="black")
    for k, ((ident, _, _), s, p, y) in enumerate(zip(picks, sk, ph, synth)):
        block, row = divmod(k, 6)
        x0 = pad + block * (3 * c + 3 * pad)
        y0 = head + row * (c + head)
        for j, img in enumerate((s.chip, y, p.chip)):
            canvas.paste(Image.fromarray(img), (x0 + j * (c + pad), y0))
        cos_s = float(s.embedding.vector @ p.embedding.vector)
        cos_y = float(e_syn[k] @ p.embedding.vector)
        draw.text((x0 + 2, y0 + c + 3), f"{ident}  cos sketch {cos_s:.3f} -> synth {cos_y:.3f}", fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
