"""Examiner reviews: stored only through their sealed write, checked by `audit verify`."""

from __future__ import annotations

import pytest

from gallery.errors import GalleryError
from gallery.sealed import add_review_sealed, save_query_sealed
from gallery.verify import verify_gallery


@pytest.fixture
def query(gal):
    uid = save_query_sealed(gal, actor="officer", details={}, input_hashes=["f" * 64], mode="fusion",
                            inputs=[{"sha256": "f" * 64}],
                            candidates=[{"rank": r, "score": 0.9 - r / 10, "subject_external_id": f"S-{r}"}
                                        for r in (1, 2, 3)])
    return gal, uid


def test_reviews_are_stored_in_order_and_checked(query):
    gal, uid = query
    first = add_review_sealed(gal, "ann", uid, 2, "lead", "Ann Examiner", note="ears match")
    add_review_sealed(gal, "bob", uid, 2, "lead", "Bob Verifier", verifies_uid=first)
    reviews = gal.repository().reviews_of(uid)
    assert [(r.candidate_rank, r.decision, r.examiner, r.verifies_uid) for r in reviews] == \
        [(2, "lead", "Ann Examiner", None), (2, "lead", "Bob Verifier", first)]
    assert reviews[0].note == "ears match" and verify_gallery(gal).ok
    with pytest.raises(GalleryError, match="no candidate at rank 9"):
        add_review_sealed(gal, "ann", uid, 9, "lead", "Ann")
    with pytest.raises(GalleryError, match="decision must be one of"):
        add_review_sealed(gal, "ann", uid, 1, "guilty", "Ann")
    with pytest.raises(GalleryError, match="no stored query"):
        add_review_sealed(gal, "ann", "nope", 1, "lead", "Ann")
    assert len(gal.repository().reviews_of(uid)) == 2  # refused reviews left nothing


@pytest.mark.parametrize("statement,problem", [
    ("UPDATE reviews SET decision = 'lead'", "reviews changed since their audit event"),
    ("UPDATE reviews SET note = 'no resemblance'", "reviews changed since their audit event"),
    ("INSERT INTO reviews (review_uid, query_id, candidate_rank, decision, examiner, created_at) "
     "VALUES ('forged', 1, 1, 'lead', 'Eve', '2026-12-01T00:00:00Z')", "reviews stored without an audit event"),
    ("DELETE FROM reviews", "reviews recorded in the audit log are gone"),
])
def test_an_edited_forged_or_deleted_review_is_detected(query, statement, problem, raw_sql):
    gal, uid = query
    add_review_sealed(gal, "ann", uid, 1, "excluded", "Ann")
    raw_sql(gal, statement, bypass_triggers=gal.location.is_postgres)  # past PostgreSQL's append-only triggers
    verdict = verify_gallery(gal)
    assert not verdict.ok and problem in verdict.summary()
