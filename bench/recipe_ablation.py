"""Benchmark: which feature-head recipe uses few labels best? (GitHub issue 9, section 1)

On cached features of the packaged models (Lite0 at 224 px for images, MiniLM for text),
for every task of ``bench/_recipe_tasks.py``, data size N (examples per class, all of them
labelled: what a user would split into train and validation) and seed, this fits a
multinomial logistic regression at every C of a fine grid and records, per C:

* ``val``: accuracy on headstart's validation split (15% of the N, stratified, at least
  one per class), the model trained on the other 85%;
* ``cv``: mean accuracy over stratified k folds of all N (k = min(5, N));
* ``test_split``: test accuracy of the model trained on the 85% (no refit);
* ``test_refit``: test accuracy of the model trained on all N (refit).

Every recipe is then a rule over these tables: select C by the validation split or by
cross-validation, on the coarse grid (0.01, 0.1, 1, 10) or the fine one (10^-3..10^2, 11
values), breaking ties toward the strongest or the weakest regularisation, then refit
or not. Feature normalisations: ``none``, ``std`` (per-feature standardisation on the
training part) and ``l2`` (each vector to unit length). Image preprocessing: ``crop``
(resize to 224/0.875, centre-crop 224: the ImageNet evaluation transform) vs ``full``
(resize the whole image to 224; for square inputs letterboxing is the same thing).

    .venv/bin/python bench/recipe_ablation.py           # about 25 minutes on 2 cores
    .venv/bin/python bench/recipe_ablation.py --quick   # smoke test

Writes ``bench/results/recipe_ablation.json`` (every table) and prints the summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _recipe_tasks import IMAGE_TASKS, build_task, draw
from run import machine_info, write_atomic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

CS = tuple(float(c) for c in np.logspace(-3, 2, 11))
COARSE = (0.01, 0.1, 1.0, 10.0)
SIZES = (5, 10, 20, 50, 100)
SEEDS = (0, 1, 2)
POOL = {"image": 100, "text": 100}  # labelled examples per class each cell draws from
TEST = {"fashion": 100, "mnist": 100, "digits": 70, "rotten_tomatoes": 500, "convention": 500}


def features(
    task: str, folder: Path, variant: str, image_size: int = 224
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(pool features, pool labels, test features/labels) of ``task`` with ``variant``."""
    from headstart import FeatureStore
    from headstart.data import read_data
    from headstart.zoo import create_backbone, get_spec

    data = read_data(folder, val=0.0, seed=0)
    if data.modality == "image":
        spec = get_spec("efficientnet_lite0.in1k")
        crop = 0.875 if variant.startswith("crop") else 1.0
        interp = variant.split("-")[1] if "-" in variant else spec.preprocess.interpolation
        pre = dataclasses.replace(
            spec.preprocess, crop_pct=crop, input_size=image_size, interpolation=interp
        )
        spec = dataclasses.replace(spec, preprocess=pre)
    else:
        spec = get_spec("minilm_l6.sbert_all_v2")
    backbone = create_backbone(spec)
    backbone.pop_source_head_inplace()
    feats = FeatureStore().features(backbone, data.items, data.keys, data.modality)
    train, test = data.split == "train", data.split == "test"
    return feats[train], data.labels[train], {"x": feats[test], "y": data.labels[test]}


def normalise(kind: str, fit_on: np.ndarray, *xs: np.ndarray) -> list[np.ndarray]:
    if kind == "none":
        return list(xs)
    if kind == "l2":
        return [x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in xs]
    mean, scale = fit_on.mean(0), fit_on.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    return [(x - mean) / scale for x in xs]


def c_path(x: np.ndarray, y: np.ndarray, evals: list[tuple[np.ndarray, np.ndarray]]) -> list:
    """Accuracy on each ``(x, y)`` of ``evals`` at every C of ``CS`` (warm-started path)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    clf = LogisticRegression(max_iter=1000, warm_start=True)
    out = []
    with threadpool_limits(1):
        for c in CS:
            clf.set_params(C=c)
            clf.fit(x, y)
            out.append([float((clf.predict(xe) == ye).mean()) for xe, ye in evals])
    return out


def split_val(y: np.ndarray, seed: int) -> np.ndarray:
    """headstart's validation split: 15% per class, at least one, stratified."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        val[idx[: max(1, round(0.15 * len(idx)))]] = True
    return val


def tables(x: np.ndarray, y: np.ndarray, test: dict, norm: str, seed: int) -> dict:
    from sklearn.model_selection import StratifiedKFold

    val = split_val(y, seed)
    xt, xv, xs = normalise(norm, x[~val], x[~val], x[val], test["x"])
    split = c_path(xt, y[~val], [(xv, y[val]), (xs, test["y"])])
    xa, xs2 = normalise(norm, x, x, test["x"])
    refit = c_path(xa, y, [(xs2, test["y"])])
    k = int(min(5, np.bincount(y).min()))
    folds = []
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
        a, b = normalise(norm, x[tr], x[tr], x[te])
        folds.append([r[0] for r in c_path(a, y[tr], [(b, y[te])])])
    return {
        "val": [r[0] for r in split],
        "test_split": [r[1] for r in split],
        "test_refit": [r[0] for r in refit],
        "cv": list(np.mean(folds, axis=0)),
        "k": k,
    }


def pick(scores: list[float], grid: tuple[float, ...], tie: str) -> int:
    """Index into ``CS`` of the best score on ``grid``; ties to the strongest (smallest C)
    or the weakest regularisation."""
    idx = [i for i, c in enumerate(CS) if any(abs(c - g) < 1e-9 * g for g in grid)]
    best = max(scores[i] for i in idx)
    tied = [i for i in idx if scores[i] >= best - 1e-12]
    return tied[0] if tie == "strong" else tied[-1]


RECIPES = {
    # name: (select by, grid, tie, refit)
    "val-coarse-strong-norefit (0.1.0)": ("val", COARSE, "strong", False),
    "val-coarse-strong-refit": ("val", COARSE, "strong", True),
    "val-fine-strong-refit": ("val", CS, "strong", True),
    "val-fine-weak-refit": ("val", CS, "weak", True),
    "cv-coarse-strong-refit": ("cv", COARSE, "strong", True),
    "cv-coarse-weak-refit": ("cv", COARSE, "weak", True),
    "cv-fine-strong-refit": ("cv", CS, "strong", True),
    "cv-fine-weak-refit": ("cv", CS, "weak", True),
}


def score(t: dict, recipe: tuple) -> float:
    by, grid, tie, refit = recipe
    i = pick(t[by], grid, tie)
    return t["test_refit" if refit else "test_split"][i]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "recipe_ablation.json"))
    ap.add_argument("--report-only", action="store_true", help="print the tables of --out")
    ap.add_argument("--tasks", help="comma-separated subset of the tasks")
    ap.add_argument("--norms", default="none,std,l2", help="normalisations to try")
    ap.add_argument("--sizes", help="comma-separated N per class")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--variants", default="crop,full", help="image preprocessing variants")
    args = ap.parse_args()
    if args.report_only:
        print(markdown(json.loads(Path(args.out).read_text())["rows"]))
        return
    order = ["digits", "rotten_tomatoes", "mnist", "convention", "fashion"]
    tasks = ["digits", "rotten_tomatoes"] if args.quick else order
    if args.tasks:
        tasks = args.tasks.split(",")
    sizes = (5, 20) if args.quick else SIZES
    if args.sizes:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    chosen = args.norms.split(",")
    seeds = (0,) if args.quick else SEEDS
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            modality = "image" if task in IMAGE_TASKS else "text"
            folder = build_task(task, Path(tmp) / task, POOL[modality], TEST[task], seed=0)
            variants = args.variants.split(",") if modality == "image" else ["-"]
            for variant in variants:
                t = time.perf_counter()
                x, y, test = features(task, folder, variant, args.image_size)
                print(f"{task} {variant}: features {x.shape} in {time.perf_counter() - t:.0f}s")
                norms = chosen if variant in ("crop", "-") else ["none"]
                norms = chosen if len(variants) == 1 else norms
                for norm in norms:
                    for n in sizes:
                        for seed in seeds:
                            t = time.perf_counter()
                            idx = draw(y, n, seed)
                            tab = tables(x[idx], y[idx], test, norm, seed)
                            row = {"task": task, "variant": variant, "norm": norm, "n": n}
                            row |= {"seed": seed, "tables": tab}
                            row["recipes"] = {k: score(tab, r) for k, r in RECIPES.items()}
                            row["seconds"] = time.perf_counter() - t
                            rows.append(row)
                        mean = np.mean(
                            [r["recipes"]["cv-fine-strong-refit"] for r in rows[-len(seeds) :]]
                        )
                        print(f"  {norm} n={n}: cv-fine-strong-refit {mean:.3f}", flush=True)
                    save(args.out, rows, started)
    save(args.out, rows, started)
    summarise(rows)


def save(path: str, rows: list[dict], started: float) -> None:
    out = {
        "benchmark": "recipe_ablation",
        "machine": machine_info(),
        "cs": CS,
        "recipes": {k: list(map(str, v)) for k, v in RECIPES.items()},
        "rows": rows,
        "seconds": time.perf_counter() - started,
    }
    write_atomic(Path(path), json.dumps(out, indent=1))


KEY = {  # the README's rows: what 0.1.0 did, what is default now, and one change at a time
    "0.1.0: std, C on val (4 values), ties strong, no refit": (
        "std",
        "val-coarse-strong-norefit (0.1.0)",
    ),
    "0.1.0 + refit on train+val": ("std", "val-coarse-strong-refit"),
    "no standardisation, C on val, refit": ("none", "val-coarse-strong-refit"),
    "L2-normalised, 5-fold CV (11 values), ties weak, refit": ("l2", "cv-fine-weak-refit"),
    "standardised, 5-fold CV (11 values), ties weak, refit": ("std", "cv-fine-weak-refit"),
    "raw, 5-fold CV (11 values), ties strong, refit": ("none", "cv-fine-strong-refit"),
    "**default: raw, 5-fold CV (11 values), ties weak, refit**": ("none", "cv-fine-weak-refit"),
}


def markdown(rows: list[dict]) -> str:
    """The README's table: test accuracy per recipe and N, mean over the tasks and seeds
    measured (image tasks at the ``crop`` preprocessing), and crop vs full per task."""
    sizes = sorted({r["n"] for r in rows})
    tasks = sorted({r["task"] for r in rows})
    out = [
        f"Mean test accuracy over {', '.join(tasks)} and {len({r['seed'] for r in rows})} seeds",
        "",
        "| recipe | " + " | ".join(f"N={n}" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for label, (norm, recipe) in KEY.items():
        vals = []
        for n in sizes:
            per_task = [
                np.mean(
                    [
                        r["recipes"][recipe]
                        for r in rows
                        if r["task"] == t
                        and r["n"] == n
                        and r["norm"] == norm
                        and r["variant"] in ("crop", "-")
                    ]
                )
                for t in tasks
                if any(r["task"] == t and r["n"] == n and r["norm"] == norm for r in rows)
            ]
            vals.append(f"{np.mean(per_task):.3f}" if per_task else "")
        out.append(f"| {label} | " + " | ".join(vals) + " |")
    out += [
        "",
        "| image preprocessing (default recipe) | " + " | ".join(f"N={n}" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for t in tasks:
        for v in ("crop", "full"):
            cell = [
                [
                    r["recipes"]["cv-fine-weak-refit"]
                    for r in rows
                    if r["task"] == t and r["n"] == n and r["norm"] == "none" and r["variant"] == v
                ]
                for n in sizes
            ]
            if all(cell):
                out.append(f"| {t}, {v} | " + " | ".join(f"{np.mean(c):.3f}" for c in cell) + " |")
    return "\n".join(out) + "\n"


def summarise(rows: list[dict]) -> None:
    """Mean test accuracy per recipe, normalisation and preprocessing, over tasks."""
    import collections

    by: dict[tuple, list[float]] = collections.defaultdict(list)
    for r in rows:
        for k, v in r["recipes"].items():
            by[(r["task"], r["variant"], r["norm"], r["n"], k)].append(v)
    print("\nrecipe x normalisation, mean over tasks (crop / text), per N")
    tasks = sorted({r["task"] for r in rows})
    sizes = sorted({r["n"] for r in rows})
    for norm in ("none", "std", "l2"):
        for k in RECIPES:
            vals = []
            for n in sizes:
                cell = [
                    np.mean(by[(t, v, norm, n, k)])
                    for t in tasks
                    for v in ("crop", "-")
                    if by.get((t, v, norm, n, k))
                ]
                vals.append(np.mean(cell) if cell else float("nan"))
            print(f"{norm:5s} {k:36s} " + " ".join(f"{v:.3f}" for v in vals))
    print("\npreprocessing (norm none and std, cv-fine-strong-refit), image tasks")
    for t in tasks:
        for norm in ("none", "std"):
            for v in ("crop", "full"):
                vals = [
                    np.mean(by.get((t, v, norm, n, "cv-fine-strong-refit"), [np.nan]))
                    for n in sizes
                ]
                print(f"{t:10s} {norm:5s} {v:5s} " + " ".join(f"{x:.3f}" for x in vals))


if __name__ == "__main__":
    main()
