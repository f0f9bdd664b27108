"""`audit verify` on the stored rows: sealed writes (gallery.sealed) and every tamper kind made
behind the tool's back, on a SQLite file or past PostgreSQL's append-only triggers (gallery.verify)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from gallery import audit
from gallery.sealed import enroll_sealed, remove_subject_sealed, save_query_sealed
from gallery.verify import verify_gallery


def _enrollments(face, sha, emb, subjects: list[str], per: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [({"external_id": ext, "name": f"Name {ext}"},
             {"sha256": sha(f"{ext}/{k}"), "original_path": f"/data/{ext}_{k}.jpg", "width": 250, "height": 250,
              "size_bytes": 1000 + k, "source": "test"},
             [face(rng.normal(size=16), emb)])
            for ext in subjects for k in range(per)]


def _query(gal, emb, candidates: list[str]) -> str:
    return save_query_sealed(
        gal, actor="officer", details={"case_id": "C-1"}, input_hashes=["f" * 64],
        mode="fusion", case_id="C-1", operator="officer", params={"top": 3}, embedder=emb,
        inputs=[{"sha256": "f" * 64, "original_path": "/case/sketch.png", "aligned_png": b"png"}],
        candidates=[{"rank": i + 1, "score": 0.9 - i / 10, "subject_external_id": ext, "subject_name": f"Name {ext}",
                     "image_sha256": hashlib.sha256(f"{ext}/0".encode()).hexdigest()}
                    for i, ext in enumerate(candidates)])


@pytest.fixture
def sealed(gal, emb, face, sha):
    """A gallery written only through the sealed writes: 4 subjects of 2 images, one query."""
    outcomes = enroll_sealed(gal, _enrollments(face, sha, emb, ["A-1", "A-2", "A-3", "A-4"]), "officer")
    assert len(outcomes) == 8
    uid = _query(gal, emb, ["A-1", "A-2", "A-3"])
    return gal, uid


def _in_dialect(gal, statement):
    """A statement, or the one of the gallery's dialect from ``{"sqlite": ..., "postgresql": ...}``."""
    return statement[gal.location.dialect] if isinstance(statement, dict) else statement


def test_sealed_writes_verify_and_a_removal_keeps_them_verified(sealed):
    gal, uid = sealed
    verdict = verify_gallery(gal)
    assert verdict.ok, verdict.summary()
    assert "match their sealed audit events" in verdict.summary() and not verdict.notes
    remove_subject_sealed(gal, "A-2", "officer")  # unlinks a candidate of the query: re-sealed
    assert verify_gallery(gal).ok, verify_gallery(gal).summary()
    assert "A-2" not in audit.export_events(gal, "jsonl")  # no readable id of a removed person


TAMPERS = {
    "candidate subject edited": (["UPDATE query_candidates SET subject_external_id='A-4' WHERE rank=1"],
                                 "1 queries changed"),
    "candidate score edited": (["UPDATE query_candidates SET score=0.99 WHERE rank=2"], "1 queries changed"),
    "query parameter edited": (["UPDATE queries SET params='{\"top\":1}'"], "1 queries changed"),
    "query input edited": (["UPDATE query_inputs SET sha256='" + "e" * 64 + "'"], "1 queries changed"),
    "candidate deleted": (["DELETE FROM query_candidates WHERE rank=3"], "1 queries changed"),
    "model checksum edited": (["UPDATE embedders SET weights_sha256='" + "b" * 64 + "'"], "1 queries changed"),
    "subject renamed": (["UPDATE subjects SET name='Someone Else' WHERE external_id='A-1'"], "1 subjects changed"),
    "subject id edited": (["UPDATE subjects SET external_id='Z-9' WHERE external_id='A-1'"], "subjects stored without"),
    "image moved to another subject": (
        ["UPDATE images SET subject_id=(SELECT id FROM subjects WHERE external_id='A-4') WHERE id=1"],
        "1 images changed"),
    "image path edited": (["UPDATE images SET original_path='/elsewhere.jpg' WHERE id=2"], "1 images changed"),
    "vector edited": ([{"sqlite": "UPDATE embeddings SET vector=zeroblob(64) WHERE id=3",
                        "postgresql": "UPDATE embeddings SET vector=decode(repeat('00', 64), 'hex') WHERE id=3"}],
                      "1 images changed"),
    "image deleted": (["DELETE FROM images WHERE id=4"], "gone without a removal event"),
    "query deleted": (["DELETE FROM queries"], "1 queries recorded in the audit log are gone"),
    "image inserted": (["INSERT INTO images (subject_id, sha256, n_faces, enrolled_at) VALUES "
                        "(1, '" + "d" * 64 + "', 0, '2024-01-01T00:00:00.000000Z')"], "1 images stored without"),
    "query inserted": (["INSERT INTO queries (query_uid, created_at) VALUES ('forged', '2024-01-01T00:00:00.000000Z')"],
                       "1 queries stored without"),
    "every audit row deleted, triggers dropped": (
        [{"sqlite": "DROP TRIGGER audit_events_no_delete",
          "postgresql": "DROP TRIGGER audit_events_no_delete ON audit_events"},
         "DELETE FROM audit_events", "DELETE FROM gallery_meta WHERE key='audit_head'"],
        "8 images stored without an audit event"),
    "triggers dropped": ([{"sqlite": "DROP TRIGGER audit_events_no_update",
                           "postgresql": "DROP TRIGGER audit_events_no_update ON audit_events"}],
                         "append-only triggers are missing"),
}


@pytest.mark.parametrize("kind", sorted(TAMPERS))
def test_every_tamper_kind_is_detected(sealed, kind, raw_sql):
    gal, _ = sealed
    statements, expected = TAMPERS[kind]
    # on PostgreSQL past the append-only triggers, as only a superuser may
    raw_sql(gal, *(_in_dialect(gal, st) for st in statements), bypass_triggers=gal.location.is_postgres)
    verdict = verify_gallery(gal)
    assert not verdict.ok, kind
    assert expected in verdict.summary(), verdict.summary()


def test_rows_written_before_sealing_are_named_not_covered(gal, emb, enroll, repo):
    """A gallery of an older forensics: its images recorded only by the run's `enroll` event,
    its query by an event without a digest. Neither passed nor failed silently: counted."""
    done = enroll(repo, emb, "OLD-1", n_images=2)
    audit.append_event(gal, "officer", "enroll", "2 file(s)", {"enrolled": 2},
                       input_hashes=[r.image_sha256 for r in done])
    uid = repo.save_query(mode="raw", operator="officer")
    audit.append_event(gal, "officer", "query", uid, {"mode": "raw"})
    verdict = verify_gallery(gal)
    assert verdict.ok, verdict.summary()
    assert verdict.notes == ["2 images stored before sealing: not covered",
                             "1 subjects stored before sealing: not covered",
                             "1 queries stored before sealing: not covered"]
    enroll(repo, emb, "NEW-1")  # written behind the audit log's back: not covered by the old events
    assert "1 images stored without an audit event" in verify_gallery(gal).summary()
