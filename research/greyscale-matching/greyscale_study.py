"""Match in greyscale? Embed greyscale versions of photos and of (raw / inverted) sketches.

Reads runs/emb_cache.npz (research/vector-cache/sketch_pair_vectors.py); writes runs/grey_cache.npz,
which research/whitening/whitening_study.py also reads.
"""
import numpy as np, torch, time
from forensics.inversion.invert import load_inverter, invert_chips
from forensics.models.registry import load_embedder
from forensics.probes import mirrored
torch.set_num_threads(2)
z = np.load("runs/emb_cache.npz", allow_pickle=True)
emb = load_embedder(); inv = load_inverter()
U = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
def grey(c):
    g = (c.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().clip(0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, -1)
def mvec(chips): return U(U(emb.embed(chips)) + U(emb.embed(mirrored(chips))))
out = {}
for s in ("cufs_test", "fs2k_val", "cufs_train", "fs2k_train"):
    t = time.time(); sk = z[s + "_chips"]; ph = z[s + "_photochips"]
    syn = invert_chips(inv, sk); synm = invert_chips(inv, mirrored(sk))
    out[s + "_inv"] = U(U(emb.embed(syn)) + U(emb.embed(synm)))
    out[s + "_inv_grey"] = U(U(emb.embed(grey(syn))) + U(emb.embed(grey(synm))))
    out[s + "_raw_grey"] = mvec(grey(sk))
    out[s + "_photo"] = emb.embed(ph); out[s + "_photo_grey"] = emb.embed(grey(ph))
    out[s + "_raw"] = z[s + "_raw"]; out[s + "_subset"] = z[s + "_subset"]
    np.savez("runs/grey_cache.npz", **out)
    def R(q, g):
        S = U(q) @ U(g).T; return round(float((((S > S.diagonal()[:, None]).sum(1)) == 0).mean() * 100), 1)
    print(s, f"{time.time()-t:.0f}s", "inv colour", R(out[s+"_inv"], out[s+"_photo"]), "inv grey/grey", R(out[s+"_inv_grey"], out[s+"_photo_grey"]),
          "raw colour", R(out[s+"_raw"], out[s+"_photo"]), "raw vs grey photo", R(out[s+"_raw"], out[s+"_photo_grey"]), flush=True)
