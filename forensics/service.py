"""Searching the gallery with a face photo (the `search` command)."""

from __future__ import annotations

import time
from pathlib import Path

from gallery.db import Gallery
from gallery.index import default_index_path, load_or_build

from forensics.errors import ForensicsError
from forensics.pipeline import FacePipeline
from forensics.records import SearchResult
from forensics.search import rank_subjects, to_candidates


def open_index(gallery: Gallery, pipeline: FacePipeline, whitening=None):
    """The gallery's index (rebuilt from the DB if missing or stale), after checking that the
    pipeline's embedder is the one the gallery's vectors come from.

    With a `forensics.whitening.Whitening` (sketch queries): the derived index of the whitened
    gallery vectors, ``<gallery>.whitened.faiss`` beside the plain one, rebuilt the same way.
    """
    repo = gallery.repository()
    emb = repo.gallery_embedder()
    if emb is None:
        raise ForensicsError(f"the gallery {gallery.path} is empty: enroll photos first (`forensics enroll`)")
    info = pipeline.embedder.info
    repo.ensure_embedder_compatible(info.name, info.version, info.dim)
    return repo, emb, gallery_index(repo, gallery.path, whitening)


def gallery_index(repo, gallery_path: Path, whitening=None):
    """The index beside the gallery at `gallery_path`, loaded if current, else rebuilt from the DB:
    the plain one, or with a `Whitening` the derived whitened one."""
    path = default_index_path(gallery_path)
    if whitening is None:
        return load_or_build(repo, path)
    return load_or_build(repo, whitened_index_path(path), transform=whitening.apply, space=whitening.space_id)


def whitened_index_path(index_path: Path) -> Path:
    """``gallery.faiss`` -> ``gallery.whitened.faiss``."""
    return Path(index_path).with_suffix(".whitened.faiss")


def search_photo(gallery: Gallery, pipeline: FacePipeline, image: Path, top: int = 10) -> SearchResult:
    t0 = time.perf_counter()
    repo, emb, index = open_index(gallery, pipeline)
    rec = pipeline.process_one(image, kind="photo")
    t1 = time.perf_counter()
    ranked = rank_subjects(repo, index, rec.embedding.vector[None, :], top, embedder_key=emb.key)
    t2 = time.perf_counter()
    return SearchResult(candidates=to_candidates(ranked), embedder=pipeline.embedder.info,
                        gallery_size=repo.count_subjects(), gallery_fingerprint=repo.gallery_fingerprint(emb),
                        probe_sha256=[rec.sha256], timings={"embed_s": t1 - t0, "search_s": t2 - t1})
