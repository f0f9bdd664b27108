"""Sketch queries through the real CLI: inversion, fusion, filters, storage, reports, audit, purge;
those that search or change a gallery's storage on both backends (SQLite with FAISS, PostgreSQL
with pgvector)."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from html import unescape

import pytest
from PIL import Image

from forensics.testing import run_cli as run
from forensics.modes import DEFAULT_SKETCH_MODE


CUFS_IDS = ["cufs_ar_test_101", "cufs_ar_test_102", "cufs_xm2vts_test_200", "cufs_cuhk_student_test_001",
            "cufs_xm2vts_test_201", "cufs_ar_test_103"]


def copy_gallery(src, dst):
    """A consistent copy (SQLite backup API: the WAL is included)."""
    from gallery.db import open_gallery

    open_gallery(src, create=False).backup(dst)
    return dst


@pytest.fixture(scope="module")
def cufs(data_dir):
    rows = list(csv.DictReader(open(data_dir / "cufs" / "manifest.csv")))
    by = {(r["identity"], r["kind"]): data_dir / "cufs" / r["file"] for r in rows}
    missing = [i for i in CUFS_IDS if (i, "photo") not in by]
    assert not missing, missing
    return by


def write_manifest(folder, cufs):
    """CUFS test photos of 6 people, with metadata for the filters."""
    m = folder / "m.csv"
    with open(m, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id", "name", "sex", "birth_year", "district"])
        for k, i in enumerate(CUFS_IDS):
            w.writerow([cufs[(i, "photo")], i, f"Person {k}", "F" if k % 2 else "M", 1970 + 5 * k,
                        "north" if k < 3 else "south"])
    return m


@pytest.fixture(scope="module")
def gallery_db(tmp_path_factory, cufs):
    """A SQLite gallery of the manifest's photos."""
    tmp = tmp_path_factory.mktemp("q")
    db = tmp / "g.db"
    run("enroll", "--manifest", write_manifest(tmp, cufs), "--db", db)
    return db


@pytest.fixture(scope="module")
def pg_gallery_db(tmp_path_factory, cufs, new_pg_database):
    """The same photos in a PostgreSQL gallery."""
    url = new_pg_database()
    run("enroll", "--manifest", write_manifest(tmp_path_factory.mktemp("pg"), cufs), "--db", url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_gallery_db(request):
    """The gallery on each backend in turn (searched: FAISS beside SQLite, pgvector in PostgreSQL)."""
    return request.getfixturevalue("gallery_db" if request.param == "sqlite" else "pg_gallery_db")


@pytest.fixture(params=["sqlite", "postgresql"])
def own_gallery_db(request, tmp_path, cufs):
    """A gallery of the same photos that a test may change, on each backend in turn: a copy of the
    SQLite one, or a new PostgreSQL one enrolled from the manifest."""
    if request.param == "sqlite":
        return copy_gallery(request.getfixturevalue("gallery_db"), tmp_path / "copy.db")
    url = request.getfixturevalue("pg_url")
    run("enroll", "--manifest", write_manifest(tmp_path, cufs), "--db", url)
    return url


def pg_spaces(url) -> dict:
    """The search spaces of a PostgreSQL gallery: name -> number of vectors."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as con:
            return dict(con.execute(text("SELECT s.name, count(v.embedding_id) FROM vector_spaces s "
                                         "LEFT JOIN space_vectors v ON v.space_id = s.id GROUP BY s.name")).all())
    finally:
        engine.dispose()


def test_query_stores_and_reports(any_gallery_db, cufs, tmp_path):
    sketch = cufs[("cufs_ar_test_101", "sketch")]
    res = run("query", sketch, "--top", 3, "--case", "C-1", "--operator", "tester", "--json",
              "--report", tmp_path / "r.html", "--db", any_gallery_db)
    out = json.loads(res.stdout)
    assert set(out) >= {"query_id", "candidates"} and len(out["candidates"]) == 3
    assert out["mode"] == DEFAULT_SKETCH_MODE == "roundtrip"  # research/open-set-scoring
    assert [c["rank"] for c in out["candidates"]] == [1, 2, 3]
    scores = [c["score"] for c in out["candidates"]]
    assert scores == sorted(scores, reverse=True)
    assert all(c["fpir"] is None or 0 <= c["fpir"] <= 1 for c in out["candidates"])
    html = (tmp_path / "r.html").read_text()
    assert out["query_id"] in html and "not an identification" in html.lower()
    shown = json.loads(run("queries", "show", out["query_id"], "--json", "--db", any_gallery_db).stdout)
    assert shown["case_id"] == "C-1" and shown["operator"] == "tester"
    listed = json.loads(run("queries", "list", "--case", "C-1", "--json", "--db", any_gallery_db).stdout)
    assert [q["query_uid"] for q in listed] == [out["query_id"]]
    assert listed[0]["top_external_id"] == out["candidates"][0]["subject_id"] and listed[0]["n_candidates"] == 3
    assert json.loads(run("queries", "list", "--case", "no-such-case", "--json", "--db", any_gallery_db).stdout) == []
    assert shown["inputs"][0]["sha256"] and shown["inverter"]["sha256"]
    # searched in the shipped sketch search space, over its own derived index beside the gallery's
    from forensics.whitening import load_whitening

    space = shown["params"]["search_space"]
    assert space["sha256"] == load_whitening("dlib-resnet@v1/128").sha256
    if isinstance(any_gallery_db, str):  # PostgreSQL: the spaces in the database, every face in each
        assert pg_spaces(any_gallery_db) == {"plain": 6, "whitened": 6, "roundtrip": 6}
    else:
        assert all(any_gallery_db.with_suffix(s).is_file() for s in (".faiss", ".whitened.faiss", ".roundtrip.faiss"))
    assert "partial whitening" in html
    assert "sketch's score (weight 0.5) and the synthesized photo's score (weight 0.5)" in unescape(html)
    assert shown["params"]["fusion_weight_inverted"] == 0.5
    assert [p["kind"] for p in shown["params"]["probes"]] == ["drawn", "synthesized", "synthesized vs round-trip"]
    assert [c["subject_id"] for c in shown["candidates"]] == [c["subject_id"] for c in out["candidates"]]
    for fmt in ("pdf", "json", "csv"):
        run("report", out["query_id"], "--format", fmt, "-o", tmp_path / f"r.{fmt}", "--db", any_gallery_db)
    # a short id, as `queries list` shows it, is accepted where it is unambiguous
    short = json.loads(run("queries", "show", out["query_id"][:8], "--json", "--db", any_gallery_db).stdout)
    assert short["query_id"] == out["query_id"]
    run("report", out["query_id"][:8], "--format", "json", "-o", tmp_path / "short.json", "--db", any_gallery_db)
    assert json.loads((tmp_path / "short.json").read_text())["query"]["query_uid"] == out["query_id"]
    res = run("queries", "show", out["query_id"][:3], "--db", any_gallery_db, ok=False)
    assert res.exit_code == 2 and "at least its first 6 characters" in " ".join(res.output.split())
    assert (tmp_path / "r.pdf").read_bytes()[:4] == b"%PDF"
    assert len(list(csv.DictReader(open(tmp_path / "r.csv", encoding="utf-8-sig")))) == 3
    assert "intact" in run("audit", "verify", "--db", any_gallery_db).output


def test_several_sketches_are_fused_into_one_list(any_gallery_db, cufs, tmp_path):
    sk = cufs[("cufs_xm2vts_test_200", "sketch")]
    sk2 = tmp_path / "second_witness.png"  # the same drawing in another file (one file twice is refused)
    Image.open(sk).save(sk2)
    res = run("query", sk, sk2, "--top", 6, "--json", "--db", any_gallery_db)
    out = json.loads(res.stdout)
    assert len(out["candidates"]) == 6  # one list, each subject once
    assert len({c["subject_id"] for c in out["candidates"]}) == 6
    # 2 sketches x (drawn, synthesized, synthesized vs round-trip): the default mode, roundtrip
    assert len(out["candidates"][0]["detail"]["per_probe"]) == 6
    fused = json.loads(run("query", sk, sk2, "--top", 6, "--mode", "fusion", "--json", "--db", any_gallery_db).stdout)
    assert len(fused["candidates"][0]["detail"]["per_probe"]) == 4  # 2 sketches x (drawn, synthesized)


def test_filters_apply_before_ranking_without_losing_candidates(any_gallery_db, cufs, tmp_path):
    sk = cufs[("cufs_ar_test_101", "sketch")]
    out = json.loads(run("query", sk, "--top", 2, "--sex", "F", "--json", "--db", any_gallery_db).stdout)
    assert len(out["candidates"]) == 2 and all(c["sex"] == "F" for c in out["candidates"])
    out = json.loads(run("query", sk, "--top", 5, "--born-between", 1975, 1985, "--where", "district=north",
                         "--json", "--db", any_gallery_db).stdout)
    assert {c["subject_id"] for c in out["candidates"]} == {"cufs_ar_test_102", "cufs_xm2vts_test_200"}
    assert out["subjects_searched"] == 2 and out["gallery_size"] == 6  # the FPIR is stated for the 2 searched
    shown = json.loads(run("queries", "show", out["query_id"], "--json", "--db", any_gallery_db).stdout)
    assert shown["params"]["subjects_searched"] == 2
    run("report", out["query_id"], "--format", "json", "-o", tmp_path / "r.json", "--db", any_gallery_db)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["gallery"]["subjects_searched"] == 2 and report["gallery"]["size"] == 6


@pytest.mark.parametrize("args,message", [
    (["--sex", "X"], "no subject in the gallery has that recorded sex (recorded values: F, M)"),
    (["--where", "tattoo=yes"], "no subject in the gallery has the metadata key 'tattoo'"),
    (["--born-between", 1995, 1980], "did you mean --born-between 1980 1995"),
    (["--sex", "F", "--where", "district=north", "--born-between", 1970, 1974],
     "the filters leave no subject of the 6 in the gallery to search"),
    (["--top", 0], "--top must be at least 1"),
    (["--report", "no-such-folder/r.html"], "the folder no-such-folder does not exist"),
    (["--report", "r.docx"], "the extension must be one of"),
])
def test_a_search_that_cannot_find_anyone_is_refused_before_it_runs(any_gallery_db, cufs, args, message):
    before = run("queries", "list", "--json", "--db", any_gallery_db).stdout
    res = run("query", cufs[("cufs_ar_test_101", "sketch")], *args, "--db", any_gallery_db, ok=False)
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
    assert run("queries", "list", "--json", "--db", any_gallery_db).stdout == before  # nothing stored or audited


def test_a_report_that_cannot_be_written_names_the_stored_query(any_gallery_db, cufs, tmp_path, monkeypatch):
    import forensics.reports as reports

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(reports, "export_report", fail)
    res = run("query", cufs[("cufs_ar_test_101", "sketch")], "--top", 2, "--report", tmp_path / "r.html",
              "--db", any_gallery_db, ok=False)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "disk full" in said
    uid = json.loads(run("queries", "list", "--json", "--limit", 1, "--db", any_gallery_db).stdout)[0]["query_uid"]
    assert f"the query is stored as {uid}" in said and f"forensics report {uid} -o FILE" in said


def test_raw_and_inverted_modes_and_bad_mode(any_gallery_db, cufs):
    sk = cufs[("cufs_ar_test_102", "sketch")]
    for mode in ("raw", "inverted"):
        out = json.loads(run("query", sk, "--mode", mode, "--top", 2, "--json", "--db", any_gallery_db).stdout)
        assert out["mode"] == mode and len(out["candidates"]) == 2
    out = json.loads(run("query", sk, "--no-whiten", "--top", 2, "--json", "--db", any_gallery_db).stdout)
    shown = json.loads(run("queries", "show", out["query_id"], "--json", "--db", any_gallery_db).stdout)
    assert shown["params"]["search_space"] is None  # the raw descriptor space
    res = run("query", sk, "--mode", "magic", "--db", any_gallery_db, ok=False)
    assert res.exit_code == 2 and "--mode" in res.output


def test_tampered_audit_log_is_detected(tmp_path, gallery_db, cufs):
    db = copy_gallery(gallery_db, tmp_path / "copy.db")
    run("query", cufs[("cufs_ar_test_103", "sketch")], "--top", 1, "--db", db)
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    con.execute("UPDATE audit_events SET actor='mallory' WHERE id=1")
    con.commit()
    con.close()
    res = run("audit", "verify", "--db", db, ok=False)
    assert res.exit_code == 1 and "#1" in res.output and "edited" in res.output
    out = tmp_path / "audit.jsonl"
    run("audit", "export", "--format", "jsonl", "-o", out, "--db", db)
    assert len(out.read_text().splitlines()) >= 2


def test_purged_subject_disappears_from_search_and_stored_queries(tmp_path, own_gallery_db, cufs):
    db = own_gallery_db
    sk = cufs[("cufs_ar_test_101", "sketch")]
    qid = json.loads(run("query", sk, "--top", 6, "--json", "--db", db).stdout)["query_id"]
    if isinstance(db, str):  # PostgreSQL: the subject's vectors leave every space with its rows
        assert pg_spaces(db) == {"plain": 6, "whitened": 6, "roundtrip": 6}
    else:
        whitened = db.with_suffix(".whitened.faiss")
        assert whitened.is_file()  # the sketch query built the derived whitened index
    run("gallery", "remove", "cufs_ar_test_101", "--yes", "--db", db)
    if isinstance(db, str):
        assert pg_spaces(db) == {"plain": 5, "whitened": 5, "roundtrip": 5}
    else:
        assert not whitened.exists()  # deleted with the subject's vectors in it; rebuilt by the next query
    out = json.loads(run("query", sk, "--top", 6, "--json", "--db", db).stdout)
    assert "cufs_ar_test_101" not in [c["subject_id"] for c in out["candidates"]]
    stored = json.loads(run("queries", "show", qid, "--json", "--db", db).stdout)
    assert "cufs_ar_test_101" not in json.dumps(stored["candidates"])  # inputs keep the sketch file path
    export = run("audit", "export", "--format", "jsonl", "-o", tmp_path / "a.jsonl", "--db", db)
    assert export.exit_code == 0 and "cufs_ar_test_101" not in (tmp_path / "a.jsonl").read_text()
    assert "intact" in run("audit", "verify", "--db", db).output
    assert "agree" in run("gallery", "check", "--db", db).output


def test_a_blank_page_is_refused_and_a_guessed_face_is_flagged(tmp_path, gallery_db):
    """No face and nothing drawn: a clear error and nothing stored. No face but a drawing: the
    centred-portrait fallback runs, and the terminal says the face position was assumed."""
    import numpy as np
    from PIL import Image, ImageDraw

    db = copy_gallery(gallery_db, tmp_path / "copy.db")
    def n_queries():
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT count(*) FROM queries").fetchone()[0]
        finally:
            con.close()

    n_before = n_queries()
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 250), "white").save(blank)
    res = run("query", blank, "--db", db, ok=False)
    assert res.exit_code != 0 and "blank.png" in res.output and "blank" in res.output
    assert n_queries() == n_before

    rng = np.random.default_rng(1)
    page = Image.new("RGB", (200, 250), "white")
    draw = ImageDraw.Draw(page)
    for _ in range(40):
        draw.line([tuple(int(v) for v in rng.integers(0, 200, 2)) for _ in range(2)], fill="black", width=3)
    scribbles = tmp_path / "scribbles.png"
    page.save(scribbles)
    res = run("query", scribbles, "--top", 2, "--db", db)
    assert "scribbles.png: no face was detected" in res.output and "ASSUMED" in res.output
    assert n_queries() == n_before + 1


@pytest.mark.slow
def test_roundtrip_mode_builds_its_index_once_and_purge_removes_from_it(tmp_path, gallery_db, cufs):
    """--mode roundtrip: a third score per sketch (the synthesized photo against the round-trip
    gallery vectors), recorded and explained; the derived index is computed once, brought up to
    date after an enrollment by computing only the new face, and a purge takes the subject's
    vectors out of it."""
    from gallery.index import VectorIndex

    db = copy_gallery(gallery_db, tmp_path / "copy.db")
    sk = cufs[("cufs_ar_test_102", "sketch")]
    out = json.loads(run("query", sk, "--mode", "roundtrip", "--top", 6, "--json",
                         "--report", tmp_path / "r.html", "--db", db).stdout)
    assert out["mode"] == "roundtrip" and len(out["candidates"]) == 6
    assert all(len(c["detail"]["per_probe"]) == 3 for c in out["candidates"])  # raw, inverted, round trip
    rt = db.with_suffix(".roundtrip.faiss")
    first = VectorIndex.load(rt)
    assert first.ntotal == 6 and first.space.startswith("roundtrip:")
    shown = json.loads(run("queries", "show", out["query_id"], "--json", "--db", db).stdout)
    assert shown["params"]["roundtrip"]["index_space"] == first.space
    assert "round-trip mode" in (tmp_path / "r.html").read_text()
    # scores: the weighted mean of the three per-probe scores, weights 1/3 each here
    c0 = out["candidates"][0]
    assert c0["score"] == pytest.approx(sum(c0["detail"]["per_probe"]) / 3, abs=1e-5)

    mtime = rt.stat().st_mtime_ns
    run("query", sk, "--mode", "roundtrip", "--top", 2, "--db", db)
    assert rt.stat().st_mtime_ns == mtime  # current: loaded, not recomputed
    run("query", sk, "--mode", "roundtrip", "--no-whiten", "--top", 2, "--db", db)
    raw_rt = db.with_suffix(".roundtrip-raw.faiss")
    assert VectorIndex.load(raw_rt).space.endswith(":raw") and rt.stat().st_mtime_ns == mtime  # kept apart

    run("enroll", cufs[("cufs_xm2vts_test_202", "photo")], "--subject-from", "stem", "--db", db)
    res = run("gallery", "roundtrip", "--db", db)
    assert "7 vectors" in res.output and "1/1" in res.output  # only the new face was computed
    now = VectorIndex.load(rt)
    assert set(first.ids().tolist()) < set(now.ids().tolist())
    assert now.reconstruct(first.ids()) == pytest.approx(first.reconstruct(first.ids()), abs=1e-6)

    con = sqlite3.connect(db)
    (gone,) = con.execute("SELECT e.id FROM embeddings e JOIN faces f ON e.face_id = f.id JOIN images i "
                          "ON f.image_id = i.id JOIN subjects s ON i.subject_id = s.id WHERE s.external_id = ?",
                          ("cufs_ar_test_102",)).fetchone()
    con.close()
    run("gallery", "remove", "cufs_ar_test_102", "--yes", "--db", db)
    assert gone not in VectorIndex.load(rt).ids().tolist() and gone not in VectorIndex.load(raw_rt).ids().tolist()
    out = json.loads(run("query", sk, "--mode", "roundtrip", "--top", 6, "--json", "--db", db).stdout)
    assert "cufs_ar_test_102" not in [c["subject_id"] for c in out["candidates"]]


@pytest.mark.slow
def test_evaluate_roundtrip_agrees_with_query(tmp_path, gallery_db, cufs):
    """`forensics evaluate --mode roundtrip` scores a sketch as `forensics query --mode roundtrip`."""
    db = copy_gallery(gallery_db, tmp_path / "copy.db")
    ids = ["cufs_ar_test_101", "cufs_xm2vts_test_200"]
    manifest = tmp_path / "probes.csv"
    manifest.write_text("path,subject_id\n" + "".join(f"{cufs[(i, 'sketch')]},{i}\n" for i in ids))
    res = run("evaluate", "--probes", manifest, "--mode", "roundtrip", "--top", 6, "--out", tmp_path / "e.jsonl",
              "--db", db)
    assert "rank-1" in res.output
    lines = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [x["subject_id"] for x in lines] == ids and all(len(x["candidates"]) == 6 for x in lines)
    for line in lines:
        q = json.loads(run("query", line["probe"], "--mode", "roundtrip", "--top", 6, "--json", "--db", db).stdout)
        assert [c["subject_id"] for c in q["candidates"]] == [c["subject_id"] for c in line["candidates"]]
        assert [c["score"] for c in q["candidates"]] == pytest.approx([c["score"] for c in line["candidates"]],
                                                                      abs=1e-5)


@pytest.mark.slow
def test_an_interrupted_roundtrip_build_resumes_where_it_stopped(tmp_path, gallery_db):
    """The round-trip index is saved after every chunk of faces (stale until complete), so an
    interruption during a long build loses at most one chunk."""
    from gallery.db import open_gallery
    from gallery.index import VectorIndex

    from forensics.inversion.invert import load_inverter
    from forensics.models.registry import load_embedder
    from forensics.faiss_indexes import FaissIndexes

    db = copy_gallery(gallery_db, tmp_path / "copy.db")
    g, embedder, inverter = open_gallery(db, create=False), load_embedder(), load_inverter()
    repo, indexes = g.repository(), FaissIndexes(g)
    calls = []

    def stop_after_first_chunk(done, total):
        calls.append((done, total))
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        indexes.roundtrip(embedder, inverter, None, stop_after_first_chunk, chunk=2)
    partial = VectorIndex.load(indexes.path("roundtrip-raw"))
    assert partial.ntotal == 2 and partial.gallery_fingerprint is None  # a stale checkpoint

    calls.clear()
    full = indexes.roundtrip(embedder, inverter, None, lambda d, t: calls.append((d, t)), chunk=2)
    assert full.ntotal == 6 and full.gallery_fingerprint == repo.gallery_fingerprint(repo.gallery_embedder())
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)  # only the 4 faces not yet computed
    assert full.reconstruct(partial.ids()) == pytest.approx(partial.reconstruct(partial.ids()), abs=1e-6)


def test_examiner_review_is_recorded_verified_listed_and_reported(any_gallery_db, cufs, tmp_path):
    out = json.loads(run("query", cufs[("cufs_ar_test_101", "sketch")], "--top", 3, "--case", "C-REV", "--json",
                         "--db", any_gallery_db).stdout)
    short = out["query_id"][:8]
    listed = json.loads(run("queries", "list", "--case", "C-REV", "--json", "--db", any_gallery_db).stdout)
    assert listed[0]["review"] == "not reviewed"
    run("review", short, "--candidate", 1, "--decision", "lead", "--note", "same ear shape", "--examiner", "Ann",
        "--db", any_gallery_db)
    res = run("review", short, "--candidate", 1, "--verify", "--examiner", "ann", "--db", any_gallery_db, ok=False)
    assert res.exit_code == 2 and "a second examiner must verify it" in " ".join(res.output.split())
    run("review", short, "--candidate", 1, "--verify", "--examiner", "Bob", "--db", any_gallery_db)
    run("review", short, "--candidate", 2, "--decision", "excluded", "--examiner", "Ann", "--db", any_gallery_db)
    res = run("review", short, "--candidate", 7, "--decision", "lead", "--db", any_gallery_db, ok=False)
    assert res.exit_code == 2 and "no candidate at rank 7" in " ".join(res.output.split())
    listed = json.loads(run("queries", "list", "--case", "C-REV", "--json", "--db", any_gallery_db).stdout)
    assert listed[0]["review"] == "2 reviewed (1 lead), 1 verified"
    run("report", short, "--format", "json", "-o", tmp_path / "r.json", "--db", any_gallery_db)
    reviews = json.loads((tmp_path / "r.json").read_text())["reviews"]
    assert [(v["rank"], v["decision"], v["examiner"]) for v in reviews] == [(1, "lead", "Ann"), (2, "excluded", "Ann"),
                                                                           (3, None, None)]
    assert [w["examiner"] for w in reviews[0]["verified_by"]] == ["Bob"] and reviews[0]["note"] == "same ear shape"
    run("report", short, "--format", "html", "-o", tmp_path / "r.html", "--db", any_gallery_db)
    html = unescape((tmp_path / "r.html").read_text())
    assert "Examiner review" in html and "not reviewed" in html and "same ear shape" in html
    assert "intact" in run("audit", "verify", "--db", any_gallery_db).output


def test_sketch_provenance_is_recorded_and_printed_beside_each_sketch(any_gallery_db, cufs, tmp_path):
    sk1, sk2 = cufs[("cufs_ar_test_101", "sketch")], cufs[("cufs_xm2vts_test_200", "sketch")]
    out = json.loads(run("query", sk1, sk2, "--top", 2, "--json", "--witness", "W. One", "--witness", "W. Two",
                         "--artist", "A. Artist", "--drawn-on", "2026-11-30", "--sketch-note", "drawn at the station",
                         "--report", tmp_path / "r.json", "--db", any_gallery_db).stdout)
    inputs = json.loads((tmp_path / "r.json").read_text())["inputs"]
    assert [i["provenance"]["witness"] for i in inputs] == ["W. One", "W. Two"]
    assert {i["provenance"]["artist"] for i in inputs} == {"A. Artist"} and inputs[1]["provenance"]["drawn_on"] == "2026-11-30"
    run("report", out["query_id"], "--format", "html", "-o", tmp_path / "r.html", "--db", any_gallery_db)
    assert "W. Two" in (tmp_path / "r.html").read_text() and "drawn at the station" in (tmp_path / "r.html").read_text()
    for args, message in ((["--witness", "a", "--witness", "b", "--witness", "c"], "given 3 times for 2 sketches"),
                          (["--drawn-on", "yesterday"], "give a date as YYYY-MM-DD")):
        res = run("query", sk1, sk2, *args, "--db", any_gallery_db, ok=False)
        assert res.exit_code == 2 and message in " ".join(res.output.split())


def test_the_case_report_lists_every_search_of_the_case_with_its_review_status(any_gallery_db, cufs, tmp_path):
    sk = cufs[("cufs_ar_test_101", "sketch")]
    ids = [json.loads(run("query", sk, "--top", 2, "--case", "C-CASE", "--json", "--db", any_gallery_db).stdout)["query_id"]
           for _ in range(2)]
    run("review", ids[0], "--candidate", 1, "--decision", "inconclusive", "--examiner", "Ann", "--db", any_gallery_db)
    run("report", "--case", "C-CASE", "-f", "json", "-o", tmp_path / "case.json", "--db", any_gallery_db)
    case = json.loads((tmp_path / "case.json").read_text())
    assert case["n_queries"] == 2 and {q["query_uid"] for q in case["queries"]} == set(ids)
    assert {q["query_uid"]: q["review"] for q in case["queries"]}[ids[1]] == "not reviewed"
    run("report", "--case", "C-CASE", "-o", tmp_path / "case.html", "--db", any_gallery_db)
    assert ids[0] in (tmp_path / "case.html").read_text() and "1 reviewed (0 lead), 0 verified" in (tmp_path / "case.html").read_text()
    for args, message in ((["--case", "NO-SUCH"], "no stored search has the case id"),
                          ([ids[0], "--case", "C-CASE"], "not both"),
                          (["--case", "C-CASE", "-f", "pdf"], "unknown case report format 'pdf'; use one of html, json")):
        res = run("report", *args, "-o", tmp_path / "x.json", "--db", any_gallery_db, ok=False)
        assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
    assert "intact" in run("audit", "verify", "--db", any_gallery_db).output


#: FS2K three-quarter view (annotated turned; yaw index 0.63 in research/pose/pose-threshold-2026-12-02.json)
TURNED_SKETCH = "fs2k/sketches/fs2k_p3_0014.jpg"
POSE_CAVEAT = "far from frontal by the rule of research/pose/"


def test_a_turned_sketch_is_warned_about_and_its_report_says_so(tmp_path, gallery_db, cufs, data_dir):
    """A three-quarter-view sketch: a warning on the terminal and the caveat in the sketch section of
    the report; a frontal one: neither (its pose is in the JSON report only)."""
    reports = {}
    for name, sketch in (("turned", data_dir / TURNED_SKETCH), ("frontal", cufs[("cufs_ar_test_101", "sketch")])):
        res = run("query", sketch, "--top", 2, "--json", "--report", tmp_path / f"{name}.html", "--db", gallery_db)
        warned = "appears turned from frontal" in " ".join(res.output.split())
        assert warned == (name == "turned"), res.output
        reports[name] = unescape((tmp_path / f"{name}.html").read_text()), json.loads(res.stdout)["query_id"]
    html, _ = reports["turned"]
    assert POSE_CAVEAT in html and 'docs/benchmarks.md, "Sketch identification by pose"' in html
    assert re.search(r"Estimated pose: yaw index \+0\.\d\d \(the base of the nose lies 0\.\d\d eye distances right", html)
    html, uid = reports["frontal"]
    assert POSE_CAVEAT not in html and "Estimated pose" not in html and "Sketch identification by pose" not in html
    run("report", uid, "--format", "json", "-o", tmp_path / "frontal.json", "--db", gallery_db)
    pose = json.loads((tmp_path / "frontal.json").read_text())["inputs"][0]["detection"]["pose"]
    assert pose["turned"] is False and pose["caveat"] is None
    assert "intact" in run("audit", "verify", "--db", gallery_db).output  # the stored poses are sealed
