"""Does the FPIR stated beside a candidate hold on galleries unlike the calibration set?

Protocol (per population the project has sketches of): enroll part of that population's photos
with LFW distractors, then search with the sketches of the people LEFT OUT, so every search is
non-mated and meets same-source impostors, as a real case gallery would. For claimed levels
0.1%, 1% and 10%: the share of non-mated searches whose top candidate is claimed at or below the
level. An honest FPIR gives about the level (fewer is conservative); acceptance (issue "Honest
score meaning"): observed <= max(2 x level, level + 3 standard errors), in every population and
level.

Probes: CUFS test sketches (per part) and FS2K validation sketches, none of which the FPIR
calibration used as probes (it used the training sketches; `scripts/calibrate_scores.py`). Its
non-mated reference subjects included the CUFS test and FS2K val photos, so the photos of these
galleries are not all unseen by it: the table measures the shipped calibration as it is.
Searches run through the real `forensics enroll` and `forensics evaluate --mode fusion` (or
`--mode roundtrip`), which writes the FPIR of every candidate as `forensics query` states it.

    cd benchmarks && ../.venv/bin/python calibration.py [--mode roundtrip]   # ~15 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from common import RESULTS, WORK, code_version, forensics_cmd, machine_description, write_manifest

from forensics.calibration import acceptance_bound
from forensics.datasets import LFW_DUPLICATES, default_data_dir, read_manifest
from forensics.training.data import fs2k_val_identities

LEVELS = (0.001, 0.01, 0.1)
N_LFW = 500  # LFW distractors in every gallery
MODES = ("fusion", "roundtrip")  # sketch modes whose FPIR is checked (fusion: the table of record)
SPLITS = ("select", "report")
TAIL_DEPTH = 201  # candidates kept per search on the select split: the score tail the FPIR settings are chosen on


@dataclass
class Population:
    """One validation population: its gallery photos (LFW distractors added) and non-mated probes."""

    name: str
    photos: list[dict]
    probes: list[dict]
    kind: str = "sketch"  # probe kind: sketches are searched in the benchmark's mode, photos in raw mode


def populations(data: Path, split: str = "report") -> list[Population]:
    """The populations of a split. "report": half the CUFS test people of each part and half the
    FS2K validation people are the probes. "select" (where the FPIR's settings are chosen): half
    the CUFS training people of each part and every 8th FS2K training person. Each gallery holds
    every other photo of that population. LFW photos: people with 2+ photos; one half of a
    split's people enrolled (up to 4 photos each), the first photo of each of the others searched."""
    cufs = read_manifest(data, "cufs")
    out = []
    for part in ("cuhk_student", "ar", "xm2vts"):
        wanted = "test" if split == "report" else "train"
        ids = sorted({r["identity"] for r in cufs if r["subset"] == part and r["split"] == wanted})
        out.append(Population(f"CUFS {part}", *_split([r for r in cufs if r["subset"] == part], set(ids[::2]))))
    fs2k = read_manifest(data, "fs2k")
    val = sorted(fs2k_val_identities([r["identity"] for r in fs2k]))
    train = sorted({r["identity"] for r in fs2k} - set(val))
    out.append(Population("FS2K", *_split(fs2k, set(val[::2] if split == "report" else train[::8]))))
    out.append(lfw_population(data, split))
    return out


def _split(rows: list[dict], probe_ids: set[str]) -> tuple[list[dict], list[dict]]:
    photos = [r for r in rows if r["kind"] == "photo" and r["identity"] not in probe_ids]
    sketches = sorted((r for r in rows if r["kind"] == "sketch" and r["identity"] in probe_ids), key=lambda r: r["file"])
    return photos, sketches


def _lfw_people(data: Path) -> dict[str, list[dict]]:
    people: dict[str, list[dict]] = {}
    for r in read_manifest(data, "lfw"):
        if r["path"].stem not in LFW_DUPLICATES:
            people.setdefault(r["identity"], []).append(r)
    return {k: sorted(v, key=lambda r: r["file"]) for k, v in sorted(people.items())}


def lfw_population(data: Path, split: str, n_people: int = 600, photos_each: int = 4) -> Population:
    """LFW photos: of the people with 2+ photos, the first `n_people` (select) or the next (report);
    even ones enrolled, the first photo of each odd one searched (non-mated photo searches)."""
    multi = [v for v in _lfw_people(data).values() if len(v) >= 2]
    people = multi[:n_people] if split == "select" else multi[n_people:2 * n_people]
    photos = [r for v in people[::2] for r in v[:photos_each]]
    return Population("LFW photos", photos, [v[0] for v in people[1::2]], kind="photo")


def lfw_distractors(data: Path, split: str = "report", n: int = N_LFW) -> list[dict]:
    """One photo each of `n` LFW people who have a single photo (sorted by name): the first `n` on
    the report split, the next `n` on the select split."""
    singles = [v[0] for v in _lfw_people(data).values() if len(v) == 1]
    return singles[:n] if split == "report" else singles[n:2 * n]


def run_population(pop: Population, lfw: list[dict], split: str, reuse: str | None, top: int = 1,
                   mode: str = "fusion") -> list[dict]:
    """Enroll the gallery, search every probe (sketches in `mode`, photos raw); one {"probe",
    "fpir", "score", ...} per search. Galleries are shared by the modes, searches are not."""
    slug = ("calibration_" if split == "report" else "calibration_select_") + pop.name.lower().replace(" ", "_")
    mode = mode if pop.kind == "sketch" else "raw"
    db = WORK / f"{slug}.db"
    out = WORK / (f"{slug}.jsonl" if mode in ("fusion", "raw") else f"{slug}.{mode}.jsonl")
    if not (reuse == "searches" and out.is_file()):
        if not (reuse and db.is_file()):
            for p in WORK.glob(f"{slug}.*"):
                p.unlink()
            gallery = write_manifest(pop.photos + lfw, WORK / f"{slug}_gallery.csv")
            forensics_cmd("enroll", "--manifest", gallery, "--db", db, "--source", slug, "--face", "central")
        manifest = write_manifest(pop.probes, WORK / f"{slug}_probes.csv")
        forensics_cmd("evaluate", "--probes", manifest, "--mode", mode, "--probe-kind", pop.kind, "--top", top,
                      "--out", out, "--db", db, "--cmc", WORK / f"{slug}.cmc.png")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    return [{"probe": x["probe"], "fpir": x["candidates"][0]["fpir"], "score": x["candidates"][0]["score"],
             "fpir_range": x["candidates"][0].get("detail", {}).get("fpir_range"),
             "tail": [c["score"] for c in x["candidates"]]}
            for x in lines if x["candidates"]]


def table_rows(name: str, searches: list[dict], gallery_size: int) -> list[dict]:
    """Per level: the share of non-mated searches claimed at or below it, and the acceptance rule."""
    n = len(searches)
    rows = []
    for level in LEVELS:
        k = sum(1 for s in searches if s["fpir"] is not None and s["fpir"] <= level)
        bound = acceptance_bound(level, n) if n else float("nan")
        rows.append({"population": name, "level": level, "n_searches": n, "claimed_at_or_below": k,
                     "observed": k / n if n else None, "bound": bound, "gallery_subjects": gallery_size,
                     "holds": bool(n) and k / n <= bound})
    return rows


def reliability_plot(per_population: dict[str, list[dict]], path: Path, mode: str) -> None:
    """Observed share of non-mated top candidates claimed <= x, against x (log scales)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    xs = np.logspace(-5, 0, 60)
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    for name, searches in per_population.items():
        f = np.array([s["fpir"] for s in searches if s["fpir"] is not None])
        ax.plot(xs, [max(np.mean(f <= x), 1e-4) for x in xs], label=f"{name} ({len(f)})")
    ax.plot(xs, xs, "k--", lw=1, label="honest (observed = claimed)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("claimed FPIR of the top candidate (x)")
    ax.set_ylabel("non-mated searches claimed <= x (none: drawn at 1e-4)")
    ax.set_title(f"FPIR reliability, mode {mode}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--split", choices=SPLITS, default="report",
                    help="select: where the FPIR's settings are chosen; report: the table in docs/benchmarks.md")
    ap.add_argument("--mode", choices=MODES, default="fusion",
                    help="the mode sketches are searched in (photos: raw); results of a mode other than fusion "
                    "go to calibration_<mode>.json")
    ap.add_argument("--reuse", choices=("galleries", "searches"), default=None,
                    help="reuse the galleries (search again) or also the searches in benchmarks/work/")
    args = ap.parse_args()
    data = args.data or default_data_dir(required=True)
    lfw = lfw_distractors(data, args.split)
    top = TAIL_DEPTH if args.split == "select" else 1
    rows, per_population = [], {}
    for pop in populations(data, args.split):
        searches = run_population(pop, lfw, args.split, args.reuse, top, args.mode)
        per_population[pop.name] = searches
        rows += table_rows(pop.name, searches, len({r["identity"] for r in pop.photos}) + len(lfw))
    print(f"{'population':16} {'level':>6} {'searches':>8} {'claimed<=':>9} {'observed':>9} {'bound':>7}  holds")
    for r in rows:
        print(f"{r['population']:16} {r['level']:6.1%} {r['n_searches']:8} {r['claimed_at_or_below']:9} "
              f"{r['observed']:9.1%} {r['bound']:7.1%}  {'yes' if r['holds'] else 'NO'}")
    RESULTS.mkdir(exist_ok=True)
    stem = ("calibration" if args.split == "report" else "calibration_select") + \
        ("" if args.mode == "fusion" else f"_{args.mode}")
    reliability_plot(per_population, RESULTS / f"{stem}_reliability.png", args.mode)
    out = RESULTS / f"{stem}.json"
    # reused searches keep the record of the code and machine that ran them
    measured = json.loads(out.read_text()) if args.reuse == "searches" and out.is_file() else \
        {"machine": machine_description(), "code": code_version()}
    out.write_text(json.dumps({"mode": args.mode, "split": args.split, "n_lfw_distractors": len(lfw), "rows": rows,
                               "machine": measured["machine"], "code": measured["code"]}, indent=2))


if __name__ == "__main__":
    main()
