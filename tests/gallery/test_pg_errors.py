"""A PostgreSQL gallery's server failures (the session's throwaway server): unreachable, a login
or database it does not know, a connection lost mid-command. Each is one line naming the gallery
(password masked) and what to do; a lost transaction leaves nothing half-written and the gallery
works again once the server is back."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from forensics.cli import app
from gallery import GalleryUnavailableError, open_gallery
from gallery.location import GalleryLocation
from gallery.sealed import enroll_sealed
from gallery.verify import verify_gallery

PASSWORD = "s3cret-Pw"


def _with(url: str, **parts) -> str:
    """``url`` with other URL parts (user, database, ...) and a password, as text."""
    loc = GalleryLocation.parse(url)
    return loc.url.set(password=PASSWORD, **parts).render_as_string(hide_password=False)


def _check_message(message: str, *expected: str) -> None:
    assert "\n" not in message and PASSWORD not in message and "***" in message, message
    for words in expected:
        assert words in message, message


@pytest.mark.parametrize("parts, advice", [
    ({"database": "no_such_gallery"}, "check the database name in --db"),
    ({"username": "no_such_login"}, "check the user name and its password"),
])
def test_a_login_or_database_the_server_does_not_know_is_named_with_what_to_do(pg_url, parts, advice):
    with pytest.raises(GalleryUnavailableError) as ei:
        open_gallery(_with(pg_url, **parts))
    _check_message(str(ei.value), "cannot open the PostgreSQL gallery postgresql+psycopg://", advice)


def test_a_server_that_is_not_running_is_named_with_what_to_do(tmp_path):
    with pytest.raises(GalleryUnavailableError) as ei:
        open_gallery(f"postgresql://officer:{PASSWORD}@/gallery?host={tmp_path}")
    _check_message(str(ei.value), "cannot open the PostgreSQL gallery", "that the server is running",
                   "run the command again")


def test_the_cli_prints_one_line_and_exits_2(pg_url):
    res = CliRunner().invoke(app, ["gallery", "list", "--db", _with(pg_url, database="no_such_gallery")])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    _check_message(res.output.strip(), "error: cannot open the PostgreSQL gallery")


def _terminate(pg_url: str, pid: int) -> None:
    """The server ends the backend `pid` (as when it shuts down or restarts)."""
    admin = GalleryLocation.parse(pg_url).url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_lost_mid_transaction_keeps_nothing_of_it_and_the_gallery_works_again(pg_url):
    from gallery.records import FaceSpec

    with open_gallery(_with(pg_url)) as g:
        emb = g.repository().get_or_create_embedder("test", "1", 4, "0" * 64)
        face = FaceSpec([0, 0, 1, 1], None, 1.0, None, [1.0, 0.0, 0.0, 0.0], emb.id)
        with pytest.raises(GalleryUnavailableError) as ei:
            with g.session() as s:
                s.execute(text("INSERT INTO subjects (external_id, meta, created_at) "
                               "VALUES ('HALF', '{}', '2026-01-01T00:00:00.000000Z')"))
                _terminate(pg_url, s.execute(text("SELECT pg_backend_pid()")).scalar_one())
                s.execute(text("SELECT 1"))
        _check_message(str(ei.value), "was lost mid-command", "run the command again")
        assert g.repository().get_subject("HALF") is None  # the next call reconnects
        enroll_sealed(g, [({"external_id": "S1"}, {"sha256": "1" * 64}, [face])], actor="officer")
        assert verify_gallery(g).ok and g.repository().count_images() == 1


@pytest.mark.parametrize("given", ["user", "parameter"])
def test_a_password_in_the_drivers_own_words_is_masked(given):
    from gallery.pg_errors import one_line

    where = (f"postgresql://officer:{PASSWORD}@db.agency.local/forensics" if given == "user"
             else f"postgresql://officer@db.agency.local/forensics?password={PASSWORD}")
    text = one_line(f"could not connect\n\twith {PASSWORD} as given", GalleryLocation.parse(where))
    assert text == "could not connect with *** as given"


def test_a_database_the_server_will_not_let_anyone_write_is_named_with_what_to_do(pg_url):
    open_gallery(pg_url).close()
    admin = GalleryLocation.parse(pg_url).url
    with psycopg.connect(admin.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False),
                         autocommit=True) as con:
        con.execute(f'ALTER DATABASE "{admin.database}" SET default_transaction_read_only = on')
    with open_gallery(_with(pg_url)) as g:
        assert g.repository().count_subjects() == 0  # reading is fine
        with pytest.raises(GalleryUnavailableError) as ei:
            g.set_meta("note", "x")
    _check_message(str(ei.value), "read-only transaction", "give --db the primary server")


def test_a_statement_cancelled_by_the_servers_time_limit_is_not_a_lost_connection(pg_url):
    with open_gallery(_with(pg_url)) as g:
        with pytest.raises(GalleryUnavailableError) as ei, g.session() as s:
            s.execute(text("SET LOCAL statement_timeout = 10"))
            s.execute(text("SELECT pg_sleep(2)"))
        assert g.repository().count_subjects() == 0
    _check_message(str(ei.value), "statement timeout", "statement_timeout")
    assert "lost" not in str(ei.value)
