"""Sketch identification under the development protocol of benchmarks/common.py (issue 18).

Probe sets: the 338 CUFS test sketches (report), the FS2K `select` half (100 validation sketches:
where modes and settings are chosen) and the FS2K `report` half (the other 100: where figures are
stated). Each is searched against its true photos alone (closed set) and against the open gallery
(12,947 photos: CUFS test, every FS2K photo, LFW), through the real `forensics evaluate`, in every
mode of `forensics query`: raw (sketch embedded as drawn), inverted (synthesized photo embedded),
fusion (both, weighted) and roundtrip (fusion plus the synthesized photo against each gallery face
as the inverter renders it; its gallery vectors are computed once by `forensics gallery roundtrip`,
timed here).

Rows: rank-1/5/10 and the CMC per set, gallery and mode; per CUFS part; per FS2K style (FS2K's
annotation `style` 0/1/2) and per pose (its `frontal_face` attribute: frontal / turned), and per
pose as the product estimates it for every set (`forensics.pose`, the rule a query warns by); the cost
per query (the evaluate command's wall time over its probes, start-up included) and per gallery
face (enrollment, and the round-trip vectors). Also, per set, the SSIM and the identity similarity
(cosine of dlib descriptors) between the synthesized photo and the true photo (aligned chips).
Prints a table, writes benchmarks/results/sketch_identification.json and a CMC plot (PNG).

    cd benchmarks && ../.venv/bin/python sketch_identification.py [--modes raw,inverted,fusion,roundtrip] [--rebuild] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import (RESULTS, WORK, build_gallery, build_record, code_version, cufs_test, forensics_cmd, fs2k_annotations,
                    fs2k_half, fs2k_val, machine_description, open_gallery_rows, write_manifest)

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


def synthesis_quality(pipe, sketch_recs: list, photos: list[dict]) -> dict:
    """SSIM and identity cosine between synthesized and true photo chips, for sketch face records
    (`process_sketches`) whose true photos are among `photos`."""
    from forensics.inversion.invert import invert_chips, load_inverter

    inv = load_inverter()
    photo_by_id = {r["identity"]: r for r in photos}
    ph_recs = [r for batch in pipe.process([photo_by_id[r.identity]["path"] for r in sketch_recs]) for r in batch]
    synth = invert_chips(inv, np.stack([r.chip for r in sketch_recs]))
    e_syn = pipe.embedder.embed(synth)
    e_ph = np.stack([r.embedding.vector for r in ph_recs])
    e_sk = np.stack([r.embedding.vector for r in sketch_recs])
    return {"ssim_synth_vs_photo": float(np.mean([ssim(s, p.chip) for s, p in zip(synth, ph_recs)])),
            "ssim_sketch_vs_photo": float(np.mean([ssim(s.chip, p.chip) for s, p in zip(sketch_recs, ph_recs)])),
            "identity_cos_synth_vs_photo": float(np.mean(np.sum(e_syn * e_ph, 1))),
            "identity_cos_sketch_vs_photo": float(np.mean(np.sum(e_sk * e_ph, 1)))}


GALLERIES = {"open": "open", "closed CUFS test": "closed_cufs", "closed FS2K val": "closed_fs2k"}


def probe_sets(data: Path) -> dict[str, tuple[list[dict], str]]:
    """Each probe set's sketches and the closed gallery of its true photos."""
    return {"CUFS test": (cufs_test(data, "sketch"), "closed CUFS test"),
            "FS2K select": (fs2k_half(data, "sketch", "select"), "closed FS2K val"),
            "FS2K report": (fs2k_half(data, "sketch", "report"), "closed FS2K val")}


def build_galleries(data: Path, rebuild: bool, reuse: bool) -> dict[str, Path]:
    if reuse:
        return {g: WORK / f"{name}.db" for g, name in GALLERIES.items()}
    rows = {"open": open_gallery_rows(data), "closed CUFS test": cufs_test(data, "photo"),
            "closed FS2K val": fs2k_val(data, "photo")}
    return {g: build_gallery(GALLERIES[g], rows[g], rebuild=rebuild) for g in GALLERIES}


def roundtrip_cost(db: Path, reuse: bool) -> dict:
    """Compute the open gallery's round-trip vectors ahead of the queries, timed (the cost a
    gallery face of the roundtrip mode); kept beside the gallery for --reuse."""
    record = WORK / "open.roundtrip.json"
    if reuse and record.is_file():
        return json.loads(record.read_text())
    sidecar = db.with_suffix(".roundtrip.faiss.json")
    before = json.loads(sidecar.read_text())["count"] if sidecar.is_file() else 0  # an interrupted build resumes
    secs = forensics_cmd("gallery", "roundtrip", "--db", db)
    out = {"faces": json.loads(sidecar.read_text())["count"] - before, "seconds": secs,
           "load_average_after": os.getloadavg()[0], "torch_threads": os.environ.get("OMP_NUM_THREADS")}
    record.write_text(json.dumps(out))
    return out


def breakdowns(set_name: str, ids: list[str], ranks: list[int | None], notes: dict,
               flagged: dict[str, bool]) -> list[tuple[str, list]]:
    """(part, ranks) per CUFS part or FS2K style and annotated pose, and per pose as the product
    estimates it (`forensics.pose`: "estimated frontal" / "estimated turned")."""
    def where(keep) -> list:
        return [r for i, r in zip(ids, ranks) if keep(i)]

    if set_name.startswith("CUFS"):
        out = [(part, where(lambda i, part=part: i.startswith(f"cufs_{part}_"))) for part in CUFS_PARTS]
    else:
        out = [(f"style {k}", where(lambda i, k=k: notes[i]["style"] == k)) for k in (0, 1, 2)]
        out += [(pose, where(lambda i, pose=pose: notes[i]["turned"] == (pose == "turned")))
                for pose in ("frontal", "turned")]
    return out + [(f"estimated {pose}", where(lambda i, pose=pose: i in flagged and flagged[i] == (pose == "turned")))
                  for pose in ("frontal", "turned")]


@dataclass
class SketchRecord:
    """A probe sketch's face record as the pipeline makes it, with its identity."""

    identity: str
    chip: np.ndarray
    embedding: object
    turned: bool  # the product's pose rule (`forensics.pose`, the rule a query warns by)


def process_sketches(pipe, sketches: list[dict]) -> dict[str, SketchRecord]:
    """Each sketch through the pipeline once, by identity (sketches whose face is not found are
    left out): what the pose breakdown and the synthesis quality both read."""
    from forensics.pipeline import PipelineFailure

    recs = [r for batch in pipe.process([r["path"] for r in sketches], kind="sketch") for r in batch]
    return {s["identity"]: SketchRecord(s["identity"], r.chip, r.embedding, r.pose.turned)
            for s, r in zip(sketches, recs) if not isinstance(r, PipelineFailure)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--modes", default="raw,inverted,fusion,roundtrip")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse the galleries and the JSONL of evaluations "
                    "already run (benchmarks/work/) instead of running them again")
    args = ap.parse_args()
    data = args.data or default_data_dir(required=True)
    modes = args.modes.split(",")
    sets, notes = probe_sets(data), fs2k_annotations(data)
    galleries = build_galleries(data, args.rebuild, args.reuse)
    cost = {"enroll": build_record("open"),
            "roundtrip": roundtrip_cost(galleries["open"], args.reuse) if "roundtrip" in modes else None}
    from forensics.models.registry import load_embedder
    from forensics.pipeline import FacePipeline

    pipe = FacePipeline(embedder=load_embedder())
    processed = process_sketches(pipe, [r for sketches, _ in sets.values() for r in sketches])
    flagged = {identity: rec.turned for identity, rec in processed.items()}
    results = []
    for set_name, (sketches, closed) in sets.items():
        manifest = write_manifest(sketches, WORK / f"{set_name.replace(' ', '_')}_sketches.csv")
        for gname in (closed, "open"):
            for mode in modes:
                out = WORK / f"{set_name.replace(' ', '_')}_{gname.replace(' ', '_')}_{mode}.jsonl"
                timing = out.with_suffix(".seconds.json")  # kept beside the results for --reuse
                if not (args.reuse and out.is_file()):
                    secs = forensics_cmd("evaluate", "--probes", manifest, "--top", 10, "--mode", mode,
                                         "--probe-kind", "sketch", "--out", out, "--db", galleries[gname],
                                         "--cmc", WORK / "cmc.png")
                    timing.write_text(json.dumps({"seconds": secs, "load_average_after": os.getloadavg()[0]}))
                timed = json.loads(timing.read_text()) if timing.is_file() else {}
                ids, ranks = ranks_of(out)
                row = {"set": set_name, "gallery": "closed" if gname != "open" else "open", "mode": mode,
                       "part": "all", **summarise(ranks), "seconds": timed.get("seconds"),
                       "seconds_per_query": timed["seconds"] / len(ranks) if timed else None,
                       "load_average_after": timed.get("load_average_after")}
                results.append(row)
                results += [{"set": set_name, "gallery": row["gallery"], "mode": mode, "part": part, **summarise(pr)}
                            for part, pr in breakdowns(set_name, ids, ranks, notes, flagged)]
    quality = {}
    if any(m != "raw" for m in modes):
        for set_name in ("CUFS test", "FS2K report"):
            sketches = sets[set_name][0]
            photos = cufs_test(data, "photo") if set_name == "CUFS test" else fs2k_val(data, "photo")
            recs = [processed[r["identity"]] for r in sketches if r["identity"] in processed]
            quality[set_name] = synthesis_quality(pipe, recs, photos)
    print_table(results, quality, cost)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sketch_identification.json").write_text(json.dumps(
        {"rows": results, "quality": quality, "gallery_cost": cost, "open_gallery_photos": len(open_gallery_rows(data)),
         "torch_threads": os.environ.get("OMP_NUM_THREADS"), "load_average_end": os.getloadavg()[0],
         "machine": machine_description(), "code": code_version()}, indent=2))
    plot_cmc(results, RESULTS / "sketch_identification_cmc.png")


def print_table(results: list[dict], quality: dict, cost: dict) -> None:
    print(f"{'set':12} {'gallery':7} {'mode':9} {'part':13} {'n':>4} {'R1':>7} {'R5':>7} {'R10':>7} {'s/query':>8}")
    for r in results:
        spq = f"{r['seconds_per_query']:8.2f}" if r.get("seconds_per_query") else ""
        print(f"{r['set']:12} {r['gallery']:7} {r['mode']:9} {r['part']:13} {r['n']:4d} "
              f"{r['rank1']:7.1%} {r['rank5']:7.1%} {r['rank10']:7.1%} {spq}")
    for set_name, q in quality.items():
        print(f"{set_name}: SSIM synth/photo {q['ssim_synth_vs_photo']:.3f} (sketch/photo {q['ssim_sketch_vs_photo']:.3f}); "
              f"identity cosine synth/photo {q['identity_cos_synth_vs_photo']:.3f} "
              f"(sketch/photo {q['identity_cos_sketch_vs_photo']:.3f})")
    print("gallery cost:", json.dumps(cost))


def plot_cmc(rows: list[dict], path: Path) -> Path:
    """One panel per probe set; colour = mode, solid = closed gallery, dashed = open gallery."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"raw": "tab:grey", "inverted": "tab:blue", "fusion": "tab:green", "roundtrip": "tab:red"}
    sets = list(dict.fromkeys(r["set"] for r in rows))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 4), dpi=110, sharey=True)
    for ax, set_name in zip(np.atleast_1d(axes), sets):
        for r in rows:
            if r["set"] == set_name and r["part"] == "all":
                ax.plot(range(1, len(r["cmc"]) + 1), [100 * c for c in r["cmc"]], marker="o", ms=3,
                        color=colours.get(r["mode"], "black"), linestyle="-" if r["gallery"] == "closed" else "--",
                        label=f"{r['mode']}, {r['gallery']}")
        ax.set_title(f"{set_name} (solid: closed, dashed: open gallery)", fontsize=9)
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
