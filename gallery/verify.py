"""``audit verify``: the hash chain, the append-only triggers, and the stored rows against the
seals recorded in the chain (:mod:`gallery.seal`).

What is checked, besides the chain itself (:func:`gallery.audit.verify_chain`):

* the triggers that make ``audit_events`` append-only exist (on PostgreSQL also those of the
  stored queries and reviews);
* every stored image, subject, query and review has the audit event that wrote it, and its digest
  recomputed from the stored rows equals the one recorded there (the newest one: a subject
  changed by a later enrollment, a query re-sealed by a removal);
* every image, subject and query recorded as written is still stored, unless a removal event
  records that it went.

Rows written before sealing existed (by an older forensics) are recorded in the chain without a
digest: they are counted and named "not covered", never passed or failed silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .audit import AuditRecord, VerifyResult, iter_events, verify_chain
from .models import Image, Subject
from .postgres import trigger_names
from .seal import image_digests, query_digests, review_digests, subject_digests, subject_key
from .sealed import ENROLL_BATCH, QUERY, REMOVE_SUBJECT, REMOVED_PREFIX, REVIEW
from .transaction import Source, check_source, read_transaction

#: The triggers that refuse UPDATE and DELETE on ``audit_events`` (migration 0002).
APPEND_ONLY_TRIGGERS = ("audit_events_no_delete", "audit_events_no_update")
#: On PostgreSQL: the triggers refusing UPDATE, DELETE and TRUNCATE on the audit log, the stored
#: queries and the reviews (migrations 0002 and 0003).
PG_APPEND_ONLY_TRIGGERS = tuple(
    f"{table}_no_{what}" for table in ("audit_events", "queries", "query_inputs", "query_candidates", "reviews")
    for what in ("delete", "truncate", "update"))
#: The summary event of an enrollment run (before sealing, the only event recording its images).
ENROLL = "enroll"


@dataclass
class Seals:
    """What the chain says should be stored: the newest digest of each image, subject and query
    (by SHA-256, subject key, query uid); what was written unsealed; what removals took out."""

    images: dict[str, str] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)
    queries: dict[str, str] = field(default_factory=dict)
    reviews: dict[str, str] = field(default_factory=dict)
    unsealed_images: set[str] = field(default_factory=set)
    unsealed_queries: set[str] = field(default_factory=set)

    def read(self, ev: AuditRecord) -> None:
        """Take in one event (in chain order)."""
        d = ev.details
        if ev.action == ENROLL_BATCH:
            self.images.update(d.get("images", {}))
            self.subjects.update(d.get("subjects", {}))
        elif ev.action == ENROLL and "seal" not in d:
            self.unsealed_images.update(ev.input_hashes)
        elif ev.action == QUERY and ev.target:
            if "digest" in d:
                self.queries[ev.target] = d["digest"]
            else:
                self.unsealed_queries.add(ev.target)
        elif ev.action == REVIEW and ev.target:
            self.reviews[ev.target] = d.get("digest", "")
        elif ev.action == REMOVE_SUBJECT:
            self._removal(ev)

    def _removal(self, ev: AuditRecord) -> None:
        for sha in ev.input_hashes:
            self.images.pop(sha, None)
            self.unsealed_images.discard(sha)
        key = (ev.target or "").removeprefix(REMOVED_PREFIX)
        self.subjects.pop(key, None)
        self.queries.update(ev.details.get("queries", {}))


@dataclass
class GalleryVerdict:
    """Outcome of :func:`verify_gallery`: the chain's result, the problems with the stored rows,
    and notes on what the chain does not cover (rows older than sealing)."""

    chain: VerifyResult
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """The chain's summary, then one line per problem and note."""
        lines = [] if self.chain.ok and self.problems else [self.chain.summary()]
        if self.chain.ok and self.problems:
            lines.append(f"audit chain intact ({self.chain.n_events} events) but the gallery does not match it:")
        lines += [f"problem: {p}" for p in self.problems]
        lines += [f"note: {n}" for n in self.notes]
        if self.ok:
            lines.append("stored images, subjects, queries and reviews match their sealed audit events")
        return "\n".join(lines)


def _short(items: Iterable[str], n: int = 3) -> str:
    items = sorted(items)
    shown = ", ".join(x[:16] for x in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _compare(what: str, sealed: dict[str, str], stored: dict[str, str],
             unsealed: Optional[set[str]] = None) -> tuple[list[str], Optional[str]]:
    """Problems between the sealed and the stored digests of one kind of row, and a note on
    the rows written before sealing."""
    unsealed = unsealed or set()
    edited = [k for k, d in stored.items() if k in sealed and sealed[k] != d]
    legacy = [k for k in stored if k not in sealed and k in unsealed]
    orphans = [k for k in stored if k not in sealed and k not in unsealed]
    missing = [k for k in sealed if k not in stored]
    problems = []
    if edited:
        problems.append(f"{len(edited)} {what} changed since their audit event: {_short(edited)}")
    if orphans:
        problems.append(f"{len(orphans)} {what} stored without an audit event: {_short(orphans)}")
    if missing:
        problems.append(f"{len(missing)} {what} recorded in the audit log are gone without a removal "
                        f"event: {_short(missing)}")
    note = f"{len(legacy)} {what} stored before sealing: not covered" if legacy else None
    return problems, note


def _missing_triggers(s: Session) -> list[str]:
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        have, expected = trigger_names(conn), PG_APPEND_ONLY_TRIGGERS
    else:
        have = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='trigger'")}
        expected = APPEND_ONLY_TRIGGERS
    return [t for t in expected if t not in have]


def _subjects_of(s: Session, shas: set[str]) -> set[str]:
    """The keys of the subjects owning images among ``shas`` (enrolled before sealing)."""
    if not shas:
        return set()
    rows = s.execute(select(Subject.external_id, Image.sha256).join(Image, Image.subject_id == Subject.id))
    return {subject_key(ext) for ext, sha in rows if sha in shas}


def verify_gallery(source: Source) -> GalleryVerdict:
    """The chain (:func:`verify_chain`), the append-only triggers, and every stored image,
    subject and query against the digests sealed in the chain (see the module)."""
    seals = Seals()
    with read_transaction(check_source(source, "verify_gallery")) as s:  # one snapshot for all of it
        verdict = GalleryVerdict(verify_chain(s))
        for ev in iter_events(s):
            seals.read(ev)
        missing = _missing_triggers(s)
        stored = (image_digests(s), subject_digests(s), query_digests(s), review_digests(s))
        unsealed_subjects = _subjects_of(s, seals.unsealed_images)
    if missing:
        verdict.problems.append(f"the append-only triggers are missing ({', '.join(missing)}): "
                                "the audit log can be edited")
    for what, sealed, have, unsealed in (
            ("images", seals.images, stored[0], seals.unsealed_images),
            ("subjects", seals.subjects, stored[1], unsealed_subjects),
            ("queries", seals.queries, stored[2], seals.unsealed_queries),
            ("reviews", seals.reviews, stored[3], set())):
        problems, note = _compare(what, sealed, have, unsealed)
        verdict.problems += problems
        if note:
            verdict.notes.append(note)
    return verdict


__all__ = ["APPEND_ONLY_TRIGGERS", "GalleryVerdict", "Seals", "verify_gallery"]
