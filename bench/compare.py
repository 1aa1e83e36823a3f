"""Benchmark: ``headstart compare`` on real data: transfer gain with intervals over seeds,
and the data-efficiency curve (shots 5 / 20 / all).

Tasks (built from installed packages, see ``headstart.datasets``):

* image: Fashion-MNIST, 60 training images per class (validation carved out of them, re-drawn
  per seed) and 100 test images per class; ``efficientnet_lite0.in1k`` at 96 px against the
  raw-pixel logistic regression and a small CNN from scratch;
* text: Rotten Tomatoes, 1,000 training and 1,000 test snippets; ``minilm_l6.sbert_all_v2``
  against TF-IDF word + character n-grams with logistic regression (MiniLM from scratch is
  left to ``bench/run.py``: it is the slowest run and the weakest baseline).

Each task writes a full compare folder (``compare.json``, ``report.html``, ``runs/``) under
``WORK/<task>`` (default ``bench/.work/compare``, with the data and the feature cache);
finished runs are reused, so an interrupted benchmark resumes. The summary goes to
``OUT/compare.json`` and ``OUT/compare.md``, each task's report to
``OUT/compare-<task>-report.html`` (all written atomically).

    .venv/bin/python bench/compare.py             # about 40 minutes on 2 cores
    .venv/bin/python bench/compare.py --quick     # smoke test
    .venv/bin/python bench/compare.py --only text
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEEDS = 3
SHOTS = "5,20,all"
TASKS: dict[str, dict[str, Any]] = {
    "image": {
        "model": "efficientnet_lite0.in1k",
        # Lite0 from scratch is left to bench/run.py (0.704 at 100 images per class): slow
        # on 2 cores, and the small CNN is the stronger from-scratch reference here.
        "strategies": "baseline,extract,finetune",
        "options": {"image_size": 96, "epochs": 4, "unfreeze": 2},
        "sizes": {"train_per_class": 60, "test_per_class": 100},
    },
    "text": {
        "model": "minilm_l6.sbert_all_v2",
        # MiniLM from scratch is the slowest run and bench/run.py measures it already.
        "strategies": "baseline,extract,finetune",
        "options": {"epochs": 2, "unfreeze": 2},
        "sizes": {"train": 1000, "test": 1000},
    },
}
QUICK_SIZES = {
    "image": {"train_per_class": 12, "test_per_class": 10},
    "text": {"train": 120, "test": 100},
}


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build(task: str, data_dir: Path, sizes: dict[str, int]) -> Path:
    from headstart.datasets import fashion_mnist_folder, rotten_tomatoes_csv

    if task == "image":
        dest = data_dir / "fashion_mnist"
        if not dest.exists():
            fashion_mnist_folder(dest, **sizes)
        return dest
    dest = data_dir / "rotten_tomatoes.csv"
    if not dest.exists():
        rotten_tomatoes_csv(dest, **sizes)
    return dest


def run_task(task: str, work: Path, out: Path, quick: bool) -> dict[str, Any]:
    import headstart

    spec = TASKS[task]
    sizes = QUICK_SIZES[task] if quick else spec["sizes"]
    data = build(task, work / "data", sizes)
    options = dict(spec["options"])
    if quick:
        options["epochs"] = 1
    started = time.perf_counter()
    result = headstart.compare(
        data,
        work / task,
        model=spec["model"],
        strategies=spec["strategies"],
        seeds=2 if quick else SEEDS,
        shots="5,all" if quick else SHOTS,
        cache_dir=str(work / "cache"),
        **options,
    )
    rep = result.report
    return {
        "task": task,
        "data": str(data),
        "sizes": sizes,
        "model": rep["model"],
        "options": options,
        "wall_seconds": time.perf_counter() - started,
        # compute: every run's own time, including runs reused from an earlier invocation
        "seconds": sum(r["seconds"] for r in rep["runs"]),
        "runs_reused": sum(r["reused"] for r in rep["runs"]),
        "runs": len(rep["runs"]),
        "summary": rep["summary"],
        "gains": rep["gains"],
        "verdict": rep["verdict"],
        "report": _copy_report(work / task / "report.html", out / f"compare-{task}-report.html"),
    }


def _copy_report(src: Path, dest: Path) -> str | None:
    if not src.exists():
        return None
    write_atomic(dest, src.read_text(encoding="utf-8"))
    return dest.name


def _ci(x: dict[str, float]) -> str:
    return f"{x['mean']:.3f} [{x['lo']:.3f}, {x['hi']:.3f}]"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# compare benchmark",
        "",
        f"`{report['command']}` on {report['machine']['cpu_count']} CPUs, "
        f"{report['machine']['date']}; {report['seeds']} seeds, shots {report['shots']}. "
        "Test accuracy, mean and 95% t-interval over seeds; the gain is paired by seed.",
    ]
    for t in report["tasks"]:
        lines += [
            "",
            f"## {t['task']}: {t['model']} ({t['runs']} runs, {t['seconds'] / 60:.1f} min of "
            f"compute in all; {t['runs_reused']} reused by the last invocation)",
            "",
            "| strategy | kind | shots | train | accuracy [95% CI] | macro-F1 | s / run |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in t["summary"]:
            lines.append(
                f"| {row['strategy']} | {row['kind']} | {row['shots']} | {row['n_train']} | "
                f"{_ci(row['accuracy'])} | {row['macro_f1']['mean']:.3f} | "
                f"{row['seconds']['mean']:.1f} |"
            )
        lines += [
            "",
            "| transfer | shots | versus | gain [95% CI] | verdict |",
            "|---|---|---|---|---|",
        ]
        for g in t["gains"]:
            lines.append(
                f"| {g['strategy']} | {g['shots']} | {g['versus']} | {_ci(g['gain'])} | "
                f"{g['verdict']} |"
            )
        lines += ["", f"**Verdict**: {t['verdict']['message']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / ".work" / "compare")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 seeds, 1 epoch")
    parser.add_argument("--only", choices=sorted(TASKS), action="append")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    import torch

    import headstart

    # One torch thread: on 2 cores shared with other work, two threads on these small
    # batches spend their time waiting on each other (measured 8-50x slower).
    torch.set_num_threads(args.threads)

    out: Path = args.out
    work: Path = args.work / ("quick" if args.quick else "full")
    name = "compare-quick" if args.quick else "compare"
    previous = out / f"{name}.json"
    done = {}
    if previous.exists():
        done = {t["task"]: t for t in json.loads(previous.read_text()).get("tasks", [])}
    report: dict[str, Any] = {
        "command": "python bench/compare.py" + (" --quick" if args.quick else ""),
        "seeds": 2 if args.quick else SEEDS,
        "shots": "5,all" if args.quick else SHOTS,
        "machine": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "headstart": headstart.__version__,
        },
        "tasks": [],
    }
    for task in args.only or list(TASKS):
        print(f"== {task}", flush=True)
        done[task] = run_task(task, work, out, args.quick)
        report["tasks"] = [done[t] for t in TASKS if t in done]
        write_atomic(out / f"{name}.json", json.dumps(report, indent=2, default=str))
        write_atomic(out / f"{name}.md", markdown(report))
        print(done[task]["verdict"]["message"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
