#!/usr/bin/env python
"""Write the identities of the FS2K *select* half as a JSON list: the validation pairs a training run
may choose its checkpoint on (the trainer's ``select_identities``), so that the *report* half stays
unseen until the run is judged (the development protocol of issue 18, `fs2k_half` in
benchmarks/common.py, which owns the split).

    python scripts/fs2k_select_identities.py [--data ../shared/data] [-o runs/cache/fs2k_select.json]

`scripts/prepare_carry.sh` runs it and carries the list to the GPU machine beside the chip cache.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import fs2k_half  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="default: %(default)s")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "runs" / "cache" / "fs2k_select.json",
                    help="default: %(default)s")
    args = ap.parse_args(argv)
    identities = sorted({r["identity"] for r in fs2k_half(args.data, "sketch", "select")})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(identities, indent=0) + "\n")
    print(f"wrote {args.out}: {len(identities)} FS2K select identities")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
