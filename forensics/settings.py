"""A gallery's own settings: kept in its database (`gallery_meta`), so every workstation and copy
of the gallery behaves alike; each change is sealed in the audit log with who, when, the old
and the new value (`gallery.sealed.change_setting_sealed`).

| setting                          | key                       | default | set by                                   |
|----------------------------------|---------------------------|---------|------------------------------------------|
| round-trip vectors at enrollment | `roundtrip_at_enrollment` | off     | `gallery init --roundtrip`, `gallery settings --roundtrip/--no-roundtrip` |

Round-trip vectors at enrollment: `forensics enroll` computes the round-trip vectors
(`forensics.roundtrip`) of the faces it enrolled, in the sketch search space, once their rows are
committed, so a `--mode roundtrip` query never waits for them (`forensics.enroll`). Off, they are
computed by `forensics gallery roundtrip` or by the first round-trip query.
"""

from __future__ import annotations

from dataclasses import dataclass

from gallery.db import Gallery
from gallery.sealed import change_setting_sealed

from forensics.errors import ForensicsError

ROUNDTRIP_AT_ENROLLMENT = "roundtrip_at_enrollment"


@dataclass(frozen=True)
class GallerySettings:
    """The settings of one gallery, as stored (each at its default where never set)."""

    roundtrip_at_enrollment: bool = False

    def describe(self) -> list[tuple[str, str]]:
        """(setting, value) rows for people."""
        return [("round-trip vectors at enrollment", "on" if self.roundtrip_at_enrollment else "off")]


@dataclass(frozen=True)
class SettingChange:
    """One setting as it was and as it is now (`changed` False: it already had that value)."""

    key: str
    old: bool
    new: bool

    @property
    def changed(self) -> bool:
        return self.old != self.new


def read_settings(gallery: Gallery) -> GallerySettings:
    """The gallery's settings; a stored value of the wrong type is an error, never read as a default."""
    value = gallery.get_meta(ROUNDTRIP_AT_ENROLLMENT, GallerySettings.roundtrip_at_enrollment)
    if not isinstance(value, bool):
        raise ForensicsError(f"the gallery's setting {ROUNDTRIP_AT_ENROLLMENT} holds {value!r}, not true or false: "
                             "set it again with `forensics gallery settings --roundtrip` or `--no-roundtrip`")
    return GallerySettings(roundtrip_at_enrollment=value)


def set_roundtrip_at_enrollment(gallery: Gallery, on: bool, actor: str) -> SettingChange:
    """Turn the round-trip vectors at enrollment on or off; audited when it changes."""
    old = change_setting_sealed(gallery, ROUNDTRIP_AT_ENROLLMENT, bool(on), actor,
                                default=GallerySettings.roundtrip_at_enrollment)
    return SettingChange(ROUNDTRIP_AT_ENROLLMENT, old, bool(on))
