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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, NamedTuple, Optional, Sequence, Union

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import Gallery
from .errors import AuditError
from .models import AuditEvent, GalleryMeta
from .util import canonical_json, iso_utc

#: ``prev_hash`` of the first event.
GENESIS = "0" * 64
#: The event fields covered by the hash, in the canonical JSON object.
HASHED_FIELDS = ("ts", "actor", "action", "target", "details", "input_hashes", "outcome")
#: ``gallery_meta`` key holding ``{"id", "hash", "count"}`` of the newest event.
HEAD_KEY = "audit_head"
#: Columns of an export, in order.
EXPORT_FIELDS = ("id",) + HASHED_FIELDS + ("prev_hash", "hash")

Source = Union[Session, Gallery]


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


@contextmanager
def _session(source: Source, write: bool = False) -> Iterator[Session]:
    if isinstance(source, Gallery):
        with source.Session() as s:
            with s.begin():
                if write:
                    s.connection(execution_options={"forensics_begin": "BEGIN IMMEDIATE"})
                yield s
    elif isinstance(source, Session):
        if write:
            with source.begin_nested():
                yield source
        else:
            yield source
    else:
        raise TypeError(f"expected a Session or Gallery, not {type(source)}")


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
    the caller's transaction, e.g. together with the enrollment it records). ``details`` must be
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
    with _session(source, write=True) as s:
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
    with _session(source) as s:
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
    with _session(source) as s:
        rows = _raw_rows(s)
        head_row = s.get(GalleryMeta, HEAD_KEY)
        head = head_row.value if head_row is not None else None

    problems: list[ChainProblem] = []
    n = len(rows)
    by_hash = {r.hash: i for i, r in enumerate(rows)}
    by_prev = {r.prev_hash: i for i, r in enumerate(rows)}
    edited: set[int] = set()

    for i, r in enumerate(rows):
        if _recompute(r) != r.hash:
            edited.add(i)
            problems.append(
                ChainProblem(r.id, "edited", "the event's contents do not match its hash")
            )

    candidates: list[int] = []  # rows whose predecessor exists elsewhere in the table
    for i, r in enumerate(rows):
        expected_prev = GENESIS if i == 0 else rows[i - 1].hash
        if r.prev_hash == expected_prev:
            expected_id = 1 if i == 0 else rows[i - 1].id + 1
            if r.id != expected_id:
                problems.append(
                    ChainProblem(
                        r.id,
                        "renumbered",
                        f"the chain is intact here but the sequence number should be {expected_id}",
                    )
                )
            continue
        if r.prev_hash == GENESIS or r.prev_hash in by_hash:
            candidates.append(i)
            continue
        # The predecessor this event recorded exists nowhere.
        if i == 0:
            if r.id > 2:
                missing = f"events #1..#{r.id - 1} are"
            elif r.id == 2:
                missing = "event #1 is"
            else:
                missing = "events before it are"
            problems.append(
                ChainProblem(
                    1 if r.id > 1 else r.id,
                    "deleted",
                    f"{missing} missing (the first stored event does not start the chain)",
                )
            )
        elif r.id - rows[i - 1].id > 1:
            lo, hi = rows[i - 1].id + 1, r.id - 1
            rng = f"#{lo}" if lo == hi else f"#{lo}..#{hi}"
            problems.append(
                ChainProblem(lo, "deleted", f"event(s) {rng} are missing from the chain")
            )
        elif i - 1 not in edited:
            edited.add(i - 1)
            problems.append(
                ChainProblem(
                    rows[i - 1].id,
                    "edited",
                    f"the event was changed and re-hashed (event #{r.id} recorded a different "
                    "hash for it), or events after it were deleted and the rest renumbered",
                )
            )

    if candidates:
        moved = []
        for i in candidates:
            succ = by_prev.get(rows[i].hash)
            stored_next = i + 1 if i + 1 < n else None
            if succ != stored_next:
                moved.append(i)
        for i in moved or candidates:
            r = rows[i]
            j = by_hash.get(r.prev_hash)
            after = "the start of the log" if j is None else f"event #{rows[j].id}"
            problems.append(
                ChainProblem(
                    r.id,
                    "reordered",
                    f"the event is intact but belongs after {after}, not where it is stored",
                )
            )

    if isinstance(head, dict) and head.get("hash"):
        head_id, head_hash = int(head.get("id", 0)), head["hash"]
        last = rows[-1] if rows else None
        if last is None:
            problems.append(
                ChainProblem(1, "deleted", f"all {head_id} events of the log are missing")
            )
        elif last.hash != head_hash:
            if head_hash in by_hash:
                k = by_hash[head_hash]
                reported = {p.event_id for p in problems}
                for r in rows[k + 1 :]:
                    if r.id in reported:
                        continue
                    problems.append(
                        ChainProblem(
                            r.id, "inserted", "the event is newer than the recorded head"
                        )
                    )
            elif head_id > last.id:
                lo = last.id + 1
                rng = f"#{lo}" if lo == head_id else f"#{lo}..#{head_id}"
                problems.append(
                    ChainProblem(lo, "deleted", f"the newest event(s) {rng} are missing")
                )
            elif (len(rows) - 1) not in edited:
                problems.append(
                    ChainProblem(
                        last.id,
                        "edited",
                        "the newest event was changed and re-hashed (its hash differs from the "
                        "recorded head)",
                    )
                )
    elif rows:
        problems.append(
            ChainProblem(rows[-1].id, "edited", "the recorded head of the log is missing")
        )

    problems.sort(key=lambda p: (p.event_id, p.what))
    return VerifyResult(
        ok=not problems,
        n_events=n,
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
    :data:`EXPORT_FIELDS` keys; in CSV, ``details`` and ``input_hashes`` are canonical JSON text.
    Each exported event can be re-verified with :func:`compute_hash`/:func:`event_payload`.
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
            w.writerow([d[k] for k in EXPORT_FIELDS])
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
