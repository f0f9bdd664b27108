"""Descriptors of the 1,680 LFW photo-control probes (benchmarks/work/lfw_photo_probes.csv) -> runs/lfw_probe_vecs.npz."""
import csv, numpy as np, torch
from forensics.models.registry import load_embedder
from forensics.pipeline import FacePipeline, PipelineFailure
torch.set_num_threads(2)
rows = list(csv.DictReader(open("benchmarks/work/lfw_photo_probes.csv")))
pipe = FacePipeline(embedder=load_embedder())
recs = [r for b in pipe.process([r["path"] for r in rows], kind="photo", batch_size=64) for r in b]
ok = [i for i, r in enumerate(recs) if not isinstance(r, PipelineFailure)]
np.savez("runs/lfw_probe_vecs.npz", V=np.stack([recs[i].embedding.vector for i in ok]), ids=np.array([rows[i]["subject_id"] for i in ok]))
print(len(rows), len(ok))
