"""Sketch identification: CUFS test sketches (338) and the 200 FS2K validation sketches as probes,
against their true photos alone (closed set) and against the open gallery (those photos plus all
LFW photos but the 1,680 photo-control probes: see common.py), in the modes of `forensics evaluate`:
raw (sketch embedded as drawn), inverted (synthesized photo embedded), fusion (both, averaged).

Also reports, per set, the SSIM and the identity similarity (cosine of dlib descriptors) between
the synthesized photo and the true photo, both as aligned 150x150 chips.
Prints a table, writes benchmarks/results/sketch_identification.json and a CMC plot (PNG).

    .venv/bin/python benchmarks/sketch_identification.py [--modes raw,inverted,fusion] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import RESULTS, WORK, build_gallery, cufs_test, forensics_cmd, fs2k_val, code_version, machine_description, write_manifest
from photo_identification import open_gallery_rows

from forensics.datasets import default_data_dir
from forensics.evaluate import cmc_curve

CUFS_PARTS = ("cuhk_student", "ar", "xm2vts")


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two greyscale uint8 images (Gaussian window σ=1.5, Wang et al. 2004)."""
    from PIL import Image

    r = np.arange(-5, 6)
    g = np.exp(-(r**2) / (2 * 1.5**2))
    g /= g.sum()

    def blur(x):  # separable Gaussian, edges reflected
        x = np.pad(x, 5, mode="reflect")
        x = np.apply_along_axis(lambda v: np.convolve(v, g, mode="valid"), 0, x)
        return np.apply_along_axis(lambda v: np.convolve(v, g, mode="valid"), 1, x)

    a = np.asarray(Image.fromarray(a).convert("L"), np.float64)
    b = np.asarray(Image.fromarray(b).convert("L"), np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma**2, blur(b * b) - mb**2, blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(s.mean())


def ranks_of(jsonl: Path) -> tuple[list[str], list[int | None]]:
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    ids = [x["subject_id"] for x in lines]
    ranks = [next((c["rank"] for c in x["candidates"] if c["subject_id"] == x["subject_id"]), None) for x in lines]
    return ids, ranks


def summarise(ranks: list[int | None]) -> dict:
    cmc = cmc_curve(ranks, 10)
    return {"n": len(ranks), "rank1": cmc[0], "rank5": cmc[4], "rank10": cmc[9], "cmc": cmc}


def synthesis_quality(data: Path, sketches: list[dict], photos: list[dict]) -> dict:
    """SSIM and identity cosine between synthesized and true photo chips."""
    from forensics.inversion.invert import invert_chips, load_inverter
    from forensics.models.registry import load_embedder
    from forensics.pipeline import FacePipeline

    pipe = FacePipeline(embedder=load_embedder())
    inv = load_inverter()
    photo_by_id = {r["identity"]: r for r in photos}
    sk_recs = [r for batch in pipe.process([r["path"] for r in sketches], kind="sketch") for r in batch]
    ph_recs = [r for batch in pipe.process([photo_by_id[r["identity"]]["path"] for r in sketches]) for r in batch]
    synth = invert_chips(inv, np.stack([r.chip for r in sk_recs]))
    e_syn = pipe.embedder.embed(synth)
    e_ph = np.stack([r.embedding.vector for r in ph_recs])
    e_sk = np.stack([r.embedding.vector for r in sk_recs])
    return {"ssim_synth_vs_photo": float(np.mean([ssim(s, p.chip) for s, p in zip(synth, ph_recs)])),
            "ssim_sketch_vs_photo": float(np.mean([ssim(s.chip, p.chip) for s, p in zip(sk_recs, ph_recs)])),
            "identity_cos_synth_vs_photo": float(np.mean(np.sum(e_syn * e_ph, 1))),
            "identity_cos_sketch_vs_photo": float(np.mean(np.sum(e_sk * e_ph, 1)))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--modes", default="raw,inverted,fusion,roundtrip")
    ap.add_argument("--open-modes", default="raw,inverted,fusion",
                    help="modes also run against the open gallery (roundtrip is not by default: its round-trip "
                    "vectors for the ~13,000 LFW distractors cost ~20 minutes of 2 CPU cores; not run yet)")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse the JSONL of evaluations already run "
                    "(benchmarks/work/*.jsonl) instead of running them again")
    args = ap.parse_args()
    data = args.data or default_data_dir(required=True)
    modes = args.modes.split(",")
    open_modes = [m for m in args.open_modes.split(",") if m in modes]
    sets = {"CUFS test": (cufs_test(data, "sketch"), cufs_test(data, "photo")),
            "FS2K val": (fs2k_val(data, "sketch"), fs2k_val(data, "photo"))}
    if args.reuse:
        galleries = {"open": WORK / "open.db", "closed CUFS test": WORK / "closed_cufs.db",
                     "closed FS2K val": WORK / "closed_fs2k.db"}
    else:
        galleries = {"open": build_gallery("open", open_gallery_rows(data), rebuild=args.rebuild),
                     "closed CUFS test": build_gallery("closed_cufs", sets["CUFS test"][1], rebuild=args.rebuild),
                     "closed FS2K val": build_gallery("closed_fs2k", sets["FS2K val"][1], rebuild=args.rebuild)}
    results = []
    for set_name, (sketches, photos) in sets.items():
        manifest = write_manifest(sketches, WORK / f"{set_name.replace(' ', '_')}_sketches.csv")
        for gname in ("closed " + set_name, "open"):
            for mode in (modes if gname != "open" else open_modes):
                out = WORK / f"{set_name.replace(' ', '_')}_{gname.replace(' ', '_')}_{mode}.jsonl"
                secs = None
                if not (args.reuse and out.is_file()):
                    secs = forensics_cmd("evaluate", "--probes", manifest, "--top", 10, "--mode", mode,
                                         "--probe-kind", "sketch", "--out", out, "--db", galleries[gname],
                                         "--cmc", WORK / "cmc.png")
                ids, ranks = ranks_of(out)
                row = {"set": set_name, "gallery": "closed" if gname != "open" else "open", "mode": mode,
                       "part": "all", **summarise(ranks), "seconds": secs}
                results.append(row)
                if set_name == "CUFS test":
                    for part in CUFS_PARTS:
                        pr = [r for i, r in zip(ids, ranks) if i.startswith(f"cufs_{part}_")]
                        results.append({"set": set_name, "gallery": row["gallery"], "mode": mode, "part": part,
                                        **summarise(pr)})
    quality = {}
    if any(m != "raw" for m in modes):
        for set_name, (sketches, photos) in sets.items():
            quality[set_name] = synthesis_quality(data, sketches, photos)
    print(f"{'set':10} {'gallery':7} {'mode':9} {'part':13} {'n':>4} {'R1':>7} {'R5':>7} {'R10':>7}")
    for r in results:
        print(f"{r['set']:10} {r['gallery']:7} {r['mode']:9} {r['part']:13} {r['n']:4d} "
              f"{r['rank1']:7.1%} {r['rank5']:7.1%} {r['rank10']:7.1%}")
    for set_name, q in quality.items():
        print(f"{set_name}: SSIM synth/photo {q['ssim_synth_vs_photo']:.3f} (sketch/photo {q['ssim_sketch_vs_photo']:.3f}); "
              f"identity cosine synth/photo {q['identity_cos_synth_vs_photo']:.3f} "
              f"(sketch/photo {q['identity_cos_sketch_vs_photo']:.3f})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sketch_identification.json").write_text(json.dumps({"rows": results, "quality": quality,
                                                                          "machine": machine_description(), "code": code_version()}, indent=2))
    plot_cmc(results, RESULTS / "sketch_identification_cmc.png")


def plot_cmc(rows: list[dict], path: Path) -> Path:
    """One panel per probe set; colour = mode, solid = closed gallery, dashed = open gallery."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"raw": "tab:grey", "inverted": "tab:blue", "fusion": "tab:green", "roundtrip": "tab:red"}
    sets = list(dict.fromkeys(r["set"] for r in rows))
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4), dpi=110, sharey=True)
    for ax, set_name in zip(np.atleast_1d(axes), sets):
        for r in rows:
            if r["set"] == set_name and r["part"] == "all":
                ax.plot(range(1, len(r["cmc"]) + 1), [100 * c for c in r["cmc"]], marker="o", ms=3,
                        color=colours.get(r["mode"], "black"), linestyle="-" if r["gallery"] == "closed" else "--",
                        label=f"{r['mode']}, {r['gallery']}")
        ax.set_title(f"{set_name} (solid: closed, dashed: with LFW distractors)", fontsize=9)
        ax.set_xlabel("rank")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("identification rate (%)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
