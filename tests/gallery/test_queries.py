"""gallery/queries.py: stored queries (save, get, list, count)."""

from __future__ import annotations

import numpy as np

from gallery import QueryCandidateSpec, QueryInputSpec


def test_query_storage(repo, emb, enroll, sha):
    enroll(repo, emb, "Q-1", name="Quinn")
    uids = []
    for k, case in enumerate(["CASE-1", "CASE-2", "CASE-1"]):
        uids.append(
            repo.save_query(
                mode="sketch",
                case_id=case,
                operator="det. smith",
                params={"k": 20, "fusion": "max"},
                embedder=emb,
                inverter={"name": "pix2pix", "version": "3", "sha256": "d" * 64},
                gallery_size=1,
                gallery_fingerprint=repo.gallery_fingerprint(),
                timings={"embed": 0.01 * k},
                filters={"sex": "F"},
                created_at=f"2024-05-0{k + 1}T10:00:00Z",
                inputs=[{"sha256": sha(f"sketch{k}"), "original_path": f"s{k}.png",
                         "aligned_png": b"A", "synthesized_png": b"S",
                         "landmarks": np.zeros((5, 2)), "detection": {"score": np.float32(0.5)}}],
                candidates=[{"rank": 1, "score": 0.7, "subject_external_id": "Q-1",
                             "subject_name": "Quinn", "score_detail": {"fpir": 0.01}},
                            {"rank": 2, "score": 0.3, "subject_external_id": "NOPE"}],
            )
        )
    q = repo.get_query(uids[0])
    assert q.params == {"k": 20, "fusion": "max"} and q.embedder == emb
    assert q.inverter["name"] == "pix2pix" and q.filters == {"sex": "F"}
    assert q.inputs[0].landmarks == [[0.0, 0.0]] * 5 and q.inputs[0].detection == {"score": 0.5}
    assert q.inputs[0].synthesized_png == b"S"
    assert [c.rank for c in q.candidates] == [1, 2]
    assert q.candidates[0].subject_id is not None and q.candidates[1].subject_id is None
    assert q.candidates[0].score_detail == {"fpir": 0.01}
    assert q.tool_version
    listed = repo.list_queries()
    assert [x.query_uid for x in listed] == uids[::-1]  # newest first
    assert listed[0].top_external_id == "Q-1" and listed[0].n_candidates == 2
    assert [x.query_uid for x in repo.list_queries(case_id="CASE-1")] == [uids[2], uids[0]]
    assert repo.get_query("missing") is None
    assert repo.count_queries() == 3


def test_query_with_specs_given_uid_and_no_embedder(repo, sha):
    subj = repo.upsert_subject("S-1", name="Sam")
    uid = repo.save_query(
        query_uid="q-given",
        tool_version="9.9",
        inputs=[QueryInputSpec(sha256=sha("in0")), QueryInputSpec(sha256=sha("in1"), position=7)],
        candidates=[QueryCandidateSpec(rank=1, score=0.5, subject_id=subj.id, subject_external_id="S-1")],
    )
    assert uid == "q-given"
    q = repo.get_query(uid)
    assert q.embedder is None and q.params is None and q.tool_version == "9.9"
    assert [(i.position, i.sha256) for i in q.inputs] == [(0, sha("in0")), (7, sha("in1"))]
    assert q.candidates[0].subject_id == subj.id
    (summary,) = repo.list_queries()
    assert (summary.n_inputs, summary.n_candidates, summary.top_score) == (2, 1, 0.5)
    assert repo.list_queries(offset=1) == []


def test_query_ids_found_by_their_start(repo, sha):
    for uid in ("abc123aa", "abc123bb", "abd00000"):
        repo.save_query(query_uid=uid, inputs=[QueryInputSpec(sha256=sha(uid))], candidates=[])
    assert repo.query_uids_starting("abc123") == ["abc123aa", "abc123bb"]
    assert repo.query_uids_starting("ABD") == ["abd00000"]
    assert repo.query_uids_starting("abc123a") == ["abc123aa"]
    assert repo.query_uids_starting("zz") == [] and repo.query_uids_starting("") == []
    assert repo.query_uids_starting("ab%") == []  # not hex: never a pattern
