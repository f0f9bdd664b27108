"""The same photos and sketches through the CLI on SQLite (FAISS beside it) and on PostgreSQL
(pgvector, searched in the database): the same candidates and scores, a report and an intact
audit chain on both, and an HNSW index on the PostgreSQL gallery."""

from __future__ import annotations

import csv
import json

import pytest
from sqlalchemy import create_engine, text

from forensics.testing import run_cli as run

#: CUFS test identities: the gallery's photos; the first three's sketches are the queries
N_PHOTOS = 30


@pytest.fixture(scope="module")
def cufs_test(data_dir) -> dict[str, dict[str, str]]:
    rows = [r for r in csv.DictReader(open(data_dir / "cufs" / "manifest.csv")) if r["split"] == "test"]
    by: dict[str, dict[str, str]] = {}
    for r in rows:
        by.setdefault(r["identity"], {})[r["kind"]] = str(data_dir / "cufs" / r["file"])
    return {i: k for i, k in sorted(by.items()) if {"photo", "sketch"} <= set(k)}


def galleries(tmp_path, pg_url, cufs_test):
    """The same CUFS photos enrolled into a SQLite gallery and a PostgreSQL one (through the CLI)."""
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id"])
        w.writerows([k["photo"], i] for i, k in list(cufs_test.items())[:N_PHOTOS])
    dbs = {"sqlite": tmp_path / "g.db", "postgresql": pg_url}
    for db in dbs.values():
        run("gallery", "init", "--db", db)
        run("enroll", "--manifest", manifest, "--db", db, "--workers", 0)
    return dbs


@pytest.mark.slow
def test_sketch_queries_and_evaluation_give_the_same_top_five_on_sqlite_and_postgresql(tmp_path, pg_url, cufs_test):
    """Queries (fusion and raw modes) and an evaluation give the same candidates on both.
    On 30 faces pgvector's search is exact (an HNSW search with ef_search >= 2k finds every one
    of the top k of so small a gallery, recall 1; the planner may also scan it): the top 5 and
    their scores (re-scored exactly by ranking from the stored float32 vectors) agree to 1e-4."""
    dbs = galleries(tmp_path, pg_url, cufs_test)
    sketches = [k["sketch"] for k in list(cufs_test.values())[:3]]
    for mode in ("fusion", "raw"):
        for sketch in sketches:
            out = {name: json.loads(run("query", sketch, "--mode", mode, "--top", 5, "--json", "--report",
                                        tmp_path / f"{name}.html", "--db", db).stdout) for name, db in dbs.items()}
            lite, pg = out["sqlite"]["candidates"], out["postgresql"]["candidates"]
            assert [c["subject_id"] for c in pg] == [c["subject_id"] for c in lite]
            assert [c["score"] for c in pg] == pytest.approx([c["score"] for c in lite], abs=1e-4)
            assert "not an identification" in (tmp_path / "postgresql.html").read_text().lower()
    probes = tmp_path / "probes.csv"
    probes.write_text("path,subject_id\n" + "".join(f"{k['sketch']},{i}\n" for i, k in list(cufs_test.items())[:4]))
    for name, db in dbs.items():
        run("evaluate", "--probes", probes, "--mode", "fusion", "--top", 5, "--out", tmp_path / f"{name}.jsonl", "--db", db)
    lines = {name: [json.loads(x) for x in (tmp_path / f"{name}.jsonl").read_text().splitlines()] for name in dbs}
    for lite, pg in zip(lines["sqlite"], lines["postgresql"]):
        assert [c["subject_id"] for c in pg["candidates"]] == [c["subject_id"] for c in lite["candidates"]]
        assert [c["score"] for c in pg["candidates"]] == pytest.approx([c["score"] for c in lite["candidates"]],
                                                                        abs=1e-4)
    for db in dbs.values():
        assert "intact" in run("audit", "verify", "--db", db).output
    assert run("gallery", "check", "--db", pg_url).exit_code == 0
    engine = create_engine(pg_url)
    with engine.connect() as con:
        defs = [r[0] for r in con.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'space_vectors'"))]
        spaces = dict(con.execute(text("SELECT name, space FROM vector_spaces")).all())
    engine.dispose()
    assert set(spaces) == {"plain", "whitened"}  # the sketch search space, stored the same way
    assert sum("USING hnsw" in d and "vector_cosine_ops" in d for d in defs) == 2


@pytest.mark.slow
def test_a_roundtrip_query_gives_the_same_top_five_on_sqlite_and_postgresql(tmp_path, pg_url, cufs_test):
    """The round-trip vectors (computed per face by `gallery roundtrip`) stored in a pgvector
    space of their own give the candidates the FAISS round-trip index gives."""
    dbs = galleries(tmp_path, pg_url, dict(list(cufs_test.items())[:8]))
    sketch = next(iter(cufs_test.values()))["sketch"]
    for db in dbs.values():
        assert "8 vectors" in run("gallery", "roundtrip", "--db", db).output
    out = {name: json.loads(run("query", sketch, "--mode", "roundtrip", "--top", 5, "--json", "--db", db).stdout)
           for name, db in dbs.items()}
    lite, pg = out["sqlite"]["candidates"], out["postgresql"]["candidates"]
    assert [c["subject_id"] for c in pg] == [c["subject_id"] for c in lite]
    assert [c["score"] for c in pg] == pytest.approx([c["score"] for c in lite], abs=1e-4)
    assert all(len(c["detail"]["per_probe"]) == 3 for c in pg)  # raw, inverted, round trip
