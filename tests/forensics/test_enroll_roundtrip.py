"""Round-trip vectors computed at enrollment (forensics/enroll.py, where the gallery's setting says
so), on real CUFS photos, through the CLI, on SQLite (FAISS) and PostgreSQL (pgvector): a
round-trip query afterwards computes nothing; with the setting off the inverter is never loaded;
an enrollment killed after its rows commit leaves a consistent gallery that the next query or
enrollment completes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import forensics.faiss_indexes
import forensics.inversion.invert
import forensics.pg_indexes
from forensics.cli import app
from forensics.datasets import read_manifest
from forensics.errors import ForensicsError
from gallery.db import open_gallery

runner = CliRunner()
STORES = (forensics.faiss_indexes, forensics.pg_indexes)


def run(*args, code=0):
    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == code, res.output
    return res


def said(res) -> str:
    """The output on one line (rich wraps long lines at the terminal's width)."""
    return " ".join(res.output.split())


@pytest.fixture(scope="module")
def cufs(data_dir) -> tuple[list, object]:
    """Three CUFS test photos (subject: the file name) and the sketch of the first."""
    rows = [r for r in read_manifest(data_dir, "cufs") if r["split"] == "test"]
    photos = [r["path"] for r in rows if r["kind"] == "photo"][:3]
    sketch = next(r["path"] for r in rows if r["kind"] == "sketch" and r["identity"] == photos[0].stem)
    return photos, sketch


def computing_fails(monkeypatch, error: BaseException) -> None:
    """From now on, computing any round-trip vector raises `error` (in either store)."""
    def fail(*args, **kwargs):
        raise error

    for store in STORES:
        monkeypatch.setattr(store, "roundtrip_vectors", fail)


def roundtrip_query(db, sketch) -> dict:
    return json.loads(run("query", sketch, "--mode", "roundtrip", "--top", 3, "--json", "--db", db).stdout)


def counts(db) -> tuple[int, int]:
    with open_gallery(db, create=False) as g:
        repo = g.repository()
        return repo.count_images(), repo.count_embeddings()


@pytest.mark.slow
def test_with_the_setting_on_a_roundtrip_query_after_enrollment_computes_nothing(gallery_url, cufs, monkeypatch):
    photos, sketch = cufs
    run("gallery", "init", "--roundtrip", "--db", gallery_url)
    res = run("enroll", *photos, "--subject-from", "stem", "--db", gallery_url, "--workers", 0)
    assert "round-trip vectors computed for 3 face(s)" in said(res) and "(3 in the index)" in said(res)
    computing_fails(monkeypatch, AssertionError("a round-trip vector was computed at query time"))
    out = roundtrip_query(gallery_url, sketch)
    assert {c["subject_id"] for c in out["candidates"]} == {p.stem for p in photos}
    assert all(len(c["detail"]["per_probe"]) == 3 for c in out["candidates"])  # raw, inverted, round trip


def test_with_the_setting_off_enrollment_never_loads_the_inverter(tmp_path, cufs, monkeypatch):
    photos, _ = cufs
    db = tmp_path / "g.db"

    def no_inverter(*args, **kwargs):
        raise AssertionError("the inverter was loaded")

    monkeypatch.setattr(forensics.inversion.invert, "load_inverter", no_inverter)
    res = run("enroll", *photos[:2], "--subject-from", "stem", "--db", db, "--workers", 0)
    assert "enrolled 2" in res.output and "round-trip" not in res.output
    assert not db.with_suffix(".roundtrip.faiss").exists()


@pytest.mark.slow
def test_an_enrollment_killed_while_computing_leaves_a_gallery_the_next_query_or_enrollment_completes(
        gallery_url, cufs, monkeypatch):
    """The vectors are derived data computed after the rows commit: a failure or a kill then keeps
    the enrolled faces and a consistent gallery (audit and index checks pass), and whatever is
    missing is computed by the next round-trip query or enrollment (even one with nothing new)."""
    photos, sketch = cufs
    run("gallery", "init", "--roundtrip", "--db", gallery_url)
    with monkeypatch.context() as m:
        computing_fails(m, ForensicsError("the inverter ran out of memory"))
        res = run("enroll", *photos[:2], "--subject-from", "stem", "--db", gallery_url, "--workers", 0, code=2)
    assert "2 image(s) were enrolled, but the round-trip vectors could not be computed: the inverter ran out of " \
           "memory. `forensics gallery roundtrip`, the next enrollment or the next round-trip query computes " \
           "the missing ones" in said(res)
    assert counts(gallery_url) == (2, 2)
    assert "intact" in run("audit", "verify", "--db", gallery_url).output
    run("gallery", "check", "--db", gallery_url)
    assert len(roundtrip_query(gallery_url, sketch)["candidates"]) == 2  # the query computes the two missing

    with monkeypatch.context() as m:
        computing_fails(m, KeyboardInterrupt())  # killed (Ctrl-C) while computing
        res = run("enroll", photos[2], "--subject-from", "stem", "--db", gallery_url, "--workers", 0, code=130)
    assert "everything committed before the interruption is kept" in said(res)
    assert counts(gallery_url) == (3, 3)
    assert "intact" in run("audit", "verify", "--db", gallery_url).output
    run("gallery", "check", "--db", gallery_url)
    res = run("enroll", photos[2], "--subject-from", "stem", "--db", gallery_url, "--workers", 0)
    assert "duplicates skipped 1" in said(res) and "round-trip vectors computed for 1 face(s)" in said(res)
    assert "(3 in the index)" in said(res)
    computing_fails(monkeypatch, AssertionError("a round-trip vector was computed at query time"))
    assert len(roundtrip_query(gallery_url, sketch)["candidates"]) == 3
