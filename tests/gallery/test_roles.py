"""`gallery roles` on PostgreSQL: connected as a member of each role, what the database allows and
what it refuses; SQLite has no roles."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from forensics.cli import app
from gallery import FaceSpec, GalleryError, audit, open_gallery
from gallery.errors import GalleryPermissionError
from gallery.roles import ADMIN, EXAMINER, create_roles
from gallery.sealed import add_review_sealed, enroll_sealed, remove_subject_sealed, save_query_sealed
from gallery.verify import verify_gallery

DIM = 8


def _enrollment(emb, k: int):
    return ({"external_id": f"S{k}"}, {"sha256": f"{k:064x}"},
            [FaceSpec(box=[1, 2, 30, 40], landmarks=None, det_score=0.9, chip_png=b"chip",
                      vector=np.random.default_rng(k).normal(size=DIM), embedder=emb)])


@pytest.fixture
def shared_gallery(pg_url):
    """A PostgreSQL gallery with two subjects and a stored, reviewed query, its roles created; the
    owner's URL and the query's id."""
    with open_gallery(pg_url) as g:
        emb = g.repository().get_or_create_embedder("test-embedder", "1", DIM, "c" * 64)
        enroll_sealed(g, [_enrollment(emb, 1), _enrollment(emb, 2)], actor="owner")
        uid = save_query_sealed(g, "owner", {}, ["a" * 64], mode="sketch", inputs=[{"position": 0, "sha256": "a" * 64}],
                                candidates=[{"rank": 1, "subject_external_id": "S1", "score": 0.9}])
        add_review_sealed(g, actor="owner", query_uid=uid, candidate_rank=1, decision="lead", examiner="O. Wner")
        grants = create_roles(g)
    assert [r.role for r in grants] == [ADMIN, EXAMINER]
    return pg_url, uid


def test_an_examiner_can_search_query_and_review_but_not_enroll_remove_or_alter(shared_gallery, login_as):
    owner, uid = shared_gallery
    with open_gallery(login_as(owner, EXAMINER), create=False) as g:
        repo = g.repository()
        assert repo.count_subjects() == 2 and repo.get_query(uid) is not None
        audit.append_event(g, "examiner", "search")
        save_query_sealed(g, "examiner", {}, ["b" * 64], mode="sketch", inputs=[{"position": 0, "sha256": "b" * 64}],
                          candidates=[{"rank": 1, "subject_external_id": "S2", "score": 0.8}])
        add_review_sealed(g, actor="examiner", query_uid=uid, candidate_rank=1, decision="lead", examiner="E. Xam")
        emb = repo.gallery_embedder()
        refused = {
            "enroll": lambda: enroll_sealed(g, [_enrollment(emb.id, 3)], actor="examiner"),
            "remove": lambda: remove_subject_sealed(g, "S1", actor="examiner"),
            "alter a subject": lambda: _sql(g, "UPDATE subjects SET name = 'x'"),
            "delete an image": lambda: _sql(g, "DELETE FROM images"),
            "another meta row": lambda: g.set_meta("index_kind", {"kind": "ivf"}),
        }
        for what, attempt in refused.items():
            with pytest.raises(GalleryPermissionError, match="permission denied|row-level security"):
                attempt()
        assert verify_gallery(g).ok
        assert repo.count_images() == 2


def test_an_admin_enrolls_and_removes_but_cannot_rewrite_the_audit_log(shared_gallery, login_as):
    owner, uid = shared_gallery
    with open_gallery(login_as(owner, ADMIN), create=False) as g:
        emb = g.repository().gallery_embedder()
        enroll_sealed(g, [_enrollment(emb.id, 3)], actor="admin")
        remove_subject_sealed(g, "S2", actor="admin")
        g.set_meta("index_kind", {"kind": "flat", "nprobe": None})
        for statement in ("DELETE FROM audit_events", "UPDATE queries SET operator = 'x'", "DELETE FROM reviews"):
            with pytest.raises(DBAPIError, match="append-only"):
                _sql(g, statement)
        with pytest.raises(GalleryPermissionError, match="must be owner"):
            _sql(g, "DROP TRIGGER audit_events_no_delete ON audit_events")
        assert verify_gallery(g).ok
        assert g.repository().count_subjects() == 2


def test_roles_can_be_granted_again(shared_gallery):
    owner, _ = shared_gallery
    with open_gallery(owner) as g:
        assert [r.role for r in create_roles(g)] == [ADMIN, EXAMINER]


def test_the_cli_creates_roles_on_postgresql_and_refuses_on_sqlite(shared_gallery, login_as, tmp_path):
    owner, _ = shared_gallery
    runner = CliRunner()
    res = runner.invoke(app, ["gallery", "roles", "--db", owner])
    assert res.exit_code == 0 and EXAMINER in res.output and ADMIN in res.output, res.output
    res = runner.invoke(app, ["gallery", "remove", "S1", "--yes", "--db", login_as(owner, EXAMINER)])
    assert res.exit_code == 2 and "permission denied" in res.output, res.output
    res = runner.invoke(app, ["gallery", "roles", "--db", str(tmp_path / "g.db")])
    assert res.exit_code == 2 and "roles are a PostgreSQL gallery's" in res.output


def test_sqlite_has_no_roles(tmp_path):
    with open_gallery(tmp_path / "g.db") as g, pytest.raises(GalleryError, match="SQLite file"):
        create_roles(g)


def _sql(g, statement: str) -> None:
    with g.engine.begin() as c:
        c.execute(text(statement))


def test_the_vector_spaces_under_each_role(pg_url, login_as):
    """The admin enrolls into a new gallery (the plain space's HNSW index is made for it, though it
    does not own the table) and keeps the whitened space current; the examiner searches both, the
    faces a space still lacks from memory (it may not store them), and where there is no space to
    search gets a clear error naming what an administrator runs."""
    from forensics.errors import ForensicsError
    from forensics.stores import open_indexes
    from forensics.whitening import fit_whitening

    whitening = fit_whitening(np.random.default_rng(0).normal(size=(50, DIM)), "test-embedder@1/8")
    with open_gallery(pg_url) as g:
        emb = g.repository().get_or_create_embedder("test-embedder", "1", DIM, "c" * 64)
        create_roles(g)
    with open_gallery(login_as(pg_url, ADMIN), create=False) as g:
        enroll_sealed(g, [_enrollment(emb.id, k) for k in range(1, 5)], actor="admin")
        open_indexes(g).refresh(whitening)  # what `forensics enroll` does at its end
        assert open_indexes(g).rebuild("hnsw", whitening=whitening).ntotal == 4  # spaces dropped and made again
        enroll_sealed(g, [_enrollment(emb.id, 5)], actor="admin")  # the whitened space is now behind
    examiner = login_as(pg_url, EXAMINER)
    with open_gallery(examiner, create=False) as g:
        indexes = open_indexes(g)
        plain = indexes.plain()
        q = np.random.default_rng(1).normal(size=(1, DIM))
        _, ids = plain.search(q, 3)
        assert plain.ntotal == 5 and ids.shape == (1, 3)
        # the face enrolled since the last refresh is searched from memory, beside the stored four
        white = indexes.whitened(whitening)
        assert (white.stored, white.ntotal) == (4, 5)
        every = white.ids()
        qw = whitening.apply(q)  # a probe in the sketch search space
        scores, found = white.search(qw, 5)
        exact = whitening.apply(g.repository().iter_embeddings()[1]) @ qw[0]
        assert sorted(found[0].tolist()) == every.tolist()
        assert scores[0] == pytest.approx(np.sort(exact)[::-1], abs=1e-5)
        assert white.contains(every).all() and white.reconstruct(every).shape == (5, DIM)
    with open_gallery(pg_url) as g:  # the owner drops the whitened space: nothing to search from
        open_indexes(g).rebuild("hnsw")
    with open_gallery(examiner, create=False) as g:
        with pytest.raises(ForensicsError, match="administrator runs `forensics gallery rebuild-index`"):
            open_indexes(g).whitened(whitening)
