"""Shared protocol for the identification benchmarks: which images form which gallery and probe set.

The development protocol (issue 18; since 2026-12-02), in three disjoint parts:
  train   what models and fits learn from: the CUFS train pairs (268), the FS2K training pairs
          (1,058 minus the 200 validation pairs: 858) and LFW photos turned into sketches; the
          inverter, the sketch search space (whitening) and the fusion offsets are fitted on these.
  select  where settings are chosen (checkpoints, weights, modes, thresholds): FS2K `select`, a
          fixed half (100) of the 200 FS2K validation pairs (`fs2k_half`).
  report  where figures are stated and nothing is chosen: FS2K `report`, the other 100 validation
          pairs, and the 338 CUFS test pairs.
Choices made before 2026-12-02 used all 200 validation pairs (the inverter's checkpoint, the
round-trip mode's adoption): figures on the FS2K report half were seen before those choices and
are optimistic to an unknown degree (docs/benchmarks.md says so beside them).

Open gallery (the protocol of ../shared/notes/baselines.md, with every FS2K photo): the 338 CUFS
test photos + all 1,058 FS2K photos (the 200 validation mates, and 858 FS2K-style distractors that
crowd the top ranks as same-style impostors do in a real gallery) + LFW without the first photo of
each of the 1,680 people with 2+ photos (those 1,680 photos are the photo-control probes) and
without the second name of each of LFW's two duplicated images: 12,947 photos, the make-up of the
12,935-photo gallery of issue 18's held-out measurement.
Closed sets: the 338 CUFS test photos alone; the 200 FS2K validation photos alone.

Galleries are built with the real `forensics enroll --face central` command (CSV manifests; the
LFW protocol: the labelled person is the central face) and cached under `benchmarks/work/`
(git-ignored); pass --rebuild to start over. Probes are searched with `--face central` too.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from forensics.datasets import LFW_DUPLICATES, read_manifest
from forensics.training.data import fs2k_val_identities

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).resolve().parent / "work"
RESULTS = Path(__file__).resolve().parent / "results"


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_description() -> dict:
    """The machine a benchmark ran on, recorded in its results file (docs/benchmarks.md quotes it)."""
    import faiss
    import torch

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "memory_gb": round(memory / 2**30),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "faiss": faiss.__version__}


def code_version() -> dict:
    """The commit of the code a benchmark ran (and whether the working tree had changes), recorded
    in its results file: docs/benchmarks.md says which code each table measured."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def lfw_photo_probes(data: Path) -> tuple[list[dict], list[dict]]:
    """(the first photo of each LFW person with 2+ photos, all other LFW photos)."""
    rows = [r for r in read_manifest(data, "lfw") if r["path"].stem not in LFW_DUPLICATES]
    by_person = defaultdict(list)
    for r in rows:
        by_person[r["identity"]].append(r)
    probes, rest = [], []
    for person in sorted(by_person):
        imgs = sorted(by_person[person], key=lambda r: r["file"])
        if len(imgs) >= 2:
            probes.append(imgs[0])
            rest.extend(imgs[1:])
        else:
            rest.extend(imgs)
    return probes, rest


def cufs_test(data: Path, kind: str) -> list[dict]:
    return [r for r in read_manifest(data, "cufs") if r["split"] == "test" and r["kind"] == kind]


def fs2k_val(data: Path, kind: str) -> list[dict]:
    rows = read_manifest(data, "fs2k")
    val_ids = fs2k_val_identities([r["identity"] for r in rows])
    return [r for r in rows if r["identity"] in val_ids and r["kind"] == kind]


#: The seed of the select/report halves of the FS2K validation pairs: fixed, never to change.
FS2K_HALF_SEED = 20261202


def fs2k_half(data: Path, kind: str, half: str) -> list[dict]:
    """The `select` or `report` half (100 pairs each) of the FS2K validation pairs: a seeded
    permutation of their sorted identities, the first 100 being `select`."""
    if half not in ("select", "report"):
        raise ValueError(f"half must be select or report, not {half!r}")
    rows = fs2k_val(data, kind)
    ids = sorted({r["identity"] for r in rows})
    perm = np.random.default_rng(FS2K_HALF_SEED).permutation(len(ids))
    chosen = {ids[i] for i in (perm[:len(ids) // 2] if half == "select" else perm[len(ids) // 2:])}
    return [r for r in rows if r["identity"] in chosen]


def fs2k_photos(data: Path) -> list[dict]:
    """Every FS2K photo there is (validation mates and training-pair photos)."""
    return [r for r in read_manifest(data, "fs2k") if r["kind"] == "photo"]


def fs2k_annotations(data: Path) -> dict[str, dict]:
    """FS2K's per-pair annotations by manifest identity (`photo1/image0110` → `fs2k_p1_0110`):
    `style` (0, 1, 2) and `turned` (the `frontal_face` attribute, which is 1 on three-quarter views
    and 0 on frontal ones, its name notwithstanding: checked by eye, research/pose/)."""
    out = {}
    for a in json.loads((data / "fs2k" / "anno_train.json").read_text()):
        folder, image = a["image_name"].split("/")
        out[f"fs2k_p{folder.removeprefix('photo')}_{image.removeprefix('image')}"] = {
            "style": int(a["style"]), "turned": bool(a["frontal_face"])}
    return out


def open_gallery_rows(data: Path) -> list[dict]:
    """The open gallery's photos (see the module docstring)."""
    _, rest = lfw_photo_probes(data)
    return cufs_test(data, "photo") + fs2k_photos(data) + rest


def training_sketches(data: Path) -> list[dict]:
    """The sketches of the training pairs: CUFS train and FS2K train minus the 200 validation pairs
    (what calibration and other fits may use; never a benchmark probe or gallery photo)."""
    cufs = [r for r in read_manifest(data, "cufs") if r["split"] == "train" and r["kind"] == "sketch"]
    fs2k = read_manifest(data, "fs2k")
    val = fs2k_val_identities([r["identity"] for r in fs2k])
    return cufs + [r for r in fs2k if r["kind"] == "sketch" and r["identity"] not in val]


def training_pair_vectors(pipe, data: Path, sketches: list[dict], inverter=None):
    """(rows kept, raw, inverted or None, photo vectors) of training sketches and their photos
    through `pipe`: the sketch vectors a query makes (mirror-averaged raw and, with `inverter`,
    inverted), the photos' as enrolled; pairs where either image fails are dropped."""
    import numpy as np

    from forensics.pipeline import PipelineFailure
    from forensics.probes import sketch_vectors

    photo_of = {r["identity"]: r["path"] for r in read_manifest(data, "cufs") + read_manifest(data, "fs2k")
                if r["kind"] == "photo"}  # CUFS and FS2K identities are distinct (cufs_*, fs2k_*)
    sk = [r for b in pipe.process([r["path"] for r in sketches], kind="sketch", batch_size=64) for r in b]
    ph = [r for b in pipe.process([photo_of[r["identity"]] for r in sketches], kind="photo", batch_size=64)
          for r in b]
    ok = [i for i, (a, b) in enumerate(zip(sk, ph))
          if not isinstance(a, PipelineFailure) and not isinstance(b, PipelineFailure)]
    raw, inv, _ = sketch_vectors(pipe.embedder, np.stack([sk[i].chip for i in ok]),
                                 np.stack([sk[i].embedding.vector for i in ok]), inverter)
    return [sketches[i] for i in ok], raw, inv, np.stack([ph[i].embedding.vector for i in ok])


def write_manifest(rows: list[dict], path: Path, extra: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id"] + list((extra or {}).keys()))
        for r in rows:
            w.writerow([r["path"].resolve(), r["identity"]] + list((extra or {}).values()))
    return path


def forensics_cmd(*args: str, check: bool = True) -> float:
    """Run the real CLI (`python -m forensics.cli ...`); returns the wall-clock seconds."""
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "forensics.cli", *map(str, args)])
    if check and res.returncode not in (0, 1):  # 1 = some files failed: reported, not fatal
        raise SystemExit(f"forensics {' '.join(map(str, args))} failed with exit code {res.returncode}")
    return time.perf_counter() - t


def build_gallery(name: str, rows: list[dict], rebuild: bool = False, face: str = "central") -> Path:
    db = WORK / f"{name}.db"
    if rebuild:
        for p in WORK.glob(f"{name}.*"):
            p.unlink()
    manifest = write_manifest(rows, WORK / f"{name}_gallery.csv")
    built = not db.is_file()
    secs = forensics_cmd("enroll", "--manifest", manifest, "--db", db, "--source", name, "--face", face)
    if built:  # the cost of enrolling the whole gallery from scratch, kept beside it
        (WORK / f"{name}.build.json").write_text(json.dumps(
            {"images": len(rows), "enroll_seconds": secs, "load_average_after": os.getloadavg()[0]}))
    return db


def build_record(name: str) -> dict | None:
    """What `build_gallery` recorded when it built gallery `name` from scratch (None: not recorded)."""
    path = WORK / f"{name}.build.json"
    return json.loads(path.read_text()) if path.is_file() else None
