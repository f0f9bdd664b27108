"""`forensics demo`: the main job end to end on an embedded default.

Builds an SQLite gallery under ./demo/ from the 338 CUFS test photos plus 2,000 LFW photos
(distractors), then queries it with 3 CUFS test sketches (fusion of sketch and synthesized photo),
prints the ranked candidates and writes an HTML and a PDF report for each query.
Re-running reuses the gallery (enrollment skips images already enrolled, by SHA-256).
"""

from __future__ import annotations

import csv
from pathlib import Path

from forensics.datasets import DATA_HELP, LFW_DUPLICATES, default_data_dir, read_manifest
from forensics.errors import ForensicsError

CUFS_PARTS = ("cuhk_student", "ar", "xm2vts")


def demo_manifest(data: Path, out: Path, n_lfw: int) -> tuple[Path, list[tuple[Path, str]]]:
    """Write the demo's enrollment manifest; return it and the (sketch, true id) probes."""
    cufs = read_manifest(data, "cufs")
    lfw = [r for r in read_manifest(data, "lfw") if r["path"].stem not in LFW_DUPLICATES]
    photos = [r for r in cufs if r["split"] == "test" and r["kind"] == "photo"]
    lfw_pick = sorted(lfw, key=lambda r: r["file"])[:: max(1, len(lfw) // n_lfw)][:n_lfw]
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "gallery_manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id", "name", "dataset"])
        for r in photos:
            w.writerow([r["path"].resolve(), r["identity"], "", "cufs"])
        for r in lfw_pick:
            w.writerow([r["path"].resolve(), r["identity"], r["identity"].replace("_", " "), "lfw"])
    # one test sketch per CUFS part: the first of each, in file order
    sketches = sorted((r for r in cufs if r["split"] == "test" and r["kind"] == "sketch"), key=lambda r: r["file"])
    probes = [next((r["path"], r["identity"]) for r in sketches if r["subset"] == part) for part in CUFS_PARTS]
    return manifest, probes


def run_demo(data: Path | None, out: Path, n_lfw: int = 2000, console=None, progress_bar=None, show=None,
             lazy_progress_bar=None):
    """Enroll the demo gallery, compute its round-trip vectors (the default query mode's), query it
    with 3 sketches, write their reports. `console` prints, `progress_bar(total, what)` and
    `lazy_progress_bar(what)` show progress, `show(candidates, title)` prints a candidate list."""
    from forensics.app import Forensics, ModelChoice
    from forensics.manifest import items_from_manifest
    from forensics.parallel import choose_workers

    data = data or default_data_dir()
    if data is None or not (data / "cufs" / "manifest.csv").is_file() or not (data / "lfw" / "manifest.csv").is_file():
        raise ForensicsError(f"the demo needs the CUFS and LFW datasets: {DATA_HELP}")
    out = Path(out)
    manifest, probes = demo_manifest(data, out, n_lfw)
    (out / "reports").mkdir(parents=True, exist_ok=True)
    items = items_from_manifest(manifest)
    # LFW-style crops: the labelled person is the central face
    fx = Forensics(out / "gallery.db", ModelChoice(face="central"), operator="demo")
    console.print(f"[bold]1. enrolling[/] {len(items)} gallery photos into {out / 'gallery.db'} "
                  "(338 CUFS test photos + LFW distractors; already-enrolled images are skipped)")
    with progress_bar(len(items), "enrolling") as advance:
        rep = fx.enroll(items, source="demo", workers=choose_workers(None, len(items)), progress=advance)
    console.print(f"   enrolled {rep.enrolled}, skipped {rep.duplicates} duplicates, failed {len(rep.failures)}")
    console.print("[bold]2. round-trip vectors[/] of the gallery faces, which the default query mode "
                  "(roundtrip) compares with (computed once; already-computed faces are skipped)")
    with lazy_progress_bar("round-trip vectors") as progress:
        fx.build_roundtrip(whiten=True, progress=progress)
    console.print(f"[bold]3. querying[/] with {len(probes)} CUFS test sketches")
    results = []
    for sketch, true_id in probes:
        q = fx.query([sketch], top=10, case_id="DEMO")
        results.append(q)
        show(q.candidates, f"{sketch.name}: true subject {true_id}")
        hit = next((c.rank for c in q.candidates if c.subject_id == true_id), None)
        console.print(f"   true subject at rank {hit if hit else '>10'}; query id {q.query_uid}")
        for fmt in ("html", "pdf"):
            path = fx.report(q.query_uid, out / "reports" / f"{true_id}.{fmt}", fmt)
            console.print(f"   report: {path}")
    return results
