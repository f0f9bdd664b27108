"""Turning a config file's section into a dataclass's keyword arguments, refusing unknown keys
(a misspelt option must fail loudly, not train with the default)."""

from __future__ import annotations

from dataclasses import fields


def known_options(cls, d: dict | None, what: str) -> dict:
    """A copy of `d` (None: empty) after checking that every key is a field of dataclass `cls`."""
    d = dict(d or {})
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} options: {sorted(unknown)}")
    return d
