"""Study: fine-tune a copy of dlib's ResNet so that a SKETCH chip maps to its PHOTO's dlib descriptor.

Selection rule (fixed before any result): FS2K val closed-set rank-1 of (student + inverted) fused,
+ 0.1 x mean cosine student(sketch)·teacher(photo). CUFS test only for the chosen and final states.
"""
import argparse, copy, json, math, time, sys
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
from torch.utils.data import DataLoader

from forensics.training.data import ChipCache, ChipDataset, eval_cache_path
from forensics.models.dlib_resnet import load_dlib_resnet
from forensics.inversion.invert import load_inverter

ap = argparse.ArgumentParser()
ap.add_argument("--out", type=Path, required=True)
ap.add_argument("--lr", type=float, default=5e-5)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--steps", type=int, default=4000)
ap.add_argument("--eval-every", type=int, default=250)
ap.add_argument("--p-real", type=float, default=0.5)
ap.add_argument("--nce", type=float, default=0.0, help="weight of an in-batch InfoNCE term")
ap.add_argument("--tau", type=float, default=0.05)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--minutes", type=float, default=1e9)
a = ap.parse_args()
a.out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(a.seed)
torch.set_num_threads(2)
log = open(a.out / "log.txt", "a")
def P(*x):
    s = " ".join(str(v) for v in x); print(s, flush=True); log.write(s + "\n"); log.flush()

cache = ChipCache("runs/cache/chips.npz")
teacher = load_dlib_resnet()
student = copy.deepcopy(teacher).train(); student.requires_grad_(True)
inv = load_inverter()

def unit(x): return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)

@torch.no_grad()
def embed(net, chips, flip=False):
    out = []
    for i in range(0, len(chips), 50):
        x = torch.from_numpy(chips[i:i + 50]).permute(0, 3, 1, 2).float()
        if flip: x = x.flip(3)
        out.append(net(x).float())
    return torch.cat(out)

@torch.no_grad()
def inverted(chips):
    out = []
    for i in range(0, len(chips), 25):
        x = torch.from_numpy(chips[i:i + 25]).permute(0, 3, 1, 2).float()
        y = inv.model(x).clamp(0, 255).round() if hasattr(inv, "model") else inv(x).clamp(0, 255).round()
        out.append(unit(teacher(y)) + unit(teacher(y.flip(3))))
    return torch.cat(out)

def r1(q, g):
    s = unit(q) @ unit(g).T
    return float(((s > s.diagonal()[:, None]).sum(1) == 0).float().mean())

def prep(c, ds, sp):
    sk, ph, _ = c.pair_chips(ds, sp)
    return dict(sk=sk, ph=teacher_emb(ph), raw=embed(teacher, sk) + 0 * 0, inv=None, sk_chips=sk)

def teacher_emb(ph): return embed(teacher, ph)

sets = {}
for name, c, ds, sp in [("fs2k_val", cache, "fs2k", "val"), ("cufs_test", ChipCache(eval_cache_path(Path("runs/cache/chips.npz"))), "cufs", "test")]:
    sk, ph, _ = c.pair_chips(ds, sp)
    t = time.time()
    d = dict(sk=sk, ph=embed(teacher, ph), raw=unit(embed(teacher, sk)) + unit(embed(teacher, sk, True)), inv=inverted(sk))
    sets[name] = d
    P(name, len(sk), "prep s", round(time.time() - t, 1), "raw R1", r1(d["raw"], d["ph"]), "inv R1", r1(d["inv"], d["ph"]),
      "raw+inv", r1(unit(d["raw"]) + unit(d["inv"]), d["ph"]))

def evaluate(name):
    d = sets[name]
    student.eval()
    s = unit(embed(student, d["sk"])) + unit(embed(student, d["sk"], True))
    student.train()
    m = dict(st=r1(s, d["ph"]), st_inv=r1(unit(s) + unit(d["inv"]), d["ph"]),
             st_inv_raw=r1(unit(s) + unit(d["inv"]) + unit(d["raw"]), d["ph"]),
             cos=float((unit(s) * unit(d["ph"])).sum(1).mean()))
    m["score"] = m["st_inv"] + 0.1 * m["cos"]
    return m

ds = ChipDataset(cache, p_real=a.p_real, augment=True, seed=a.seed)
dl = DataLoader(ds, batch_size=a.batch, num_workers=1, shuffle=False, persistent_workers=True)
opt = torch.optim.Adam(student.parameters(), lr=a.lr)
best = (-1, None)
t0 = time.time(); step = 0; run_l = []
m = evaluate("fs2k_val"); P("step 0", json.dumps(m))
for sk, ph in dl:
    step += 1
    lr = a.lr * min(1, step / 100) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / a.steps)))
    for g in opt.param_groups: g["lr"] = lr
    with torch.no_grad():
        tgt = teacher(ph.float())
    y = student(sk.float())
    loss = (1 - F.cosine_similarity(y, tgt)).mean()
    if a.nce > 0:
        logits = unit(y) @ unit(tgt).T / a.tau
        loss = loss + a.nce * F.cross_entropy(logits, torch.arange(len(y)))
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0); opt.step()
    run_l.append(float(loss))
    if step % 50 == 0:
        P(f"step {step} loss {np.mean(run_l[-50:]):.4f} lr {lr:.2e} {time.time()-t0:.0f}s")
    if step % a.eval_every == 0 or step == a.steps or (time.time() - t0) / 60 > a.minutes:
        m = evaluate("fs2k_val"); P(f"eval {step}", json.dumps(m))
        if m["score"] > best[0]:
            best = (m["score"], step); torch.save(student.state_dict(), a.out / "best.pt")
        torch.save(student.state_dict(), a.out / "last.pt")
    if step >= a.steps or (time.time() - t0) / 60 > a.minutes:
        break
P("best", best)
for tag in ("best", "last"):
    student.load_state_dict(torch.load(a.out / f"{tag}.pt"))
    P(tag, "fs2k_val", json.dumps(evaluate("fs2k_val")), "cufs_test", json.dumps(evaluate("cufs_test")))
