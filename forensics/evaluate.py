"""Batched identification evaluation: a manifest of probes against the gallery → JSONL + CMC.

The modes are those of `forensics query` (`forensics.modes`), and every probe is searched the
way a query searches (`forensics.searcher`): what is measured is what a query runs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forensics.errors import ForensicsError
from forensics.pipeline import PipelineFailure
from forensics.records import Candidate
from forensics.searcher import Searcher


@dataclass
class EvalSummary:
    n_probes: int
    n_failed: int
    ranks: list[int | None]  # rank of the true subject per probe (None: not in the returned top)
    cmc: list[float] = field(default_factory=list)  # cmc[k-1] = fraction found at rank <= k

    def rank_k(self, k: int) -> float:
        return self.cmc[k - 1] if k <= len(self.cmc) else (self.cmc[-1] if self.cmc else 0.0)


def read_probe_manifest(path: Path) -> list[tuple[Path, str]]:
    path = Path(path)
    if not path.is_file():
        raise ForensicsError(f"{path}: probe manifest not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"path", "subject_id"} <= set(reader.fieldnames or []):
            raise ForensicsError(f"{path}: the header must have path,subject_id")
        out = []
        for row in reader:
            p = Path(row["path"])
            out.append((p if p.is_absolute() else path.parent / p, row["subject_id"]))
    return out


def cmc_curve(ranks: list[int | None], top: int) -> list[float]:
    n = len(ranks)
    if n == 0:
        return []
    return [sum(1 for r in ranks if r is not None and r <= k) / n for k in range(1, top + 1)]


def evaluate(searcher: Searcher, probes: list[tuple[Path, str]], out: Path, top: int = 10, batch_size: int = 32,
             progress: Callable[[int], None] | None = None) -> EvalSummary:
    """Search every probe with `searcher` (its gallery, mode and probe kind); write one JSON line
    per probe in manifest order; return the CMC.

    Each probe is searched exactly as `forensics query` searches one sketch, and its line holds
    the same candidate fields that `query --json` prints (FPIR included where a calibration
    applies)."""
    pipeline, probe_kind = searcher.pipeline, searcher.kind
    ranks: list[int | None] = []
    n_failed = 0
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [p for p, _ in probes]
    with open(out, "w", encoding="utf-8") as fh:
        pos = 0
        for results in pipeline.process(paths, kind=probe_kind, batch_size=batch_size):
            ok = [r for r in results if not isinstance(r, PipelineFailure)]
            lists = iter(searcher.search(ok, top, grouped=False).candidates if ok else [])
            for j, r in enumerate(results):
                path, true_id = probes[pos + j]
                line, found = _probe_line(path, true_id, r, None if isinstance(r, PipelineFailure) else next(lists))
                n_failed += isinstance(r, PipelineFailure)
                ranks.append(found)
                fh.write(json.dumps(line) + "\n")
            pos += len(results)
            if progress:
                progress(len(results))
    return EvalSummary(n_probes=len(probes), n_failed=n_failed, ranks=ranks, cmc=cmc_curve(ranks, top))


def _probe_line(path: Path, true_id: str, record, candidates: list[Candidate] | None) -> tuple[dict, int | None]:
    """One probe's JSON line and the rank of its true subject (None: not in the list)."""
    line = {"probe": str(path), "subject_id": true_id}
    if candidates is None:
        line.update(candidates=[], error=str(record.error))
        return line, None
    line.update(probe_sha256=record.sha256, detection=record.detection_method,
                candidates=[c.to_dict() for c in candidates])
    return line, next((c.rank for c in candidates if c.subject_id == true_id), None)


def write_cmc_plot(curves: dict[str, list[float]], path: Path, title: str = "CMC") -> Path:
    """A CMC plot (PNG) of one or more curves, rank 1..K on x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=110)
    for label, cmc in curves.items():
        ax.plot(range(1, len(cmc) + 1), [100 * c for c in cmc], marker="o", ms=3, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate (%)")
    ax.set_title(title)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
