"""Subject filters: checked before anything runs, never an empty search (fast, no ML)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from forensics.errors import ForensicsError
from forensics.filters import SubjectFilters

SUBJECTS = [SimpleNamespace(sex=sex, birth_year=by, meta=meta) for sex, by, meta in [
    ("F", 1980, {"district": "north"}), ("M", 1985, {"district": "south"}), ("F", 1990, {}),
    ("M", None, {"district": "north", "gang": "x"}), (None, 1970, {})]]


def test_no_filter_counts_every_subject():
    assert SubjectFilters().count(SUBJECTS) == 5


def test_each_filter_and_their_combination():
    assert SubjectFilters(sex="f").count(SUBJECTS) == 2  # case-insensitive
    assert SubjectFilters(born_between=(1980, 1990)).count(SUBJECTS) == 3
    assert SubjectFilters(sex="M", where={"district": "north"}).count(SUBJECTS) == 1
    assert SubjectFilters(sex="M", where={"district": "north"})(SUBJECTS[3])


@pytest.mark.parametrize("filters,message", [
    (SubjectFilters(sex="X"), "no subject in the gallery has that recorded sex (recorded values: F, M)"),
    (SubjectFilters(where={"tattoo": "yes"}), "no subject in the gallery has the metadata key 'tattoo'"),
    (SubjectFilters(born_between=(1995, 1980)), "did you mean --born-between 1980 1995"),
    (SubjectFilters(where={"district": ""}), "both the key and the value"),
    (SubjectFilters(sex="F", where={"gang": "x"}),
     "the filters leave no subject of the 5 in the gallery to search (subjects each filter keeps on its own: "
     "--sex F: 2; --where gang=x: 1)"),
])
def test_a_filter_that_keeps_nobody_is_a_clear_error(filters, message):
    with pytest.raises(ForensicsError) as e:
        filters.count(SUBJECTS)
    assert message in str(e.value)


def test_an_unfiltered_search_covers_the_subjects_with_vectors(tmp_path):
    import numpy as np

    from forensics.filters import subjects_searched
    from gallery.db import open_gallery
    from gallery.records import FaceSpec, ImageSpec

    repo = open_gallery(tmp_path / "g.db").repository()
    emb = repo.get_or_create_embedder("test", "1", 4, "0" * 64)
    for sid in ("A", "B"):
        for j in range(2):
            repo.add_enrollment({"external_id": sid, "sex": "F"}, ImageSpec(sha256=f"{sid}{j}".ljust(64, "0")),
                                [FaceSpec([0, 0, 1, 1], None, 1.0, None, np.ones(4), emb)])
    repo.upsert_subject("NO-VECTORS", sex="F")
    assert subjects_searched(repo) == 2 == subjects_searched(repo, SubjectFilters(sex="F"))
