"""Intake: each input file read and hashed (SHA-256) before anything else is done with it.

This is the part of the pipeline that stays in the main process when the rest (decoding,
detection, alignment, embedding) runs in worker processes (`forensics.parallel`): it needs no
PyTorch, and it is where duplicates are recognised, from the hash alone, before any work is
spent on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from forensics.errors import InputImageError
from forensics.images import read_image_bytes, sha256_bytes


@dataclass
class Skipped:
    """A file passed over because its SHA-256 is already known (a duplicate)."""

    path: Path
    sha256: str


@dataclass
class PipelineFailure:
    """A file that could not be turned into an embedding, and why."""

    path: Path
    error: InputImageError
    sha256: str | None = None


@dataclass
class PendingImage:
    """A file read and hashed at intake, waiting to be decoded, detected and embedded."""

    index: int  # position in its batch
    path: Path
    data: bytes
    sha256: str


def chunks(paths: Iterable[Path], size: int) -> Iterator[list[Path]]:
    batch: list[Path] = []
    for p in paths:
        batch.append(Path(p))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def intake(paths: list[Path], known: Callable[[list[str]], set[str]] | None = None, seen: set[str] | None = None,
           ) -> tuple[list[PipelineFailure | Skipped | None], list[PendingImage]]:
    """Read and hash a batch of files.

    Returns one slot per path (a `PipelineFailure` for a file that cannot be read, a `Skipped`
    for a duplicate, None for a file to process) and the files to process. A file is a duplicate
    when its hash is among those `known(hashes)` returns (e.g. already in the gallery) or already
    in `seen` (files of this run; the set is updated). Without `known` and `seen` nothing is
    skipped (every probe of an evaluation gets its answer, even if two files are the same).
    """
    slots: list[PipelineFailure | Skipped | None] = [None] * len(paths)
    read: list[tuple[int, Path, bytes, str]] = []
    for i, p in enumerate(paths):
        try:
            data = read_image_bytes(p)
        except InputImageError as e:
            slots[i] = PipelineFailure(p, e)
            continue
        read.append((i, p, data, sha256_bytes(data)))
    already = known([sha for *_, sha in read]) if known is not None and read else set()
    pending: list[PendingImage] = []
    for i, p, data, sha in read:
        if sha in already or (seen is not None and sha in seen):
            slots[i] = Skipped(p, sha)
            continue
        if seen is not None:
            seen.add(sha)
        pending.append(PendingImage(i, p, data, sha))
    return slots, pending


def merge(slots: list, pending: list[PendingImage], computed: list) -> list:
    """Put the computed results of `pending` back into their batch's slots."""
    out = list(slots)
    for item, res in zip(pending, computed, strict=True):
        out[item.index] = res
    return out
