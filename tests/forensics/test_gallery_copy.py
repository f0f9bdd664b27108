"""`forensics gallery copy` through the real CLI on real CUFS photos: a gallery with a stored query
and a review, copied SQLite -> PostgreSQL -> SQLite; `audit verify` passes on each copy, every
stored row is as it was, and the same sketch query gives the same top 5 on each."""

from __future__ import annotations

import csv
import json

import pytest

from forensics.testing import run_cli as run
from gallery.location import GalleryLocation


CUFS_IDS = ["cufs_ar_test_101", "cufs_ar_test_102", "cufs_xm2vts_test_200", "cufs_cuhk_student_test_001",
            "cufs_xm2vts_test_201", "cufs_ar_test_103", "cufs_cuhk_student_test_002", "cufs_xm2vts_test_202"]


@pytest.fixture(scope="module")
def cufs(data_dir):
    rows = list(csv.DictReader(open(data_dir / "cufs" / "manifest.csv")))
    return {(r["identity"], r["kind"]): data_dir / "cufs" / r["file"] for r in rows}


@pytest.fixture(scope="module")
def source_db(tmp_path_factory, cufs):
    """CUFS test photos of 8 people, one stored query with a review, one removed subject."""
    tmp = tmp_path_factory.mktemp("copy")
    manifest = tmp / "m.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id", "name", "sex", "birth_year"])
        for k, i in enumerate(CUFS_IDS):
            w.writerow([cufs[(i, "photo")], i, f"Person {k}", "F" if k % 2 else "M", 1970 + 3 * k])
    db = tmp / "cases.db"
    run("enroll", "--manifest", manifest, "--db", db)
    out = json.loads(run("query", cufs[(CUFS_IDS[0], "sketch")], "--top", 5, "--case", "C-7", "--operator", "jdoe",
                         "--json", "--db", db).stdout)
    run("review", out["query_id"], "--candidate", 1, "--decision", "lead", "--examiner", "jdoe", "--db", db)
    run("gallery", "remove", CUFS_IDS[-1], "--yes", "--db", db)
    return db, out["query_id"]


def stored_state(db) -> dict:
    """What audit verify seals, as digests, by kind: every image, subject, query and review."""
    from gallery.db import open_gallery
    from gallery.seal import image_digests, query_digests, review_digests, subject_digests

    with open_gallery(db, create=False) as g, g.session() as s:
        return {"images": image_digests(s), "subjects": subject_digests(s), "queries": query_digests(s),
                "reviews": review_digests(s)}


def top5(db, sketch) -> list[tuple[str, float]]:
    out = json.loads(run("query", sketch, "--top", 5, "--json", "--db", db).stdout)
    return [(c["subject_id"], c["score"]) for c in out["candidates"]]


def copy_events(db) -> list[dict]:
    from gallery import audit
    from gallery.db import open_gallery

    with open_gallery(db, create=False) as g:
        return [e.details for e in audit.iter_events(g) if e.action == "copy"]


def test_a_copy_there_and_back_verifies_holds_the_same_rows_and_answers_the_same(source_db, cufs, tmp_path,
                                                                                 gallery_url):
    """SQLite -> (SQLite or PostgreSQL) -> SQLite."""
    db, query_id = source_db
    back = tmp_path / "back.db"
    sketch = cufs[(CUFS_IDS[1], "sketch")]
    before = top5(db, sketch)  # a stored query too: each copy carries the queries run on its source
    for src, dest in ((db, gallery_url), (gallery_url, back)):
        expected = stored_state(src)
        res = run("gallery", "copy", "--from", src, "--to", dest)
        assert "counts checked" in res.output and "subjects" in res.output
        assert "intact" in run("audit", "verify", "--db", dest).output
        assert stored_state(dest) == expected
        assert query_id in run("queries", "show", query_id, "--db", dest).output
        after = top5(dest, sketch)
        assert [s for s, _ in after] == [s for s, _ in before]
        assert [sc for _, sc in after] == pytest.approx([sc for _, sc in before], abs=1e-4)
        assert run("gallery", "check", "--db", dest).exit_code == 0
    assert [e["to"] for e in copy_events(back)] == [GalleryLocation.parse(gallery_url).display(), str(back)]


def test_a_password_in_a_url_is_never_shown_or_stored(source_db, pg_url, tmp_path):
    from sqlalchemy.engine import make_url

    db, _ = source_db
    secret = make_url(pg_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    res = run("gallery", "copy", "--from", db, "--to", secret)
    back = tmp_path / "back.db"
    res2 = run("gallery", "copy", "--from", secret, "--to", back)
    exported = tmp_path / "audit.jsonl"
    run("audit", "export", "-o", exported, "--db", back)
    for text in (res.output, res2.output, exported.read_text()):
        assert "s3cret-pw" not in text
    assert copy_events(back)[0]["to"].count("***") == 1


def test_an_occupied_destination_is_refused_and_left_alone(source_db, tmp_path):
    db, _ = source_db
    busy = tmp_path / "busy.db"
    run("gallery", "init", "--db", busy)
    res = run("gallery", "copy", "--from", db, "--to", busy, ok=False)
    assert res.exit_code == 2 and "is not empty (1 audit_events)" in " ".join(res.output.split())
    assert stored_state(busy) == {"images": {}, "subjects": {}, "queries": {}, "reviews": {}}


def test_a_gallery_copied_to_the_server_then_given_roles_serves_an_examiner(source_db, cufs, pg_url, login_as):
    """docs/deployment.md, section 3: the owner copies, `gallery roles` grants, `gallery roundtrip`
    computes what the default mode needs (refused to an examiner before); an examiner then
    searches it and may not remove."""
    from gallery.roles import EXAMINER

    db, query_id = source_db
    run("gallery", "copy", "--from", db, "--to", pg_url)
    assert "forensics_examiner" in run("gallery", "roles", "--db", pg_url).output
    examiner = login_as(pg_url, EXAMINER)
    sketch = cufs[(CUFS_IDS[1], "sketch")]
    res = run("query", sketch, "--db", examiner, ok=False)
    assert res.exit_code == 2 and "forensics gallery roundtrip" in " ".join(res.output.split())
    run("gallery", "roundtrip", "--db", pg_url)
    out = json.loads(run("query", sketch, "--top", 3, "--json", "--db", examiner).stdout)
    assert out["candidates"][0]["subject_id"] in CUFS_IDS
    assert query_id in run("queries", "show", query_id, "--db", examiner).output
    res = run("gallery", "remove", CUFS_IDS[0], "--yes", "--db", examiner, ok=False)
    assert res.exit_code == 2 and "forensics_admin" in " ".join(res.output.split())
    assert "intact" in run("audit", "verify", "--db", pg_url).output
