"""A search of the gallery, set up once and run for one query or many evaluation probes.

`Searcher` loads what a mode needs (the inverter, the sketch search space, the fusion offsets, the
FPIR calibration), opens the derived indexes its probes are searched in (`forensics.indexes`),
and then turns face records into ranked candidates: `forensics.probes.build_probes`, then
`forensics.ranking.rank`, then the FPIR of each candidate's score. `forensics query`,
`forensics evaluate` and photo search all go through it, so they give the same candidates and
scores for the same probe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gallery.db import Gallery

from forensics.calibration import ScoreCalibration, load_calibration
from forensics.filters import subjects_searched
from forensics.fusion import FUSION_WEIGHT_INVERTED, load_offsets
from forensics.errors import ForensicsError
from forensics.modes import get_mode
from forensics.pipeline import FacePipeline
from forensics.probes import (INDEX_PLAIN, INDEX_ROUNDTRIP, INDEX_ROUNDTRIP_RAW, INDEX_WHITENED, BuiltProbes,
                              ProbeModels, build_probes)
from forensics.provenance import search_files
from forensics.ranking import OwnerLookup, SubjectFilter, rank, to_candidates
from forensics.stores import open_indexes
from forensics.records import Candidate, QueryParams
from forensics.roundtrip import describe_roundtrip
from forensics.whitening import load_whitening


PROBE_KINDS = ("sketch", "photo")


@dataclass
class SearchOutcome:
    candidates: list[list[Candidate]]  # one list per probe set
    probes: BuiltProbes


class Searcher:
    """Searches one gallery in one mode with one kind of probe ("sketch" or "photo").

    `whiten`: sketch probes in the sketch search space when one is fitted for the embedder
    (False: raw descriptors); photo probes are always searched in the raw space. `calibrate`:
    attach the FPIR to every candidate where a calibration was measured for this embedder, mode
    and space (sketches only). `progress(done, total)`: called while round-trip vectors are
    computed (mode roundtrip).
    """

    def __init__(self, gallery: Gallery, pipeline: FacePipeline, mode: str, kind: str = "sketch",
                 whiten: bool = True, inverter=None, calibrate: bool = True,
                 progress: Callable[[int, int], None] | None = None):
        self.mode = get_mode(mode)
        if kind not in PROBE_KINDS:
            raise ForensicsError(f"--probe-kind must be one of {', '.join(PROBE_KINDS)}, not {kind!r}")
        self.kind = kind
        self.pipeline = pipeline
        self.indexes_owner = open_indexes(gallery)
        self.repo = self.indexes_owner.repo
        info = pipeline.embedder.info
        self.embedder_row = self.indexes_owner.embedder()
        self.repo.ensure_embedder_compatible(info.name, info.version, info.dim)
        self.models = self._models(inverter, whiten)
        self.calibration = self._calibration() if calibrate and kind == "sketch" else None
        self.indexes = self.indexes_owner.open(self._index_names(), embedder=pipeline.embedder,
                                               inverter=self.models.inverter, whitening=self.models.whitening,
                                               progress=progress)
        self.owners = OwnerLookup(self.repo)
        self._n_searched: int | None = None

    def _models(self, inverter, whiten: bool) -> ProbeModels:
        info = self.pipeline.embedder.info
        if self.mode.needs_inverter and inverter is None:
            from forensics.inversion.invert import load_inverter

            inverter = load_inverter()
        inverter = inverter if self.mode.needs_inverter else None
        whitening = load_whitening(info.key.slug) if whiten and self.kind == "sketch" else None
        offsets = None
        if self.mode.name in ("fusion", "roundtrip"):
            offsets = load_offsets(info.key.slug, inverter.info.sha256,
                                   space=whitening.space_id if whitening is not None else None)
        return ProbeModels(self.pipeline.embedder, inverter, whitening, offsets)

    def _calibration(self) -> ScoreCalibration | None:
        w = self.models.whitening
        return load_calibration(self.pipeline.embedder.info, self.mode.name,
                                space=w.space_id if w is not None else None)

    def _index_names(self) -> list[str]:
        white = self.models.whitening is not None
        names = [INDEX_WHITENED if white else INDEX_PLAIN]
        if self.mode.name == "roundtrip":
            names.append(INDEX_ROUNDTRIP if white else INDEX_ROUNDTRIP_RAW)
        return names

    # -- searching -----------------------------------------------------------------------------

    def search(self, records: list, top: int, grouped: bool = True,
               subject_filter: SubjectFilter | None = None, n_searched: int | None = None) -> SearchOutcome:
        """Ranked candidates for face `records`: one list for all of them (`grouped`: the
        sketches of one query) or one list per record (evaluation probes). The FPIR is stated for
        `n_searched` subjects (those the filter keeps; default: the whole gallery)."""
        built = build_probes(self.models, self.mode.name, records, self.kind, grouped)
        ranked = rank(built.sets, self.indexes, self.owners, top, subject_filter, embedder_key=self.embedder_row.key)
        lists = [to_candidates(r, s) for r, s in zip(ranked, built.sets)]
        if self.calibration is not None:
            n = self.subjects_searched() if n_searched is None else n_searched
            for c in (c for cands in lists for c in cands):
                c.fpir = self.calibration.fpir(c.score, n)
        return SearchOutcome(lists, built)

    def gallery_size(self) -> int:
        """Every subject in the gallery (as stored with a query)."""
        return self.repo.count_subjects()

    def subjects_searched(self) -> int:
        """Subjects with vectors, counted once: an unfiltered search covers this many."""
        if self._n_searched is None:
            self._n_searched = subjects_searched(self.repo)
        return self._n_searched

    def params(self, top: int, n_sketches: int, built: BuiltProbes) -> QueryParams:
        """The record of how this search was made, with every model and data file it read and its
        SHA-256 (`forensics.provenance`); stored with a query and printed by its report."""
        m = self.models
        fusion_mode = self.mode.name in ("fusion", "roundtrip")
        fusion = None
        if fusion_mode:
            fusion = m.offsets.describe() if m.offsets is not None else {
                "method": "weighted mean of cosines", "weight_inverted": FUSION_WEIGHT_INVERTED,
                "offsets": "none: forensics/weights/fusion.json was fitted for another embedder, inverter "
                           "or search space"}
        rt = self.indexes.get(INDEX_ROUNDTRIP) or self.indexes.get(INDEX_ROUNDTRIP_RAW)
        return QueryParams(
            mode=self.mode.name, top=top, n_sketches=n_sketches, face_selection=self.pipeline.select,
            mirror_averaged=self.kind == "sketch",
            search_space=m.whitening.describe() if m.whitening is not None else None,
            fusion=fusion, fusion_weight_inverted=FUSION_WEIGHT_INVERTED if fusion_mode else None,
            roundtrip=describe_roundtrip(rt.space) if rt is not None else None,
            calibration=self.calibration.describe() if self.calibration is not None else None,
            probes=[p.describe() for p in built.sets[0].probes] if built.sets else [],
            models=[f.to_dict() for f in search_files(self.pipeline.embedder, m.inverter, m.whitening, m.offsets,
                                                       self.calibration)])
