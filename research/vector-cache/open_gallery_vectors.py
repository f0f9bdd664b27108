"""The open benchmark gallery's vectors (subject external id per embedding) → runs/open_vectors.npz."""
import sqlite3

import numpy as np

c = sqlite3.connect("benchmarks/work/open.db")
rows = c.execute("select s.external_id, e.vector from embeddings e join faces f on e.face_id=f.id "
                 "join images i on f.image_id=i.id join subjects s on i.subject_id=s.id").fetchall()
ids = np.array([r[0] for r in rows])
V = np.stack([np.frombuffer(r[1], np.float32) for r in rows])
lfw = np.array([not (x.startswith("cufs_") or x.startswith("fs2k_")) for x in ids])
np.savez("runs/open_vectors.npz", ids=ids, V=V, lfw=lfw)
print(V.shape, int(lfw.sum()), "LFW")
