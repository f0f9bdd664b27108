"""CUFS test closed-set rank-1 of the sketch-adapted descriptor (weights: argv[1]) alone and fused
with the raw and inverted paths, overall and per CUFS part."""
import sys, copy, torch, numpy as np
from pathlib import Path
from forensics.training.data import ChipCache, eval_cache_path
from forensics.models.dlib_resnet import load_dlib_resnet
from forensics.inversion.invert import load_inverter
torch.set_num_threads(1)
t = load_dlib_resnet(); s = copy.deepcopy(t); s.load_state_dict(torch.load(sys.argv[1])); inv = load_inverter()
def unit(x): return x / x.norm(dim=1, keepdim=True)
@torch.no_grad()
def emb(n, c, flip=False):
    x = torch.from_numpy(c).permute(0,3,1,2).float()
    if flip: x = x.flip(3)
    return torch.cat([n(x[i:i+50]) for i in range(0, len(x), 50)])
c = ChipCache(eval_cache_path(Path("runs/cache/chips.npz")))
sk, ph, _ = c.pair_chips("cufs", "test"); subs = c.subset[c.pairs("cufs","test")[:,1]]
P = emb(t, ph)
raw = unit(emb(t, sk)) + unit(emb(t, sk, True)); st = unit(emb(s, sk)) + unit(emb(s, sk, True))
with torch.no_grad():
    x = torch.from_numpy(sk).permute(0,3,1,2).float()
    y = torch.cat([inv(x[i:i+25]).clamp(0,255).round() for i in range(0,len(x),25)])
    yf = torch.cat([inv(x[i:i+25].flip(3)).clamp(0,255).round() for i in range(0,len(x),25)])
iv = unit(emb(t, y.permute(0,2,3,1).byte().numpy())) + unit(emb(t, yf.permute(0,2,3,1).byte().numpy()))
def r1(q, sel=None):
    S = unit(q) @ unit(P).T; ok = (S > S.diagonal()[:, None]).sum(1) == 0
    return round(float(ok.float().mean())*100, 1), {g: round(float(ok[torch.from_numpy(subs==g)].float().mean())*100,1) for g in sorted(set(subs))}
for name, q in [("raw", raw), ("inv", iv), ("student", st), ("raw+inv", unit(raw)+unit(iv)), ("st+inv", unit(st)+unit(iv)), ("st+inv+raw", unit(st)+unit(iv)+unit(raw))]:
    print(name, r1(q))
