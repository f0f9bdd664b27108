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
Searches run through the real `forensics enroll` and `forensics evaluate --mode fusion`, which
writes the FPIR of every candidate as `forensics query` states it.

    cd benchmarks && ../.venv/bin/python calibration.py   # ~15 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from common import RESULTS, WORK, code_version, cufs_test, forensics_cmd, machine_description, write_manifest

from forensics.datasets import LFW_DUPLICATES, default_data_dir, read_manifest
from forensics.training.data import fs2k_val_identities

LEVELS = (0.001, 0.01, 0.1)
N_LFW = 500  # LFW distractors in every gallery
MODE = "fusion"


def populations(data: Path) -> dict[str, tuple[list[dict], list[dict]]]:
    """name -> (gallery photos, non-mated probe sketches): half the validation people of each
    population are probes; the gallery holds every other photo of that population."""
    cufs = read_manifest(data, "cufs")
    out = {}
    for part in ("cuhk_student", "ar", "xm2vts"):
        test_ids = sorted({r["identity"] for r in cufs_test(data, "sketch") if r["subset"] == part})
        probe_ids = set(test_ids[::2])
        out[f"CUFS {part}"] = _split([r for r in cufs if r["subset"] == part], probe_ids)
    fs2k = read_manifest(data, "fs2k")
    val = sorted(fs2k_val_identities([r["identity"] for r in fs2k]))
    out["FS2K"] = _split(fs2k, set(val[::2]))
    return out


def _split(rows: list[dict], probe_ids: set[str]) -> tuple[list[dict], list[dict]]:
    photos = [r for r in rows if r["kind"] == "photo" and r["identity"] not in probe_ids]
    sketches = sorted((r for r in rows if r["kind"] == "sketch" and r["identity"] in probe_ids), key=lambda r: r["file"])
    return photos, sketches


def lfw_distractors(data: Path, n: int = N_LFW) -> list[dict]:
    """One photo each of the first `n` LFW people (sorted by name) who have a single photo."""
    rows = [r for r in read_manifest(data, "lfw") if r["path"].stem not in LFW_DUPLICATES]
    count: dict[str, int] = {}
    for r in rows:
        count[r["identity"]] = count.get(r["identity"], 0) + 1
    return sorted((r for r in rows if count[r["identity"]] == 1), key=lambda r: r["identity"])[:n]


def run_population(name: str, photos: list[dict], probes: list[dict], lfw: list[dict], reuse: bool) -> list[dict]:
    """Enroll the gallery, search every probe; one {"probe", "fpir", "score"} per search."""
    slug = "calibration_" + name.lower().replace(" ", "_")
    db, out = WORK / f"{slug}.db", WORK / f"{slug}.jsonl"
    if not (reuse and out.is_file()):
        for p in WORK.glob(f"{slug}.*"):
            p.unlink()
        gallery = write_manifest(photos + lfw, WORK / f"{slug}_gallery.csv")
        forensics_cmd("enroll", "--manifest", gallery, "--db", db, "--source", slug, "--face", "central")
        manifest = write_manifest(probes, WORK / f"{slug}_probes.csv")
        forensics_cmd("evaluate", "--probes", manifest, "--mode", MODE, "--probe-kind", "sketch", "--top", 1,
                      "--out", out, "--db", db, "--cmc", WORK / f"{slug}.cmc.png")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    return [{"probe": x["probe"], "fpir": x["candidates"][0]["fpir"], "score": x["candidates"][0]["score"]}
            for x in lines if x["candidates"]]


def table_rows(name: str, searches: list[dict], gallery_size: int) -> list[dict]:
    """Per level: the share of non-mated searches claimed at or below it, and the acceptance rule."""
    n = len(searches)
    rows = []
    for level in LEVELS:
        k = sum(1 for s in searches if s["fpir"] is not None and s["fpir"] <= level)
        se = math.sqrt(level * (1 - level) / n) if n else float("nan")
        bound = max(2 * level, level + 3 * se)
        rows.append({"population": name, "level": level, "n_searches": n, "claimed_at_or_below": k,
                     "observed": k / n if n else None, "bound": bound, "gallery_subjects": gallery_size,
                     "holds": bool(n) and k / n <= bound})
    return rows


def reliability_plot(per_population: dict[str, list[dict]], path: Path) -> None:
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
    ax.set_title(f"FPIR reliability, mode {MODE}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--reuse", action="store_true", help="reuse finished evaluations in benchmarks/work/")
    args = ap.parse_args()
    data = args.data or default_data_dir(required=True)
    lfw = lfw_distractors(data)
    rows, per_population = [], {}
    for name, (photos, probes) in populations(data).items():
        searches = run_population(name, photos, probes, lfw, args.reuse)
        per_population[name] = searches
        rows += table_rows(name, searches, len(photos) + len(lfw))
    print(f"{'population':16} {'level':>6} {'searches':>8} {'claimed<=':>9} {'observed':>9} {'bound':>7}  holds")
    for r in rows:
        print(f"{r['population']:16} {r['level']:6.1%} {r['n_searches']:8} {r['claimed_at_or_below']:9} "
              f"{r['observed']:9.1%} {r['bound']:7.1%}  {'yes' if r['holds'] else 'NO'}")
    RESULTS.mkdir(exist_ok=True)
    reliability_plot(per_population, RESULTS / "calibration_reliability.png")
    out = RESULTS / "calibration.json"
    # --reuse re-reads earlier searches: they keep the record of the code and machine that ran them
    measured = json.loads(out.read_text()) if args.reuse and out.is_file() else \
        {"machine": machine_description(), "code": code_version()}
    out.write_text(json.dumps({"mode": MODE, "n_lfw_distractors": len(lfw), "rows": rows,
                               "machine": measured["machine"], "code": measured["code"]}, indent=2))


if __name__ == "__main__":
    main()
