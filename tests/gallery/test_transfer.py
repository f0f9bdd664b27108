"""Copying a gallery (gallery.transfer), from each backend to each: every row verbatim, the chain
and the seals verifying on the copy, an occupied destination refused, and a failed copy leaving
the destination empty."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from gallery import audit, open_gallery
from gallery.models import AuditEvent, GalleryMeta
from gallery.sealed import add_review_sealed, enroll_sealed, remove_subject_sealed, save_query_sealed
from gallery.transfer import COPIED_TABLES, CopyError, content_counts, copy_gallery
from gallery.verify import verify_gallery

#: Floats whose shortest decimal form is long: they must come back bit for bit.
ODD_SCORES = (0.1 + 0.2, 1 / 3, 2 ** -40, 0.7071067811865476)


def _enrollments(face, sha, emb, subjects: list[str]):
    rng = np.random.default_rng(7)
    out = []
    for n, ext in enumerate(subjects):
        f = face(rng.normal(size=16), emb, n)
        f.det_score = ODD_SCORES[n % len(ODD_SCORES)]
        out.append(({"external_id": ext, "name": f"Name {ext}", "meta": {"height_m": 1.83, "note": "ü"}},
                    {"sha256": sha(ext), "original_path": f"/data/{ext}.jpg", "width": 250, "height": 250,
                     "size_bytes": 1000 + n, "source": "test"}, [f]))
    return out


@pytest.fixture(params=("sqlite", "postgresql"))
def dest_url(request, tmp_path) -> str:
    """Where a copy goes: a new SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "copy.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def source(gal, emb, face, sha):
    """A sealed gallery: 4 subjects, a stored query with odd float scores, a review, a removal."""
    enroll_sealed(gal, _enrollments(face, sha, emb, ["A-1", "A-2", "A-3", "A-4"]), "officer")
    uid = save_query_sealed(
        gal, actor="officer", details={"case_id": "C-1"}, input_hashes=["f" * 64], mode="fusion", case_id="C-1",
        operator="officer", params={"top": 3, "alpha": 0.1 + 0.2}, embedder=emb,
        inputs=[{"sha256": "f" * 64, "original_path": "/case/sketch.png", "aligned_png": b"png"}],
        candidates=[{"rank": i + 1, "score": ODD_SCORES[i], "subject_external_id": ext, "subject_name": f"Name {ext}",
                     "image_sha256": sha(ext), "score_detail": {"fpir": ODD_SCORES[i] / 7}}
                    for i, ext in enumerate(["A-1", "A-2", "A-3"])])
    add_review_sealed(gal, "examiner", uid, 1, "lead", "examiner", note="same ear")
    remove_subject_sealed(gal, "A-2", "officer")
    assert verify_gallery(gal).ok
    return gal


def _rows(g, table) -> list[dict]:
    with g.session() as s:
        return [dict(r) for r in s.execute(select(table).order_by(*table.primary_key.columns)).mappings()]


def assert_same_rows(a, b) -> None:
    """Every table of `a` is in `b` row for row (b's audit log may go on: the copy's own event)."""
    for table in COPIED_TABLES:
        ra, rb = _rows(a, table), _rows(b, table)
        if table.name == AuditEvent.__tablename__:
            rb = rb[: len(ra)]
        if table.name == GalleryMeta.__tablename__:
            ra, rb = ([r for r in rows if r["key"] != audit.HEAD_KEY] for rows in (ra, rb))
        assert ra == rb, table.name


def test_a_copy_holds_every_row_as_stored_and_verifies(source, dest_url):
    with open_gallery(dest_url) as dest:
        res = copy_gallery(source, dest, actor="admin", source_label="cases.db", dest_label="copy")
        assert_same_rows(source, dest)
        verdict = verify_gallery(dest)
        assert verdict.ok, verdict.summary()
        events = list(audit.iter_events(dest))
    n_source = len(list(audit.iter_events(source)))
    assert [e.action for e in events[n_source:]] == ["copy"] and res.audit_events == n_source + 1
    assert events[-1].details["rows"]["subjects"] == 3 and events[-1].prev_hash == audit.verify_chain(source).head_hash
    assert {c.table: c.destination for c in res.counts}["reviews"] == 1


def raw_rows(g) -> list[list[tuple]]:
    """Every row of the copied tables as the database driver returns it (text, numbers, bytes):
    timestamps and JSON are stored as text on both backends, so these compare across them."""
    with g.engine.connect() as conn:
        return [[tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {t.name} ORDER BY 1")]
                for t in COPIED_TABLES if t.name not in (AuditEvent.__tablename__, GalleryMeta.__tablename__)]


def test_there_and_back_every_value_comes_back_bit_for_bit(source, dest_url, tmp_path):
    """source -> (SQLite or PostgreSQL) -> SQLite: floats, timestamps and JSON as first stored."""
    with open_gallery(dest_url) as one, open_gallery(tmp_path / "two.db") as two:
        copy_gallery(source, one, actor="admin", source_label="cases.db", dest_label="one")
        copy_gallery(one, two, actor="admin", source_label="one", dest_label="two.db")
        assert_same_rows(source, two)
        assert verify_gallery(two).ok
        assert raw_rows(one) == raw_rows(source)
        assert raw_rows(two) == raw_rows(source)


def test_a_copy_takes_new_rows_after_the_copied_ones(source, dest_url, emb, face, sha):
    with open_gallery(dest_url) as dest:
        copy_gallery(source, dest, actor="admin", source_label="cases.db", dest_label="copy")
        enroll_sealed(dest, _enrollments(face, sha, emb, ["B-1"]), "officer")
        assert dest.repository().count_subjects() == 4
        assert verify_gallery(dest).ok


def test_an_occupied_destination_is_refused(source, tmp_path, emb, face, sha):
    with open_gallery(tmp_path / "busy.db") as dest:
        audit.append_event(dest, "someone", "note")
        with pytest.raises(CopyError, match=r"busy.db is not empty \(1 audit_events\): a copy carries the source's audit log"):
            copy_gallery(source, dest, actor="admin", source_label="cases.db", dest_label="busy.db")


def test_a_failed_copy_leaves_the_destination_empty(source, dest_url, raw_sql):
    # edited behind the tool's back: the copy cannot verify
    raw_sql(source, "UPDATE subjects SET name = 'Someone Else' WHERE external_id = 'A-1'")
    with open_gallery(dest_url) as dest:
        meta = _rows(dest, GalleryMeta.__table__)
        with pytest.raises(CopyError, match="does not verify.*1 subjects changed.*nothing was kept"):
            copy_gallery(source, dest, actor="admin", source_label="cases.db", dest_label="copy")
        with dest.session() as s:
            assert {n for t, n in content_counts(s).items() if t != "gallery_meta"} == {0}
        assert _rows(dest, GalleryMeta.__table__) == meta


def test_a_copy_into_postgresql_commits_the_plain_vector_space_with_the_rows(source, pg_url):
    """The plain space is written in the copy's transaction, as enrollment writes it: a copy
    interrupted right after its commit (before the application's index refresh) is not behind."""
    from gallery import pgvector

    with open_gallery(pg_url) as dest:
        copy_gallery(source, dest, actor="admin", source_label="cases.db", dest_label="copy")
        ids, vecs = dest.repository().iter_embeddings()
        with dest.session() as s:
            space = pgvector.get_space(s, pgvector.PLAIN)
            assert space is not None and len(pgvector.missing_ids(s, space)) == 0
            held = pgvector.read_vectors(s, space, ids.tolist())
    assert len(ids) == 3 and sorted(held) == ids.tolist()
    np.testing.assert_allclose(np.stack([held[i] for i in ids.tolist()]),
                               vecs / np.linalg.norm(vecs, axis=1, keepdims=True), atol=1e-6)
