"""The append-only, hash-chained audit log (table ``audit_events``).

Each event stores ``prev_hash`` (the previous event's ``hash``; 64 zeros for the first) and

    hash = sha256( prev_hash + canonical_json({ts, actor, action, target, details,
                                               input_hashes, outcome}) )

so changing, removing or moving any event breaks the chain. The database adds two guards:
triggers refuse UPDATE and DELETE on the table, and ``prev_hash`` is UNIQUE (the chain cannot
fork, even with concurrent writers). The newest event's id and hash are also kept in
``gallery_meta["audit_head"]``, so a truncated tail is noticed too. Someone able to rewrite the
whole file can still rebuild a consistent chain: record :attr:`VerifyResult.head_hash`
elsewhere (reports print it) to anchor the log.

``verify_chain`` reports what was done and to which event: ``"edited"`` (contents differ from
the hash, or an event was re-hashed), ``"deleted"``, ``"reordered"``, ``"renumbered"``,
``"inserted"`` (events past the recorded head).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, NamedTuple, Optional, Sequence, Union

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import AuditError
from .models import AuditEvent, GalleryMeta
from .transaction import Source, check_source, read_transaction, write_transaction
from .util import canonical_json, iso_utc, spreadsheet_safe

#: ``prev_hash`` of the first event.
GENESIS = "0" * 64
#: The event fields covered by the hash, in the canonical JSON object.
HASHED_FIELDS = ("ts", "actor", "action", "target", "details", "input_hashes", "outcome")
#: ``gallery_meta`` key holding ``{"id", "hash"}`` of the newest event.
HEAD_KEY = "audit_head"
#: Columns of an export, in order.
EXPORT_FIELDS = ("id",) + HASHED_FIELDS + ("prev_hash", "hash")


@dataclass(frozen=True)
class AuditRecord:
    """One audit event as stored: ``details`` decoded to a dict, ``input_hashes`` to a list."""

    id: int
    ts: str
    actor: str
    action: str
    target: Optional[str]
    details: dict[str, Any]
    input_hashes: list[str]
    outcome: str
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain dict with the :data:`EXPORT_FIELDS` keys."""
        return {k: getattr(self, k) for k in EXPORT_FIELDS}


class ChainProblem(NamedTuple):
    """A break in the chain: the event id concerned, what happened and an explanation."""

    event_id: int
    what: str
    detail: str


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_chain`: ``ok`` when no problem was found; ``n_events`` checked;
    ``head_hash`` the hash of the newest event (anchor it elsewhere); ``problems`` found."""

    ok: bool
    n_events: int
    head_hash: str
    problems: list[ChainProblem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """One line per problem, or a line saying the chain is intact."""
        if self.ok:
            return f"audit log intact: {self.n_events} events, head {self.head_hash[:16]}…"
        return "\n".join(f"event #{p.event_id}: {p.what}: {p.detail}" for p in self.problems)


def event_payload(
    ts: str,
    actor: str,
    action: str,
    target: Optional[str],
    details: Any,
    input_hashes: Sequence[str],
    outcome: str,
) -> str:
    """The canonical JSON text of an event's hashed fields."""
    return canonical_json(
        {
            "ts": ts,
            "actor": actor,
            "action": action,
            "target": target,
            "details": details,
            "input_hashes": list(input_hashes),
            "outcome": outcome,
        }
    )


def compute_hash(prev_hash: str, payload: str) -> str:
    """``sha256(prev_hash + payload)`` as 64 hex characters (UTF-8)."""
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


def _record(e: AuditEvent) -> AuditRecord:
    return AuditRecord(
        id=e.id,
        ts=e.ts,
        actor=e.actor,
        action=e.action,
        target=e.target,
        details=json.loads(e.details),
        input_hashes=json.loads(e.input_hashes),
        outcome=e.outcome,
        prev_hash=e.prev_hash,
        hash=e.hash,
    )


def append_event(
    source: Source,
    actor: str,
    action: str,
    target: Optional[str] = None,
    details: Optional[dict[str, Any]] = None,
    input_hashes: Optional[Iterable[str]] = None,
    outcome: str = "ok",
    *,
    ts: Optional[str] = None,
) -> AuditRecord:
    """Append one event to the chain and return it.

    ``source`` is a Gallery (own transaction) or a Session (the event commits or rolls back with
    the caller's transaction, e.g. together with the write it records: see
    :func:`gallery.transaction.write_transaction`). ``details`` must be
    a JSON object (numpy values are converted); ``input_hashes`` the SHA-256s of the inputs.
    """
    if not actor or not action:
        raise AuditError("an audit event needs an actor and an action")
    details = {} if details is None else details
    if not isinstance(details, dict):
        raise AuditError("audit details must be a JSON object (dict)")
    hashes = [str(h) for h in (input_hashes or [])]
    details_text = canonical_json(details)
    ts = iso_utc() if ts is None else ts
    with write_transaction(check_source(source, "append_event")) as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
        prev = GENESIS if last is None else last.hash
        new_id = 1 if last is None else last.id + 1
        payload = event_payload(
            ts, actor, action, target, json.loads(details_text), hashes, outcome
        )
        ev = AuditEvent(
            id=new_id,
            ts=ts,
            actor=actor,
            action=action,
            target=target,
            details=details_text,
            input_hashes=canonical_json(hashes),
            outcome=outcome,
            prev_hash=prev,
            hash=compute_hash(prev, payload),
        )
        s.add(ev)
        s.merge(GalleryMeta(key=HEAD_KEY, value={"id": new_id, "hash": ev.hash}))
        s.flush()
        return _record(ev)


def iter_events(source: Source, since_id: int = 0) -> Iterator[AuditRecord]:
    """Events with id > ``since_id`` in id order (read in one transaction)."""
    with read_transaction(check_source(source, "iter_events")) as s:
        stmt = select(AuditEvent).where(AuditEvent.id > since_id).order_by(AuditEvent.id)
        for e in s.scalars(stmt.execution_options(yield_per=2000)):
            yield _record(e)


def _raw_rows(s: Session) -> list[AuditEvent]:
    return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _recompute(e: AuditEvent) -> Optional[str]:
    try:
        payload = event_payload(
            e.ts,
            e.actor,
            e.action,
            e.target,
            json.loads(e.details),
            json.loads(e.input_hashes),
            e.outcome,
        )
    except (TypeError, ValueError):
        return None
    return compute_hash(e.prev_hash, payload)


def _span(lo: int, hi: int) -> str:
    return f"#{lo}" if lo == hi else f"#{lo}..#{hi}"


class _ChainCheck:
    """The checks of :func:`verify_chain` on the stored rows (in id order), each a named step
    adding to ``problems``; ``edited`` holds the positions already reported as edited."""

    def __init__(self, rows: list[AuditEvent]) -> None:
        self.rows = rows
        self.by_hash = {r.hash: i for i, r in enumerate(rows)}
        self.by_prev = {r.prev_hash: i for i, r in enumerate(rows)}
        self.edited: set[int] = set()
        self.problems: list[ChainProblem] = []

    def _add(self, event_id: int, what: str, detail: str) -> None:
        self.problems.append(ChainProblem(event_id, what, detail))

    def contents(self) -> None:
        """Events whose contents no longer match their hash."""
        for i, r in enumerate(self.rows):
            if _recompute(r) != r.hash:
                self.edited.add(i)
                self._add(r.id, "edited", "the event's contents do not match its hash")

    def links(self) -> list[int]:
        """Each event against the one stored before it; returns the positions of events whose
        recorded predecessor exists elsewhere in the table (moved: see :meth:`order`)."""
        moved: list[int] = []
        for i, r in enumerate(self.rows):
            expected_prev = GENESIS if i == 0 else self.rows[i - 1].hash
            if r.prev_hash == expected_prev:
                self._numbering(i)
            elif r.prev_hash == GENESIS or r.prev_hash in self.by_hash:
                moved.append(i)
            else:
                self._lost_predecessor(i)
        return moved

    def _numbering(self, i: int) -> None:
        r = self.rows[i]
        expected_id = 1 if i == 0 else self.rows[i - 1].id + 1
        if r.id != expected_id:
            self._add(r.id, "renumbered",
                      f"the chain is intact here but the sequence number should be {expected_id}")

    def _lost_predecessor(self, i: int) -> None:
        """The predecessor event ``i`` recorded exists nowhere: deleted, or edited and re-hashed."""
        r = self.rows[i]
        if i == 0:
            if r.id > 2:
                missing = f"events #1..#{r.id - 1} are"
            elif r.id == 2:
                missing = "event #1 is"
            else:
                missing = "events before it are"
            self._add(1 if r.id > 1 else r.id, "deleted",
                      f"{missing} missing (the first stored event does not start the chain)")
        elif r.id - self.rows[i - 1].id > 1:
            lo = self.rows[i - 1].id + 1
            self._add(lo, "deleted", f"event(s) {_span(lo, r.id - 1)} are missing from the chain")
        elif i - 1 not in self.edited:
            self.edited.add(i - 1)
            self._add(self.rows[i - 1].id, "edited",
                      f"the event was changed and re-hashed (event #{r.id} recorded a different "
                      "hash for it), or events after it were deleted and the rest renumbered")

    def order(self, candidates: list[int]) -> None:
        """Of the events linked elsewhere, those whose successor is not stored next were moved."""
        if not candidates:
            return
        n = len(self.rows)
        moved = [i for i in candidates
                 if self.by_prev.get(self.rows[i].hash) != (i + 1 if i + 1 < n else None)]
        for i in moved or candidates:
            r = self.rows[i]
            j = self.by_hash.get(r.prev_hash)
            after = "the start of the log" if j is None else f"event #{self.rows[j].id}"
            self._add(r.id, "reordered",
                      f"the event is intact but belongs after {after}, not where it is stored")

    def head(self, head: Any) -> None:
        """The newest event against the head recorded in ``gallery_meta``."""
        rows = self.rows
        if not (isinstance(head, dict) and head.get("hash")):
            if rows:
                self._add(rows[-1].id, "edited", "the recorded head of the log is missing")
            return
        head_id, head_hash = int(head.get("id", 0)), head["hash"]
        if not rows:
            self._add(1, "deleted", f"all {head_id} events of the log are missing")
        elif rows[-1].hash == head_hash:
            return
        elif head_hash in self.by_hash:
            reported = {p.event_id for p in self.problems}
            for r in rows[self.by_hash[head_hash] + 1:]:
                if r.id not in reported:
                    self._add(r.id, "inserted", "the event is newer than the recorded head")
        elif head_id > rows[-1].id:
            lo = rows[-1].id + 1
            self._add(lo, "deleted", f"the newest event(s) {_span(lo, head_id)} are missing")
        elif (len(rows) - 1) not in self.edited:
            self._add(rows[-1].id, "edited",
                      "the newest event was changed and re-hashed (its hash differs from the "
                      "recorded head)")


def verify_chain(source: Source) -> VerifyResult:
    """Check every event's hash and link; say which events were edited, deleted or moved.

    * ``edited``: an event's contents no longer match its hash, or it was re-hashed (the next
      event recorded another hash for it).
    * ``deleted``: events are missing (a gap in the chain, before the first event, or after the
      last one when compared with the recorded head).
    * ``reordered``: an event intact but stored at another place in the sequence.
    * ``renumbered``: the chain is intact but the sequence numbers were changed.
    * ``inserted``: events after the recorded head (not written by :func:`append_event`).
    """
    with read_transaction(check_source(source, "verify_chain")) as s:
        rows = _raw_rows(s)
        head_row = s.get(GalleryMeta, HEAD_KEY)
        head = head_row.value if head_row is not None else None
    check = _ChainCheck(rows)
    check.contents()
    check.order(check.links())
    check.head(head)
    problems = sorted(check.problems, key=lambda p: (p.event_id, p.what))
    return VerifyResult(
        ok=not problems,
        n_events=len(rows),
        head_hash=rows[-1].hash if rows else GENESIS,
        problems=problems,
    )


def export_events(
    source: Source,
    fmt: str = "jsonl",
    out: Union[str, Path, IO[str], None] = None,
) -> Union[int, str]:
    """Write all events, in order, as JSON lines (``fmt="jsonl"``) or CSV (``fmt="csv"``).

    ``out`` is a path or a text file; the number of events written is returned. With
    ``out=None`` the text itself is returned. JSONL lines are canonical JSON objects with the
    :data:`EXPORT_FIELDS` keys; in CSV, ``details`` and ``input_hashes`` are canonical JSON text,
    and a text cell that starts like a spreadsheet formula gets an apostrophe in front
    (:func:`gallery.util.spreadsheet_safe`; remove it before re-hashing). Each JSONL event can be
    re-verified as is with :func:`compute_hash`/:func:`event_payload`.
    """
    if fmt not in ("jsonl", "csv"):
        raise AuditError(f"export format must be 'jsonl' or 'csv', not {fmt!r}")
    if out is None:
        buf = io.StringIO()
        export_events(source, fmt, buf)
        return buf.getvalue()
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="utf-8", newline="") as fh:
            return export_events(source, fmt, fh)
    n = 0
    if fmt == "jsonl":
        for rec in iter_events(source):
            out.write(canonical_json(rec.to_dict()) + "\n")
            n += 1
    else:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(EXPORT_FIELDS)
        for rec in iter_events(source):
            d = rec.to_dict()
            d["details"] = canonical_json(d["details"])
            d["input_hashes"] = canonical_json(d["input_hashes"])
            w.writerow([spreadsheet_safe(d[k]) for k in EXPORT_FIELDS])
            n += 1
    return n


__all__ = [
    "AuditRecord",
    "ChainProblem",
    "EXPORT_FIELDS",
    "GENESIS",
    "VerifyResult",
    "append_event",
    "compute_hash",
    "event_payload",
    "export_events",
    "iter_events",
    "verify_chain",
]
