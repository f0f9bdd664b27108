"""Cache mirror-averaged raw / inverted sketch vectors and photo vectors for train and test pairs
(aligned chips included) -> runs/emb_cache.npz, the input of the greyscale, whitening and round-trip studies."""
import sys, time
from pathlib import Path
import numpy as np, torch
ROOT = Path(__file__).resolve().parents[2]; sys.path.insert(0, str(ROOT / "benchmarks"))
from forensics.datasets import default_data_dir, read_manifest
from forensics.training.data import fs2k_val_identities
from forensics.inversion.invert import load_inverter
from forensics.models.registry import load_embedder
from forensics.pipeline import FacePipeline, PipelineFailure
from forensics.probes import sketch_vectors
torch.set_num_threads(2)
data = default_data_dir(required=True)
cufs = read_manifest(data, "cufs"); fs2k = read_manifest(data, "fs2k")
val = fs2k_val_identities([r["identity"] for r in fs2k])
sets = {
 "cufs_train": [r for r in cufs if r["split"] == "train" and r["kind"] == "sketch"],
 "cufs_test": [r for r in cufs if r["split"] == "test" and r["kind"] == "sketch"],
 "fs2k_train": [r for r in fs2k if r["kind"] == "sketch" and r["identity"] not in val],
 "fs2k_val": [r for r in fs2k if r["kind"] == "sketch" and r["identity"] in val],
}
photo_of = {r["identity"]: r["path"] for r in cufs + fs2k if r["kind"] == "photo"}
pipe = FacePipeline(embedder=load_embedder()); inverter = load_inverter()
out = {}
for name, rows in sets.items():
    t = time.time()
    recs = [r for b in pipe.process([r["path"] for r in rows], kind="sketch", batch_size=64) for r in b]
    ph = [r for b in pipe.process([photo_of[r["identity"]] for r in rows], kind="photo", batch_size=64) for r in b]
    ok = [i for i, (a, b) in enumerate(zip(recs, ph)) if not isinstance(a, PipelineFailure) and not isinstance(b, PipelineFailure)]
    chips = np.stack([recs[i].chip for i in ok])
    raw, inv, synth = sketch_vectors(pipe.embedder, chips, np.stack([recs[i].embedding.vector for i in ok]), inverter)
    out[name + "_raw"] = raw; out[name + "_inv"] = inv
    out[name + "_photo"] = np.stack([ph[i].embedding.vector for i in ok])
    out[name + "_id"] = np.array([rows[i]["identity"] for i in ok])
    out[name + "_subset"] = np.array([rows[i].get("subset", "") for i in ok])
    out[name + "_chips"] = chips; out[name + "_photochips"] = np.stack([ph[i].chip for i in ok])
    print(name, len(rows), len(ok), f"{time.time()-t:.0f}s", flush=True)
    np.savez(ROOT / "runs/emb_cache.npz", **out)
