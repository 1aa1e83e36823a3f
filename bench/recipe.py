"""Benchmark: the default recipe at every data size, side by side (GitHub issue 9, section 3).

Grid: tasks (``bench/_recipe_tasks.py``: Fashion-MNIST, MNIST, scikit-learn digits,
Rotten Tomatoes, convention speeches) x N examples per class (all labelled, of which
15% per class, at least one, form the validation split, the same split for every
contender) x seeds (each draws its own N from the task's pool). The test set of a task is
fixed. In every cell, interleaved (the order rotates with the seed):

* ``reference``: the hand-written Keras-guide script (``bench/reference_keras.py``);
* ``extract``: ``headstart.fit`` with its defaults (cross-validated C, refit);
* ``finetune``: ``headstart.fit(strategy="finetune")`` defaults (at ``--ft-sizes`` only);
* ``fastai1``: fastai's ``fine_tune(1)`` with the same Lite0 (images, ``--ft-sizes``);
* ``fastaiT``: fastai's ``fine_tune(E)`` with E epochs matching headstart finetune's wall
  time (from ``fastai1``'s seconds per epoch);
* ``baseline``: the non-transfer baseline of ``compare`` (``pixels`` / ``tfidf``).

Accuracy cells share each task's feature caches (the reference's features by item, and
one headstart ``FeatureStore``): the features are deterministic, so the accuracies are
what cold runs give, and the grid costs one forward pass per item. Wall time comes from
one *cold* timing cell per task (N = ``--timing-cell``, seed 0: a fresh cache, every
contender paying for its reading and backbone passes); ``finetune`` and fastai train end
to end, so their seconds in every cell are real (finetune's head stage reads the shared
cache). Images at ``--image-size`` (112 px by default: the contenders that train end to
end are slow at 224 px on 2 cores) for every contender.

The code under test is ``src/headstart`` at git HEAD (``git archive``), so uncommitted
edits cannot leak into a run. Writes ``bench/results/recipe.json`` after every cell and
``recipe.md`` at the end.

    .venv/bin/pip install fastai      # once, into the benchmark environment
    .venv/bin/python bench/recipe.py                      # the full grid
    .venv/bin/python bench/recipe.py --quick              # smoke test
    .venv/bin/python bench/recipe.py --tasks digits --sizes 5,10 --seeds 0
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _recipe_tasks import DESCRIPTIONS, IMAGE_TASKS, TEXT_TASKS, build_task, draw
from run import machine_info, write_atomic

ROOT = Path(__file__).resolve().parent.parent
POOL = 100
TEST = {"fashion": 100, "mnist": 100, "digits": 70, "rotten_tomatoes": 500, "convention": 500}


def snapshot_head(dest: Path) -> str:
    """Extract ``src/headstart`` at git HEAD into ``dest``; put it first on ``sys.path``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "HEAD", "src/headstart"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    sys.path.insert(0, str(dest / "src"))
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return rev.stdout.strip()


def pool_rows(task: str, folder: Path) -> tuple[list[dict], list[dict]]:
    """The task's pool and test rows as manifest dicts (``path`` or ``text``, ``label``)."""
    from headstart.data import read_data

    data = read_data(folder, val=0.0, seed=0)
    key = "path" if data.modality == "image" else "text"
    rows = [
        {key: str(item), "label": data.classes[y], "split": s}
        for item, y, s in zip(data.items, data.labels, data.split, strict=True)
    ]
    return [r for r in rows if r["split"] == "train"], [r for r in rows if r["split"] == "test"]


def cell_manifest(dest: Path, pool: list[dict], test: list[dict], n: int, seed: int) -> Path:
    """N per class from ``pool`` (seeded), 15% per class (at least one) as validation."""
    labels = np.array([r["label"] for r in pool])
    codes = np.unique(labels, return_inverse=True)[1]
    picked = draw(codes, n, seed)
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.unique(codes):
        mine = rng.permutation(picked[codes[picked] == c])
        n_val = max(1, round(0.15 * len(mine)))
        rows += [{**pool[i], "split": "val"} for i in mine[:n_val]]
        rows += [{**pool[i], "split": "train"} for i in mine[n_val:]]
    rows += test
    path = dest / f"cell-n{n}-s{seed}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def headstart_run(
    manifest: Path, strategy: str, image_size: int | None, seed: int, cache: Path | None = None
) -> dict:
    """``headstart.fit`` with its defaults; a fresh feature cache unless ``cache`` (the
    task's shared one) is given."""
    import headstart

    with tempfile.TemporaryDirectory() as fresh:
        start = time.perf_counter()
        kwargs: dict[str, Any] = {"strategy": strategy, "seed": seed}
        if image_size and strategy not in ("tfidf", "pixels"):
            kwargs["image_size"] = image_size
        store = headstart.FeatureStore(cache or fresh)
        result = headstart.fit(manifest, store=store, **kwargs)
        seconds = time.perf_counter() - start
    m = result.metrics
    out = {"accuracy": m["splits"]["test"]["accuracy"], "seconds": seconds}
    if m.get("selection"):
        out["selection"] = {k: m["selection"][k] for k in ("by", "score", "chosen")}
    if m.get("notes"):
        out["notes"] = m["notes"]
        out["kept_extract"] = any("extract model was kept" in n for n in m["notes"])
    return out


def run_cell(
    task: str,
    manifest: Path,
    n: int,
    seed: int,
    args: argparse.Namespace,
    shared: dict[str, Any] | None = None,
) -> dict:
    """Every contender on one cell. ``shared``: the task's feature caches (``memo`` for
    the reference, ``cache`` for headstart), so that accuracy cells cost no repeated
    forward passes; ``None``: everything cold (the timing cells)."""
    import _fastai_anchor
    import reference_keras

    image = task in IMAGE_TASKS
    size = args.image_size if image else None
    big = n in args.ft_sizes
    memo = shared["memo"] if shared else None
    cache = shared["cache"] if shared else None
    baseline = "pixels" if image else "tfidf"
    plan: list[tuple[str, Any]] = [
        ("reference", lambda: reference_keras.run(str(manifest), size or 224, memo)),
        ("extract", lambda: headstart_run(manifest, "extract", size, seed, cache)),
        ("baseline", lambda: headstart_run(manifest, baseline, None, seed)),
    ]
    if big and "finetune" in args.contenders:
        plan.append(("finetune", lambda: headstart_run(manifest, "finetune", size, seed, cache)))
    if big and image and "fastai" in args.contenders and seed in args.fastai_seeds:
        plan.append(("fastai1", lambda: _fastai_anchor.run(str(manifest), 1, size, seed)))
    k = seed % len(plan)
    plan = plan[k:] + plan[:k]  # interleave: each seed starts with another contender
    results: dict[str, Any] = {}
    for name, fn in plan:
        results[name] = fn()
        print(f"    {name:9s} {results[name]['accuracy']:.3f} {results[name]['seconds']:6.1f}s")
    if "fastai1" in results and "finetune" in results and args.fastai_matched:
        per_epoch = results["fastai1"]["seconds"] / 2  # fine_tune(1): one frozen + one full
        epochs = max(1, round(results["finetune"]["seconds"] / per_epoch) - 1)
        if epochs > 1:
            results["fastaiT"] = _fastai_anchor.run(str(manifest), epochs, size, seed)
            r = results["fastaiT"]
            print(f"    fastaiT   {r['accuracy']:.3f} {r['seconds']:6.1f}s ({epochs} epochs)")
        else:
            results["fastaiT"] = {**results["fastai1"], "same_as": "fastai1"}
    return results


def summarise(cells: list[dict]) -> dict[str, Any]:
    """Per task and N: mean and 95% t-interval over seeds of each contender's accuracy,
    mean seconds, and the checks of the issue's "done means"."""
    from headstart.evaluate._stats import mean_ci

    table: dict[str, Any] = {}
    for task in dict.fromkeys(c["task"] for c in cells):
        for n in sorted({c["n"] for c in cells if c["task"] == task}):
            mine = [c for c in cells if c["task"] == task and c["n"] == n]
            row: dict[str, Any] = {}
            for name in dict.fromkeys(k for c in mine for k in c["results"]):
                accs = [c["results"][name]["accuracy"] for c in mine if name in c["results"]]
                secs = [c["results"][name]["seconds"] for c in mine if name in c["results"]]
                row[name] = {**mean_ci(accs, bounds=(0, 1)), "seconds": float(np.mean(secs))}
            table[f"{task}/{n}"] = row
    return table


def markdown(table: dict[str, Any], meta: dict[str, Any]) -> str:
    names = ["reference", "extract", "finetune", "fastai1", "fastaiT", "baseline"]
    lines = [
        "# Recipe benchmark: accuracy [95% interval over seeds] and seconds per cell",
        "",
        f"`{meta['command']}` at {meta['code']}; {meta['machine'].get('cpu_model', '')}",
        "",
        "| task / N per class | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key, row in table.items():
        cells = []
        for name in names:
            r = row.get(name)
            cells.append(
                f"{r['mean']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] {r['seconds']:.0f}s" if r else ""
            )
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tasks", default=",".join([*IMAGE_TASKS, *TEXT_TASKS]))
    ap.add_argument("--sizes", default="5,10,20,50,100")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--ft-sizes", default="50,100", help="sizes where finetune/fastai run")
    ap.add_argument("--contenders", default="finetune,fastai")
    ap.add_argument("--fastai-seeds", default="0,1,2", help="seeds where fastai runs")
    ap.add_argument("--fastai-matched", action="store_true", help="also fastai at matched time")
    ap.add_argument("--timing-cell", default="50", help="N of the cold timing cell (seed 0)")
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "recipe.json"))
    args = ap.parse_args()
    if args.quick:
        args.tasks, args.sizes, args.seeds, args.ft_sizes = (
            "digits,rotten_tomatoes",
            "5,50",
            "0",
            "50",
        )
    args.ft_sizes = {int(s) for s in str(args.ft_sizes).split(",") if s}
    args.contenders = set(args.contenders.split(","))
    args.fastai_seeds = {int(s) for s in str(args.fastai_seeds).split(",") if s}
    out = Path(args.out)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="headstart-recipe-") as tmp_s:
        tmp = Path(tmp_s)
        rev = snapshot_head(tmp)
        meta = {
            "benchmark": "recipe",
            "command": " ".join(["python", *sys.argv]),
            "code": f"git {rev}",
            "machine": machine_info(),
            "image_size": args.image_size,
            "tasks": {t: DESCRIPTIONS[t] for t in args.tasks.split(",")},
        }
        cells: list[dict] = []
        cold: list[dict] = []
        for task in args.tasks.split(","):
            folder = build_task(task, tmp / task, POOL, TEST[task], seed=0)
            pool, test = pool_rows(task, folder)
            shared = {"memo": {}, "cache": tmp / f"cache-{task}"}
            # the timing cell first, cold: every contender pays for its own forward passes
            n_time = int(args.timing_cell)
            print(f"{task} N={n_time} seed=0 (cold timing cell)", flush=True)
            manifest = cell_manifest(tmp / task, pool, test, n_time, 0)
            timing = run_cell(
                task,
                manifest,
                n_time,
                0,
                argparse.Namespace(**{**vars(args), "ft_sizes": set(), "contenders": set()}),
            )
            cold.append({"task": task, "n": n_time, "results": timing})
            for n in [int(s) for s in args.sizes.split(",")]:
                for seed in [int(s) for s in args.seeds.split(",")]:
                    print(f"{task} N={n} seed={seed}", flush=True)
                    manifest = cell_manifest(tmp / task, pool, test, n, seed)
                    results = run_cell(task, manifest, n, seed, args, shared)
                    cells.append({"task": task, "n": n, "seed": seed, "results": results})
                    report = {**meta, "cells": cells, "cold_timing": cold}
                    report["seconds"] = time.perf_counter() - started
                    report["summary"] = summarise(cells)
                    write_atomic(out, json.dumps(report, indent=1))
        write_atomic(out.with_suffix(".md"), markdown(summarise(cells), meta))
    print(markdown(summarise(cells), meta))


if __name__ == "__main__":
    main()
