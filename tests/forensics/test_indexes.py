"""The owner of the derived indexes (fast, synthetic vectors): paths, kind kept in the database,
rebuild, purge, check."""

from __future__ import annotations

import numpy as np
import pytest

from forensics.errors import ForensicsError
from forensics.faiss_indexes import FaissIndexes
from forensics.whitening import fit_whitening
from gallery.db import open_gallery
from gallery.index import FLAT, IVF, VectorIndex
from gallery.records import FaceSpec, ImageSpec

D = 16
rng = np.random.default_rng(5)


def add(repo, emb, sid: str, n: int = 2):
    for j in range(n):
        repo.add_enrollment({"external_id": sid}, ImageSpec(sha256=f"{sid}-{j}".encode().hex().ljust(64, "0")[:64]),
                            [FaceSpec([0, 0, 1, 1], None, 1.0, None, rng.standard_normal(D), emb)])


@pytest.fixture()
def owner(tmp_path):
    g = open_gallery(tmp_path / "g.db")
    repo = g.repository()
    emb = repo.get_or_create_embedder("test", "1", D, "0" * 64)
    for s in range(40):
        add(repo, emb, f"S{s:02d}")
    return FaissIndexes(g), repo, emb


def whitening():
    return fit_whitening(rng.standard_normal((300, D)), "test@1/16")


def test_paths_sit_beside_the_gallery(owner, tmp_path):
    ix, _, _ = owner
    assert ix.path("plain") == tmp_path / "g.faiss"
    assert ix.path("whitened") == tmp_path / "g.whitened.faiss"
    assert ix.path("roundtrip-raw") == tmp_path / "g.roundtrip-raw.faiss"
    with pytest.raises(ValueError):
        ix.path("other")


def test_the_kind_is_kept_in_the_database_across_rebuilds(owner):
    ix, repo, emb = owner
    assert ix.kind() == (FLAT, None) and ix.plain().kind == FLAT
    ix.rebuild(IVF, nprobe=1)
    assert ix.kind() == (IVF, 1)
    add(repo, emb, "NEW")  # the saved index is now stale: the next use rebuilds it, as IVF again
    again = ix.plain()
    assert again.kind == IVF and again.nprobe == 1 and again.ntotal == 82
    assert VectorIndex.load(ix.path("plain")).kind == IVF
    w = whitening()
    assert ix.whitened(w).kind == IVF  # the sketch search space's index too
    ix.rebuild(FLAT)
    assert ix.plain().kind == FLAT and not ix.path("whitened").exists()  # rebuilt as flat on next use
    with pytest.raises(ForensicsError, match="--kind"):
        ix.rebuild("hnsw")


def test_purge_leaves_nothing_of_removed_faces(owner):
    ix, repo, emb = owner
    ix.plain()
    w = whitening()
    ix.whitened(w)
    ids = ix.plain().ids()
    VectorIndex.build(ids, rng.standard_normal((len(ids), D)), emb.key, FLAT, space="roundtrip:x:raw").save(
        ix.path("roundtrip-raw"))
    removed = repo.remove_subject("S03")
    ix.purge(removed.embedding_ids)
    gone = set(removed.embedding_ids)
    assert gone and not gone & set(ix.plain().ids().tolist())
    assert not ix.path("whitened").exists()
    rt = VectorIndex.load(ix.path("roundtrip-raw"))
    assert not gone & set(rt.ids().tolist()) and rt.ntotal == len(ids) - len(gone)


def test_check_reports_what_is_wrong_and_not_what_is_merely_stale(owner):
    ix, repo, emb = owner
    ix.plain()
    w = whitening()
    ix.whitened(w)
    assert ix.check() == {"plain": [], "whitened": []}
    add(repo, emb, "LATE")  # an enrollment that did not update the index (a crash, say)
    found = ix.check()
    assert [p.kind for p in found["plain"]] == ["missing_ids"]
    assert found["whitened"] == []  # stale derived index: brought up to date on its next use
    ix.plain()
    # a derived index that claims the current gallery state but lacks vectors is a problem
    fp = repo.gallery_fingerprint(emb)
    VectorIndex.build([1, 2], rng.standard_normal((2, D)), emb.key, FLAT, gallery_fingerprint=fp,
                      space=w.space_id).save(ix.path("whitened"))
    assert [p.kind for p in ix.check()["whitened"]] == ["missing_ids"]
    ix.path("plain").write_bytes(b"garbage")
    assert [p.kind for p in ix.check()["plain"]] == ["unreadable"]


def test_an_empty_gallery_is_a_clear_error(tmp_path):
    ix = FaissIndexes(open_gallery(tmp_path / "e.db"))
    with pytest.raises(ForensicsError, match="empty"):
        ix.plain()
    assert ix.check() == {}


def test_enrolling_keeps_the_index_kind_set_by_rebuild_index(tmp_path, small_gallery_dir):
    """`gallery rebuild-index --kind ivf`, then `enroll`: the index stays IVF (it was silently
    replaced by a flat one)."""
    from typer.testing import CliRunner

    from forensics.cli import app

    db = tmp_path / "g.db"
    people = sorted(small_gallery_dir.iterdir())
    runner = CliRunner()
    assert runner.invoke(app, ["enroll", str(people[0]), "--db", str(db)]).exit_code == 0
    assert runner.invoke(app, ["gallery", "rebuild-index", "--kind", "ivf", "--db", str(db)]).exit_code == 0
    res = runner.invoke(app, ["enroll", str(people[1]), "--db", str(db)])
    assert res.exit_code == 0, res.output
    index = VectorIndex.load(db.with_suffix(".faiss"))
    assert index.kind == IVF and index.ntotal == 4
    assert runner.invoke(app, ["gallery", "check", "--db", str(db)]).exit_code == 0


def test_an_in_memory_gallery_has_no_index_files_to_check():
    g = open_gallery(":memory:")
    repo = g.repository()
    emb = repo.get_or_create_embedder("test", "1", D, "0" * 64)
    add(repo, emb, "A")
    ix = FaissIndexes(g)
    assert ix.path("plain") is None and ix.check() == {} and ix.plain().ntotal == 2
