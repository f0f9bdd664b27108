"""The application object: resolving a stored query from a short id, checking review text (fast,
no models), on a SQLite gallery and a PostgreSQL one."""

from __future__ import annotations

import pytest

from forensics.app import Forensics
from forensics.errors import ForensicsError
from gallery.records import QueryInputSpec


def test_a_query_id_prefix_must_be_unambiguous(gallery_url):
    fx = Forensics(gallery_url)
    repo = fx.gallery(create=True).repository()
    for uid in ("0123456789aa", "0123456789bb", "fedcba987654"):
        repo.save_query(query_uid=uid, inputs=[QueryInputSpec(sha256=uid.ljust(64, "0"))], candidates=[])
    assert fx.query_id("fedcba") == "fedcba987654"
    assert fx.query_id("0123456789aa") == "0123456789aa"
    with pytest.raises(ForensicsError, match="several query ids"):
        fx.query_id("0123456789")
    with pytest.raises(ForensicsError, match="first 6 characters"):
        fx.query_id("fed")
    with pytest.raises(ForensicsError, match="no query"):
        fx.query_id("999999")


def test_review_and_provenance_text_is_checked_before_anything_is_stored(gallery_url):
    fx = Forensics(gallery_url)
    repo = fx.gallery(create=True).repository()
    repo.save_query(query_uid="abcdef123456", inputs=[QueryInputSpec(sha256="a" * 64)],
                    candidates=[{"rank": 1, "score": 0.5, "subject_external_id": "S-1"}])
    for examiner, note, message in (("  ", None, "give the examiner's name"),
                                    ("Ann\x1b[31m", None, "control character"),
                                    ("Ann", "x" * 9000, "--note is 9,000 characters long")):
        with pytest.raises(ForensicsError, match=message):
            fx.review("abcdef", 1, "lead", examiner, note)
    assert repo.reviews_of("abcdef123456") == []
    with pytest.raises(ForensicsError, match="control character"):
        fx.sketch_provenance(1, ["W\x00"], [], [], [])
    assert fx.sketch_provenance(1, [], [], [], ["line one\nline two"])[0]["note"] == "line one\nline two"


def test_messages_and_the_audit_log_name_a_postgresql_gallery_without_its_password(pg_url):
    from gallery.audit import iter_events

    fx = Forensics(pg_url.replace("postgres:@", "postgres:s3cret-pw@"))  # the test server trusts its socket
    g = fx.init_gallery()
    with pytest.raises(ForensicsError, match="no subject") as ei:
        fx.subject("nobody")
    assert "s3cret-pw" not in str(ei.value) and "postgres:***@" in str(ei.value)
    (event,) = list(iter_events(g))
    assert event.action == "gallery-init" and event.target == fx.db.display() and "s3cret-pw" not in event.target


def test_gallery_check_names_the_database_check_that_failed(pg_url):
    """On PostgreSQL the database's own check is its constraints: one added NOT VALID is reported
    as a PostgreSQL constraint problem (not as SQLite's), and nothing else is checked."""
    from sqlalchemy import create_engine, text

    fx = Forensics(pg_url)
    fx.init_gallery()
    assert fx.check() == []
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE subjects ADD CONSTRAINT subject_id_short CHECK (length(external_id) < 200) "
                          "NOT VALID"))
    engine.dispose()
    problems = fx.check()
    assert [p.kind for p in problems] == ["integrity"]
    assert problems[0].message == ("PostgreSQL constraint check: constraint subject_id_short on subjects "
                                   "is not validated")
