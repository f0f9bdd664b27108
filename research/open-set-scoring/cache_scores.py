"""Per-probe, per-subject scores of the three roundtrip-mode probes against the open gallery.

For every sketch of the protocol's probe sets (benchmarks/common.py: CUFS test, FS2K select,
FS2K report) and of the training pairs (reference sketches for the hubness study), the three
probe vectors of the `roundtrip` mode are built exactly as a query builds them
(`forensics.probes.build_probes`: the drawn sketch and its synthesized photo, each moved by the
fusion offsets, in the sketch search space, and the synthesized photo against the round-trip
vectors), and scored against every image of the open gallery (benchmarks/work/open.db, built by
the benchmarks, round-trip vectors computed). Scores are reduced to subjects as the ranking does
(best image per subject, per probe). Writes runs/open_scores.npz:

    <set>_S      (n probes, 3, n subjects) float32: drawn, synthesized, synthesized vs round-trip
    <set>_ids    the probes' subject ids
    subjects     the gallery's subject ids, in the order of the last axis
    G_white, G_rt, G_subject   every gallery image's vectors and its subject's column

    PYTHONPATH=. .venv/bin/python research/open-set-scoring/cache_scores.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import WORK, cufs_test, fs2k_half, training_sketches  # noqa: E402

from forensics.app import Forensics  # noqa: E402
from forensics.datasets import default_data_dir  # noqa: E402
from forensics.pipeline import PipelineFailure  # noqa: E402
from forensics.probes import INDEX_ROUNDTRIP, INDEX_WHITENED, build_probes  # noqa: E402


def gallery_vectors(searcher):
    white, rt = searcher.indexes[INDEX_WHITENED], searcher.indexes[INDEX_ROUNDTRIP]
    ids = np.sort(white.ids())
    assert rt.contains(ids).all(), "round-trip vectors missing: run forensics gallery roundtrip first"
    owners = searcher.repo.embedding_owners([int(i) for i in ids])
    sid = [owners[int(i)].external_id for i in ids]
    subjects = sorted(set(sid))
    col = {s: j for j, s in enumerate(subjects)}
    return (white.reconstruct(ids), rt.reconstruct(ids), np.array([col[s] for s in sid]), subjects)


def subject_max(sims: np.ndarray, g_subject: np.ndarray, n_subjects: int) -> np.ndarray:
    """(n, images) → (n, subjects): the best image of each subject."""
    out = np.full((sims.shape[0], n_subjects), -np.inf, np.float32)
    np.maximum.at(out.T, g_subject, sims.T)
    return out


def main():
    data = default_data_dir(required=True)
    app = Forensics(WORK / "open.db")
    searcher = app.searcher(mode="roundtrip", probe_kind="sketch")
    g_white, g_rt, g_subject, subjects = gallery_vectors(searcher)
    out = {"subjects": np.array(subjects), "G_white": g_white, "G_rt": g_rt, "G_subject": g_subject}
    sets = {"cufs_test": cufs_test(data, "sketch"), "fs2k_select": fs2k_half(data, "sketch", "select"),
            "fs2k_report": fs2k_half(data, "sketch", "report"), "train": training_sketches(data)}
    for name, rows in sets.items():
        recs = [r for b in searcher.pipeline.process([r["path"] for r in rows], kind="sketch") for r in b]
        ok = [i for i, r in enumerate(recs) if not isinstance(r, PipelineFailure)]
        built = build_probes(searcher.models, "roundtrip", [recs[i] for i in ok], "sketch", grouped=False)
        S = np.zeros((len(ok), 3, len(subjects)), np.float32)
        vec = np.zeros((len(ok), 3, g_white.shape[1]), np.float32)
        for k, ps in enumerate(built.sets):
            for j, p in enumerate(ps.probes):
                vec[k, j] = p.vector
        for j, G in enumerate((g_white, g_white, g_rt)):
            S[:, j] = subject_max(vec[:, j] @ G.T, g_subject, len(subjects))
        out[f"{name}_S"], out[f"{name}_V"] = S, vec
        out[f"{name}_ids"] = np.array([rows[i]["identity"] for i in ok])
        out[f"{name}_weights"] = np.array([[p.weight for p in ps.probes] for ps in built.sets])
        print(name, len(rows), "probes,", len(rows) - len(ok), "failed", flush=True)
    (ROOT / "runs").mkdir(exist_ok=True)
    np.savez_compressed(ROOT / "runs" / "open_scores.npz", **out)


if __name__ == "__main__":
    main()
