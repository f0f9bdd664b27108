"""gallery/location.py: what --db names, and that a password never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from gallery.errors import GalleryLocationError
from gallery.location import GalleryLocation


@pytest.mark.parametrize("text, host, port, socket_dir", [
    ("postgresql://alice:s3cret@db.example:5433/cases", "db.example", 5433, None),
    ("postgresql+psycopg://alice:s3cret@db.example/cases", "db.example", None, None),
    ("postgresql://alice:s3cret@/cases?host=/run/postgresql", None, None, "/run/postgresql"),
])
def test_postgresql_urls_are_read_and_normalised_to_psycopg(text, host, port, socket_dir):
    loc = GalleryLocation.parse(text)
    assert loc.is_postgres and loc.dialect == "postgresql" and loc.path is None
    assert loc.url.drivername == "postgresql+psycopg"
    assert (loc.url.host, loc.url.port, loc.url.database) == (host, port, "cases")
    assert loc.url.query.get("host") == socket_dir
    assert loc.url.password == "s3cret"  # kept to connect with
    assert "s3cret" not in loc.display() and "s3cret" not in str(loc) and "s3cret" not in repr(loc)
    assert "alice" in loc.display() and "cases" in loc.display()


def test_a_password_given_as_a_query_parameter_is_masked_too():
    loc = GalleryLocation.parse("postgresql://alice@db.example/cases?password=s3cret")
    assert "s3cret" not in loc.display()


def test_file_paths_and_memory():
    assert GalleryLocation.parse("cases.db") == GalleryLocation(path=Path("cases.db"))
    assert GalleryLocation.parse(Path("/srv/g.db")).path == Path("/srv/g.db")
    assert GalleryLocation.parse("~/g.db").path == Path.home() / "g.db"
    mem = GalleryLocation.parse(":memory:")
    assert mem.in_memory and mem.display() == ":memory:" and mem.dialect == "sqlite"


@pytest.mark.parametrize("text, message", [
    ("mysql://u:pw@host/cases", "other databases are not supported"),
    ("sqlite:///cases.db", "a gallery is a file path"),
    ("postgresql+psycopg2://u:pw@host/cases", "other databases are not supported"),
    ("postgresql://u:pw@host/", "names no database"),
    ("", "empty"),
])
def test_other_urls_are_refused_not_taken_as_file_names(text, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GalleryLocationError, match=message) as ei:
        GalleryLocation.parse(text)
    assert "pw" not in str(ei.value)
    assert list(tmp_path.iterdir()) == []  # no folder named after the scheme
