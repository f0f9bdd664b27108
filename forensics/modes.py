"""The search modes, declared once: what each one searches with, and whether it needs the inverter.

`forensics query`, `forensics evaluate` and the benchmarks take a mode by name; `probes.build`
turns face records into probe vectors for it and `ranking.rank` scores them, the same way for all.
"""

from __future__ import annotations

from dataclasses import dataclass

from forensics.errors import ForensicsError


@dataclass(frozen=True)
class Mode:
    name: str
    needs_inverter: bool
    help: str


MODES: dict[str, Mode] = {m.name: m for m in (
    Mode("fusion", True, "the sketch as drawn and its synthesized photo (the inverter's photo-like face), "
                         "each moved by the fusion offsets (mean sketch-to-photo shifts fitted on training "
                         "pairs); a subject's score is the weighted mean of the two cosines"),
    Mode("inverted", True, "the synthesized photo only"),
    Mode("raw", False, "the probe as it is (a photo, or a sketch as drawn)"),
    Mode("roundtrip", True, "fusion, plus the synthesized photo against each gallery face as the inverter "
                            "renders it (round-trip gallery vectors: ~0.05 s a gallery face on 2 CPU cores, "
                            "computed once, by the first such query, by `forensics gallery roundtrip`, or at "
                            "enrollment with `forensics gallery settings --roundtrip`)"),
)}
#: The mode a sketch query uses unless told otherwise: chosen by measurement on the development
#: protocol's select split, by a rule fixed beforehand (research/open-set-scoring/README.md:
#: highest rank-1 + rank-10 against the open gallery among modes whose gallery side costs at
#: most 100 ms a face on 2 CPU cores).
DEFAULT_SKETCH_MODE = "roundtrip"


def get_mode(name: str) -> Mode:
    """The mode called `name`, or a clear error listing the modes."""
    try:
        return MODES[name]
    except KeyError:
        raise ForensicsError(f"--mode must be one of {', '.join(MODES)}, not {name!r}") from None


def modes_help() -> str:
    """One line per mode, for `--help`."""
    return "; ".join(f"{m.name}: {m.help}" for m in MODES.values())
