"""Reliability: enrollment killed at random moments, every tamper kind, the bad-input corpus.

    .venv/bin/python benchmarks/reliability.py [--kills 20] [--images 240] [--seed 15]

1. Kills: the real `forensics enroll --workers 2` of `--images` LFW photos is started again and
   again and killed with SIGKILL at a random moment (seeded: during start-up, or a random delay
   after a commit); after each kill no worker process is left and `audit verify` passes (every
   committed image has its audit event). A last run completes the gallery: every photo enrolled
   once, the index repaired, no temporary file left.
2. Tampers: each edit of `TAMPERS`, made through SQLite on a copy of that gallery (with one
   stored query), must make `audit verify` fail.
3. The bad-input corpus (tests/forensics/test_bad_input.py) is run: each kind a clear error with
   the gallery unchanged.

Prints a table and writes benchmarks/results/reliability.json (docs/benchmarks.md quotes it
through benchmarks/write_doc.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "reliability"

#: SQL edits made behind the tool's back, each of which `audit verify` must detect.
TAMPERS = {
    "query candidate's subject edited": "UPDATE query_candidates SET subject_external_id='forged' WHERE rank=1",
    "query candidate's score edited": "UPDATE query_candidates SET score=0.999 WHERE rank=2",
    "query parameters edited": "UPDATE queries SET params='{}'",
    "query input hash edited": "UPDATE query_inputs SET sha256='" + "e" * 64 + "'",
    "query candidate deleted": "DELETE FROM query_candidates WHERE rank=3",
    "model checksum edited": "UPDATE embedders SET weights_sha256='" + "b" * 64 + "'",
    "subject renamed": "UPDATE subjects SET name='Someone Else' WHERE id=1",
    "subject id edited": "UPDATE subjects SET external_id='forged' WHERE id=1",
    "image moved to another subject": "UPDATE images SET subject_id=2 WHERE id=1",
    "image path edited": "UPDATE images SET original_path='/elsewhere.jpg' WHERE id=2",
    "vector edited": "UPDATE embeddings SET vector=zeroblob(length(vector)) WHERE id=3",
    "image deleted": "DELETE FROM images WHERE id=4",
    "query deleted": "DELETE FROM queries",
    "image inserted": ("INSERT INTO images (subject_id, sha256, n_faces, enrolled_at) VALUES "
                       "(1, '" + "d" * 64 + "', 0, '2024-01-01T00:00:00.000000Z')"),
    "query inserted": "INSERT INTO queries (query_uid, created_at) VALUES ('forged', '2024-01-01T00:00:00.000000Z')",
    "every audit row deleted (triggers dropped)": ("DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events; "
                                                   "DELETE FROM gallery_meta WHERE key='audit_head'"),
    "append-only triggers dropped": "DROP TRIGGER audit_events_no_update",
}


@dataclass
class Kill:
    """One enrollment killed: when, what was committed, and what it left behind."""

    after_s: float
    running: bool
    images: int
    verify_ok: bool
    workers_left: int


@dataclass
class CrashRun:
    """`crash_enroll`'s outcome: each kill, then the completing run."""

    kills: list[Kill] = field(default_factory=list)
    expected: int = 0
    final_images: int = 0
    final_exit: int = -1
    final_verify_ok: bool = False
    final_check_ok: bool = False
    final_temporaries: int = -1

    @property
    def ok(self) -> bool:
        return (all(k.running and k.verify_ok and not k.workers_left for k in self.kills)
                and self.final_exit in (0, 1) and self.final_images == self.expected
                and self.final_verify_ok and self.final_check_ok and self.final_temporaries == 0)


def forensics(*args) -> list[str]:
    return [sys.executable, "-m", "forensics.cli", *map(str, args)]


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    """Running: the process exists (gallery.util.pid_alive) and is not a zombie."""
    from gallery.util import pid_alive

    stat = Path(f"/proc/{pid}/stat")
    return pid_alive(pid) and stat.is_file() and " Z " not in stat.read_text()


def _left_behind(workers: list[int], wait_s: float = 5.0) -> int:
    """How many of `workers` are still running `wait_s` after their parent died (then killed)."""
    deadline = time.time() + wait_s
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    return len(left)


def _gallery_state(db: Path) -> tuple[int, bool]:
    """(images, audit verify passed) of the gallery at `db` (0, True when it does not exist yet)."""
    from gallery.db import open_gallery
    from gallery.verify import verify_gallery

    if not db.exists():
        return 0, True
    g = open_gallery(db, create=False)
    try:
        return g.repository().count_images(), verify_gallery(g).ok
    finally:
        g.close()


def _temporaries(db: Path) -> int:
    return sum(1 for p in db.parent.iterdir() if ".tmp-" in p.name or ".new-" in p.name)


def _count_images(db: Path) -> int:
    """Images committed so far (read-only; 0 while the gallery is being created)."""
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM images").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _moment(proc: subprocess.Popen, db: Path, rng: random.Random, timeout_s: float = 300) -> None:
    """Wait for a random moment of the run: a quarter of the time during start-up (0.5-8 s), else
    0-3 s after this run's first commit (mid-batch, mid-commit alike)."""
    if rng.random() < 0.25:
        time.sleep(rng.uniform(0.5, 8.0))
        return
    extra = rng.uniform(0.0, 3.0)
    before, deadline = _count_images(db), time.time() + timeout_s
    while _count_images(db) <= before and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(extra)


def kill_once(cmd: list[str], db: Path, rng: random.Random) -> Kill:
    """Start `cmd`, SIGKILL it at a random moment (`_moment`), and look at what it left."""
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _moment(proc, db, rng)
    workers = children(proc.pid)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = _left_behind(workers)
    images, ok = _gallery_state(db)
    return Kill(round(time.time() - t0, 2), running, images, ok, left)


def crash_enroll(manifest: Path, db: Path, kills: int, seed: int, workers: int = 2) -> CrashRun:
    """Kill `forensics enroll` of `manifest` into `db` `kills` times at random moments (seeded),
    then let it finish; see the module."""
    rng = random.Random(seed)
    cmd = forensics("enroll", "--manifest", manifest, "--db", db, "--workers", workers)
    run = CrashRun()
    for _ in range(kills):
        run.kills.append(kill_once(cmd, db, rng))
    final = subprocess.run(cmd, capture_output=True, text=True)
    run.final_exit = final.returncode
    counts = re.search(r"failed (\d+) of (\d+)", final.stdout)
    run.expected = int(counts[2]) - int(counts[1]) if counts else -1  # a file that fails is never enrolled
    run.final_images, run.final_verify_ok = _gallery_state(db)
    run.final_check_ok = subprocess.run(forensics("gallery", "check", "--db", db), capture_output=True).returncode == 0
    run.final_temporaries = _temporaries(db)
    return run


def lfw_manifest(data: Path, n: int, out: Path) -> Path:
    """A manifest of the first `n` LFW photos (file order; subject = the person)."""
    from forensics.datasets import LFW_DUPLICATES, read_manifest

    rows = sorted((r for r in read_manifest(data, "lfw") if r["path"].stem not in LFW_DUPLICATES),
                  key=lambda r: r["file"])[:n]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id"])
        w.writerows([r["path"].resolve(), r["identity"]] for r in rows)
    return out


def tamper_results(db: Path, sketch: Path) -> dict[str, bool]:
    """Whether `audit verify` detects each of `TAMPERS`, on a copy of `db` with one stored query."""
    from gallery.db import open_gallery
    from gallery.verify import verify_gallery

    subprocess.run(forensics("query", sketch, "--top", 5, "--db", db), check=True, capture_output=True)
    out = {}
    for kind, sql in TAMPERS.items():
        copy = db.with_name("tampered.db")
        copy.unlink(missing_ok=True)
        src = open_gallery(db, create=False)
        src.backup(copy)
        src.close()
        con = sqlite3.connect(copy)
        con.executescript(sql)
        con.close()
        g = open_gallery(copy, create=False)
        out[kind] = not verify_gallery(g).ok
        g.close()
    return out


def corpus_results() -> dict[str, int]:
    """The bad-input corpus run by pytest: passed and failed cases."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/forensics/test_bad_input.py", "-k", "clear_error"],
                         cwd=ROOT, capture_output=True, text=True)
    tail = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|error)", tail)}
    return {"kinds": counts.get("passed", 0) + counts.get("failed", 0), "passed": counts.get("passed", 0)}


def print_table(run: CrashRun, tampers: dict[str, bool], corpus: dict[str, int]) -> None:
    print(f"{'kill':>4} {'after s':>8} {'running':>8} {'images':>7} {'verify':>7} {'workers left':>13}")
    for i, k in enumerate(run.kills, 1):
        print(f"{i:>4} {k.after_s:>8.1f} {'yes' if k.running else 'NO':>8} {k.images:>7} "
              f"{'ok' if k.verify_ok else 'FAIL':>7} {k.workers_left:>13}")
    print(f"final run: exit {run.final_exit}, {run.final_images}/{run.expected} images, "
          f"verify {'ok' if run.final_verify_ok else 'FAIL'}, check {'ok' if run.final_check_ok else 'FAIL'}, "
          f"{run.final_temporaries} temporary files left")
    print(f"tampers detected: {sum(tampers.values())}/{len(tampers)}")
    for kind, found in tampers.items():
        print(f"  {'detected' if found else 'MISSED':>8}  {kind}")
    print(f"bad-input corpus: {corpus['passed']}/{corpus['kinds']} kinds pass (a clear error, the gallery unchanged)")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import code_version, machine_description
    from forensics.datasets import default_data_dir, read_manifest

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args(argv)
    data = default_data_dir(required=True)
    WORK.mkdir(parents=True, exist_ok=True)
    for p in WORK.glob("*"):
        p.unlink()
    db = WORK / "g.db"
    run = crash_enroll(lfw_manifest(data, args.images, WORK / "m.csv"), db, args.kills, args.seed)
    sketch = next(r["path"] for r in read_manifest(data, "cufs") if r["kind"] == "sketch")
    tampers = tamper_results(db, sketch)
    corpus = corpus_results()
    print_table(run, tampers, corpus)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reliability.json").write_text(json.dumps({
        "machine": machine_description(), "code": code_version(), "seed": args.seed, "images": args.images,
        "kills": [asdict(k) for k in run.kills],
        "final": {"exit": run.final_exit, "images": run.final_images, "expected": run.expected,
                  "verify_ok": run.final_verify_ok, "check_ok": run.final_check_ok,
                  "temporaries": run.final_temporaries},
        "tampers": tampers, "corpus": corpus}, indent=2) + "\n")
    return 0 if run.ok and all(tampers.values()) and corpus["passed"] == corpus["kinds"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
