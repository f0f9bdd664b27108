"""`forensics query` and `forensics evaluate` go through one search path: on an open gallery of
1,000+ subjects (CUFS test photos and close distractors), every mode gives the same candidates,
scores and FPIRs for the same sketch, through the real CLI on real images."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from forensics.testing import run_cli as run
from forensics.modes import MODES

N_MATES = 24
N_DISTRACTORS = 1000
TOP = 10


@pytest.fixture(scope="module")
def cufs_test(data_dir):
    rows = [r for r in csv.DictReader(open(data_dir / "cufs" / "manifest.csv")) if r["split"] == "test"]
    by = {(r["identity"], r["kind"]): data_dir / "cufs" / r["file"] for r in rows}
    ids = sorted({r["identity"] for r in rows})
    return by, ids[::len(ids) // (N_MATES + 6)][:N_MATES + 6]  # spread over the three CUFS parts


@pytest.fixture(scope="module")
def open_gallery_db(tmp_path_factory, cufs_test):
    """N_MATES CUFS test photos enrolled through the CLI, plus N_DISTRACTORS subjects whose vectors
    are noisy copies of theirs (cosine ~0.8 to the original: close, realistic competition); the
    round-trip index is made from noisy copies of the whitened gallery vectors, since computing
    real ones costs ~1 s a face (their values do not matter here: both paths read the same index)."""
    from gallery.db import open_gallery
    from gallery.index import FLAT, VectorIndex
    from gallery.records import FaceSpec, ImageSpec

    from forensics.faiss_indexes import FaissIndexes
    from forensics.inversion.invert import load_inverter
    from forensics.roundtrip import roundtrip_space_id
    from forensics.whitening import load_whitening

    by, ids = cufs_test
    tmp = tmp_path_factory.mktemp("open")
    manifest = tmp / "gallery.csv"
    manifest.write_text("path,subject_id\n" + "".join(f"{by[(i, 'photo')]},{i}\n" for i in ids[:N_MATES]))
    db = tmp / "g.db"
    run("enroll", "--manifest", manifest, "--db", db, "--workers", 0)
    g = open_gallery(db, create=False)
    repo = g.repository()
    emb = repo.gallery_embedder()
    _, real = repo.iter_embeddings(emb)
    rng = np.random.default_rng(11)
    for k in range(N_DISTRACTORS):
        v = real[k % len(real)] + 0.066 * rng.standard_normal(real.shape[1])
        repo.add_enrollment({"external_id": f"distractor_{k:04d}"}, ImageSpec(sha256=f"{k:064x}"),
                            [FaceSpec([0, 0, 1, 1], None, 1.0, None, v, emb)])
    indexes = FaissIndexes(g)
    indexes.plain()
    white = load_whitening("dlib-resnet@v1/128")
    ids_all, vecs = repo.iter_embeddings(emb)
    rt = white.apply(vecs) + 0.03 * rng.standard_normal(vecs.shape)
    VectorIndex.build(ids_all, rt, emb.key, FLAT, gallery_fingerprint=repo.gallery_fingerprint(emb),
                      space=roundtrip_space_id(load_inverter(), white)).save(indexes.path("roundtrip"))
    assert repo.count_subjects() >= 1000
    return db


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_query_equals_evaluate_on_an_open_gallery(mode, open_gallery_db, cufs_test, tmp_path):
    by, ids = cufs_test
    probes = ids[N_MATES - 3:]  # 3 people in the gallery, 6 who are not
    manifest = tmp_path / "probes.csv"
    manifest.write_text("path,subject_id\n" + "".join(f"{by[(i, 'sketch')]},{i}\n" for i in probes))
    out = tmp_path / "eval.jsonl"
    run("evaluate", "--probes", manifest, "--mode", mode, "--probe-kind", "sketch", "--top", TOP, "--out", out,
        "--db", open_gallery_db)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["subject_id"] for x in lines] == probes
    fields = ("rank", "subject_id", "image_sha256", "embedding_id")
    for line in lines[:2] + lines[-2:]:  # mated and non-mated probes
        q = json.loads(run("query", line["probe"], "--mode", mode, "--top", TOP, "--json",
                           "--db", open_gallery_db).stdout)
        assert len(q["candidates"]) == TOP and q["gallery_size"] >= 1000
        for a, b in zip(q["candidates"], line["candidates"]):
            diff = {f: (a[f], b[f]) for f in fields if a[f] != b[f]}
            assert not diff, f"{line['probe']} rank {a['rank']}: query vs evaluate {diff}"
            # evaluate embeds its probes in batches, query one at a time: the network's float
            # arithmetic differs by ~1e-7 between the two, hence scores equal to 2e-6, not bit for bit
            assert a["score"] == pytest.approx(b["score"], abs=2e-6)
            assert a["detail"].get("per_probe", []) == pytest.approx(b["detail"].get("per_probe", []), abs=2e-6)
            assert [p["kind"] for p in a["detail"].get("probes", [])] == \
                [p["kind"] for p in b["detail"].get("probes", [])]
            assert (a["fpir"] is None) == (b["fpir"] is None)
            assert a["fpir"] is None or a["fpir"] == pytest.approx(b["fpir"], rel=1e-3, abs=1e-9)
    assert any(c["subject_id"].startswith("distractor_") for x in lines for c in x["candidates"][:3])
