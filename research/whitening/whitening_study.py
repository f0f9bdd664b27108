"""PCA whitening of dlib descriptors (fit on photos only), closed + open set, photo control.

Reads the caches of research/vector-cache and research/greyscale-matching; writes
runs/whitening_study.json (runs/whitening_study_full.json with --full).
"""
import numpy as np, json, sys
z = np.load("runs/grey_cache.npz", allow_pickle=True); o = np.load("runs/open_vectors.npz", allow_pickle=True)
e = np.load("runs/emb_cache.npz", allow_pickle=True)
import os; lp = np.load("runs/lfw_probe_vecs.npz", allow_pickle=True) if os.path.exists("runs/lfw_probe_vecs.npz") else None
U = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
G, gid = U(o["V"].astype(np.float64)), o["ids"]
order = np.argsort(gid, kind="stable"); G, gid = G[order], gid[order]
starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]]); subj = gid[starts]
LFWG = G[np.array([not (x.startswith("cufs_") or x.startswith("fs2k_")) for x in gid])]
S = {s: {k: U(z[f"{s}_{k}"].astype(np.float64)) for k in ("raw", "inv", "photo")} | {"id": e[f"{s}_id"]} for s in ("cufs_train", "cufs_test", "fs2k_train", "fs2k_val")}
TR = {k: np.concatenate([S["cufs_train"][k], S["fs2k_train"][k]]) for k in ("raw", "inv", "photo")}
def fit(photos, alpha, eps):
    mu = photos.mean(0); C = np.cov((photos - mu).T); lam, V = np.linalg.eigh(C)
    W = V @ np.diag((lam + eps) ** (-alpha / 2)) @ V.T
    return lambda x: U((x - mu) @ W)
ident = lambda x: U(x)
def R1c(sc): return float((((sc > sc.diagonal()[:, None]).sum(1)) == 0).mean() * 100)
def closed(T, d, offsets=None):
    g = T(d["photo"]); r, v = T(d["raw"]), T(d["inv"])
    if offsets is not None: r, v = U(r + offsets[0]), U(v + offsets[1])
    sr, si = r @ g.T, v @ g.T
    return R1c(sr), R1c(si), R1c(sr + si)
def subj_scores(q, Gt):
    return np.maximum.reduceat(q @ Gt.T, starts, axis=1)
def open_r1(T, d, offsets=None):
    Gt = T(G); r, v = T(d["raw"]), T(d["inv"])
    if offsets is not None: r, v = U(r + offsets[0]), U(v + offsets[1])
    col = np.searchsorted(subj, d["id"]); assert (subj[col] == d["id"]).all()
    out = []
    for sc in (subj_scores(r, Gt), subj_scores(v, Gt)):
        out.append(sc)
    out.append(0.5 * out[0] + 0.5 * out[1])
    return tuple(float(((sc > sc[np.arange(len(col)), col][:, None]).sum(1) == 0).mean() * 100) for sc in out)
def photo_control(T):
    Gt = T(G); q = T(U(lp["V"].astype(np.float64))); col = np.searchsorted(subj, lp["ids"]); assert (subj[col] == lp["ids"]).all()
    sc = subj_scores(q, Gt); return float(((sc > sc[np.arange(len(col)), col][:, None]).sum(1) == 0).mean() * 100)
def offs(T):
    return T(TR["photo"]).mean(0) - T(TR["raw"]).mean(0), T(TR["photo"]).mean(0) - T(TR["inv"]).mean(0)
res = []
fits = [("none", None, None, None)]
for src in ("train", "lfw+train"):
    for a in (0.25, 0.5, 0.75, 1.0):
        for eps in (1e-4, 1e-3):
            fits.append((src, a, eps, None))
full = "--full" in sys.argv
for src, a, eps, _ in fits:
    if src == "none": T = ident
    else: T = fit(TR["photo"] if src == "train" else np.concatenate([LFWG, TR["photo"]]), a, eps)
    row = {"fit": src, "alpha": a, "eps": eps,
           "cufs_train_raw": closed(T, S["cufs_train"])[0], "fs2k_train_raw": closed(T, S["fs2k_train"])[0],
           "cufs_train_inv*": closed(T, S["cufs_train"])[1], "fs2k_train_inv*": closed(T, S["fs2k_train"])[1]}
    if full:
        of = offs(T)
        for s in ("cufs_test", "fs2k_val"):
            row[s + "_closed"] = closed(T, S[s]); row[s + "_closed_off"] = closed(T, S[s], of)
            row[s + "_open_off"] = open_r1(T, S[s], of)
        row["photo_control"] = photo_control(T)
    res.append(row); print(json.dumps(row), flush=True)
json.dump(res, open("runs/whitening_study%s.json" % ("_full" if full else ""), "w"), indent=1)
