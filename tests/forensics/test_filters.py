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
