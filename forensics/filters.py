"""Subject filters of a query (recorded sex, birth years, metadata), checked before anything runs.

A filter that can match nobody is a mistake, not a search: an unknown sex value, a metadata key
no subject has, a reversed year range, or a combination that leaves no subject is a clear error
naming the filters and how many subjects each keeps, never an audited "ok" with an empty list.
`count` is also the number of subjects actually searched, for which the FPIR is stated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from forensics.errors import ForensicsError

PAGE = 900  # ids per page: SQLite's classic limit of 999 parameters in one IN (...)


@dataclass
class SubjectFilters:
    """Metadata filters applied before ranking (None: no filter)."""

    sex: str | None = None
    born_between: tuple[int, int] | None = None
    where: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"sex": self.sex, "born_between": list(self.born_between) if self.born_between else None,
                "where": self.where}

    def active(self) -> bool:
        return bool(self.sex or self.born_between or self.where)

    def describe(self) -> str:
        parts = [f"--sex {self.sex}"] if self.sex else []
        if self.born_between:
            parts.append(f"--born-between {self.born_between[0]} {self.born_between[1]}")
        parts += [f"--where {k}={v}" for k, v in self.where.items()]
        return " ".join(parts) or "no filter"

    # -- one test per filter, and all together -------------------------------------------------

    def _sex_ok(self, s) -> bool:
        return not self.sex or (s.sex or "").strip().lower() == self.sex.strip().lower()

    def _born_ok(self, s) -> bool:
        if not self.born_between:
            return True
        lo, hi = self.born_between
        return s.birth_year is not None and lo <= s.birth_year <= hi

    def _where_ok(self, s, key: str) -> bool:
        return str((s.meta or {}).get(key, "")) == self.where[key]

    def __call__(self, subject) -> bool:
        """True when `subject` (anything with sex, birth_year and meta: a SubjectInfo or the
        `Owner` of an embedding) passes every filter."""
        return self._sex_ok(subject) and self._born_ok(subject) and all(self._where_ok(subject, k) for k in self.where)

    # -- checked against the gallery -----------------------------------------------------------

    def check_shape(self) -> None:
        """Errors that need no gallery: a reversed year range, an empty key or value."""
        if self.born_between and self.born_between[0] > self.born_between[1]:
            lo, hi = self.born_between
            raise ForensicsError(f"--born-between {lo} {hi}: the first year must not be after the second "
                                 f"(did you mean --born-between {hi} {lo}?)")
        for k, v in self.where.items():
            if not k or not v:
                raise ForensicsError(f"--where {k}={v}: both the key and the value must be given (key=value)")
        if self.sex is not None and not self.sex.strip():
            raise ForensicsError("--sex: give a value, e.g. --sex F")

    def count(self, subjects: Iterable) -> int:
        """How many of `subjects` pass; a clear error when a filter, or all of them together, keep
        none: each filter named with the number of subjects it alone keeps."""
        self.check_shape()
        n_total, n_all, kept, sexes, keys = 0, 0, {}, set(), set()
        checks = self._checks()
        for s in subjects:
            n_total += 1
            sexes.add((s.sex or "").strip())
            keys.update((s.meta or {}).keys())
            passed = {name: ok(s) for name, ok in checks.items()}
            for name, ok in passed.items():
                kept[name] = kept.get(name, 0) + ok
            n_all += all(passed.values())
        if not self.active():
            return n_total
        self._refuse_unknown(sexes, keys)
        if n_all == 0:
            counts = "; ".join(f"{name}: {kept.get(name, 0)}" for name in checks)
            raise ForensicsError(f"the filters leave no subject of the {n_total} in the gallery to search "
                                 f"(subjects each filter keeps on its own: {counts}); nothing was searched")
        return n_all

    def _checks(self) -> dict:
        checks = {}
        if self.sex:
            checks[f"--sex {self.sex}"] = self._sex_ok
        if self.born_between:
            checks[f"--born-between {self.born_between[0]} {self.born_between[1]}"] = self._born_ok
        for k, v in self.where.items():
            checks[f"--where {k}={v}"] = lambda s, k=k: self._where_ok(s, k)
        return checks

    def _refuse_unknown(self, sexes: set[str], keys: set[str]) -> None:
        known = sorted(x for x in sexes if x)
        if self.sex and self.sex.strip().lower() not in {x.lower() for x in known}:
            raise ForensicsError(f"--sex {self.sex}: no subject in the gallery has that recorded sex "
                                 f"(recorded values: {', '.join(known) or 'none'})")
        unknown = [k for k in self.where if k not in keys]
        if unknown:
            raise ForensicsError(f"--where {unknown[0]}=...: no subject in the gallery has the metadata key "
                                 f"{unknown[0]!r} (keys: {', '.join(sorted(keys)) or 'none'})")


def subjects_searched(repo, filters: SubjectFilters | None = None) -> int:
    """How many subjects a search covers: those with vectors that the filters keep (a clear error
    when the filters keep none). The FPIR of a candidate is stated for this many. Without filters
    it is one count in the database, not a pass over every subject."""
    if filters is None or not filters.active():
        return repo.count_subjects_with_vectors()
    return filters.count(s for s in all_subjects(repo) if s.n_embeddings)


def all_subjects(repo, page: int = PAGE) -> Iterator:
    """Every subject of the gallery, a page at a time."""
    offset = 0
    while True:
        rows = repo.list_subjects(limit=page, offset=offset)
        yield from rows
        if len(rows) < page:
            return
        offset += page
