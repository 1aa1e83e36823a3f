"""``headstart.compare``: does the pre-trained model earn its place?

Every strategy (baselines with no pre-training, the architecture from scratch, feature
extraction, fine-tuning) is trained on the same splits for each seed, optionally at several
numbers of labelled examples per class (``shots``), and scored on one fixed test split.
Each seed re-draws the train/validation split from the non-test pool (unless the data came
with its own validation split), so the intervals cover the split as well as the training randomness.

The **transfer gain** of a transfer strategy is its test accuracy minus that of the best
non-transfer strategy, paired by seed (same split, same shots). Its 95% interval is a
Student-t interval over seeds (with one seed: a normal interval over the paired per-item
correctness of the test set). A gain whose interval does not lie above zero is a
**negative-transfer verdict**: transfer is not better than the baseline beyond the noise.

Outputs under ``out``: ``compare.json``, ``report.html``, and ``runs/<strategy>/seed<s>-<shots>/``
holding each run's ``metrics.json``, ``history.json``, ``predictions.csv`` and ``run.json``.
A run whose folder already holds a ``run.json`` with the same key (data, strategy, seed,
shots, options, version) is reused, not recomputed; extraction reuses the feature cache, so
extra seeds and shot counts on the extract path cost no forward passes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart._fit import _predictions_csv, auto_pick, fit, input_paths, load_data, resolve_spec
from headstart._io import MARKER, atomic_dir, atomic_write_json, atomic_write_text, check_out
from headstart._options import FitOptions, RunOptions, method_config, options_dict
from headstart._progress import say
from headstart._version import __version__
from headstart.cache._store import FeatureStore
from headstart.data._dataset import LabeledData, stratified_split
from headstart.evaluate._stats import mean_ci, paired_ci
from headstart.methods import kind_of, list_methods
from headstart.methods._base import TRAINS_BACKBONE

DEFAULT_STRATEGIES = ("baseline", "scratch", "extract", "finetune")
Shots = int | str  # examples per class, or "all"


@dataclass
class CompareResult:
    """What :func:`compare` returns: the ``compare.json`` content and where it was written."""

    report: dict[str, Any]
    out: Path | None = None

    @property
    def verdict(self) -> dict[str, Any]:
        return self.report["verdict"]

    @property
    def negative(self) -> bool:
        return self.report["verdict"]["status"] == "negative"

    def summary(self, strategy: str, shots: Shots = "all") -> dict[str, Any]:
        for row in self.report["summary"]:
            if row["strategy"] == strategy and row["shots"] == shots:
                return row
        raise KeyError(f"no summary for {strategy!r} at shots={shots!r}")


def expand_strategies(strategies: str | Sequence[str], modality: str) -> list[str]:
    """``"baseline"`` becomes the modality's registered baselines; names of methods that do
    not exist or do not apply to ``modality`` fail with the choices."""
    names = (
        [s.strip() for s in strategies.split(",")] if isinstance(strategies, str) else strategies
    )
    baselines = [m.name for m in list_methods(kind="baseline", modality=modality)]
    known = [m.name for m in list_methods(modality=modality)]
    out: list[str] = []
    for name in names:
        for s in baselines if name == "baseline" else (name,):
            if s not in known:
                raise ValueError(
                    f"unknown strategy {s!r} for {modality} data; choose from "
                    f"baseline, {', '.join(known)}"
                )
            if s not in out:
                out.append(s)
    if not out:
        raise ValueError("no strategies to compare")
    return out


def parse_shots(shots: str | Sequence[Shots] | None) -> list[Shots]:
    """``"1,5,all"`` or ``[1, 5, "all"]`` -> ``[1, 5, "all"]`` (ascending, ``"all"`` last)."""
    if shots is None:
        return ["all"]
    raw = shots.split(",") if isinstance(shots, str) else list(shots)
    counts: set[int] = set()
    want_all = False
    for v in raw:
        v = str(v).strip().lower()
        if v == "all":
            want_all = True
        elif v.isdigit() and int(v) > 0:
            counts.add(int(v))
        elif v:
            raise ValueError(f"shots must be positive integers or 'all', not {v!r}")
    out: list[Shots] = sorted(counts)
    return [*out, "all"] if want_all or not out else out


def resplit(data: LabeledData, seed: int, val: float, test: float) -> LabeledData:
    """The same test split; train/validation re-drawn (stratified) from the rest with
    ``seed``. Data that named its own validation split is returned as is."""
    if data.val_given:
        return data
    pool = np.flatnonzero(data.split != "test")
    split = data.split.copy()
    fraction = val if data.split_given else val / (1 - test)  # of the pool, as read_data did
    split[pool] = stratified_split(data.labels[pool], val=fraction, test=0.0, seed=seed)
    return dataclasses.replace(data, split=split, skipped=[])


def take_shots(data: LabeledData, shots: Shots, seed: int) -> LabeledData:
    """Keep ``shots`` training examples per class (fewer where a class has fewer), drawn
    with ``seed``; the rest of the training split is set aside (split ``"unused"``)."""
    if shots == "all":
        return data
    rng = np.random.default_rng(seed)
    split = data.split.astype(object)  # a copy wide enough for "unused"
    train = data.split == "train"
    for c in range(len(data.classes)):
        idx = np.flatnonzero(train & (data.labels == c))
        split[rng.permutation(idx)[int(shots) :]] = "unused"
    return dataclasses.replace(data, split=split.astype(str), skipped=[])


def compare(
    data: str | os.PathLike[str] | LabeledData,
    out: str | os.PathLike[str] | None = None,
    strategies: str | Sequence[str] = DEFAULT_STRATEGIES,
    seeds: int | Sequence[int] = 3,
    shots: str | Sequence[Shots] | None = None,
    options: FitOptions | None = None,
    store: FeatureStore | None = None,
    command: str | None = None,
    **kwargs: Any,
) -> CompareResult:
    """Train every strategy on the same splits for each seed (and shot count), and decide
    whether transfer beats the best non-transfer strategy beyond the noise.

    Args:
        data: a dataset path (as for :func:`headstart.fit`) or a :class:`LabeledData`.
        out: output folder (``compare.json``, ``report.html``, ``runs/``); finished runs in
            it are reused.
        strategies: registered method names (``headstart methods``: ``extract``,
            ``finetune``, ``scratch``, ``bitfit``, ...), and ``baseline`` for the
            modality's registered baselines (``tfidf``; ``pixels``, ``small_cnn``).
        seeds: how many seeds (counting up from ``options.seed``), or the seeds themselves.
        shots: labelled examples per class in the training split, e.g. ``"5,20,all"``.
        options: :class:`FitOptions` for the transfer and scratch runs (model, layer, epochs,
            image size...); its fields may also be given as keyword arguments.
        store: the feature cache (default: the user cache).
        command: the command line to record for reproduction (the CLI passes its own).
    """
    opts = dataclasses.replace(options or FitOptions(), **kwargs)
    started = time.perf_counter()
    if out is not None:  # refuse a destructive --out before reading anything
        check_out(out, [data.source if isinstance(data, LabeledData) else data])
    data = load_data(data, opts)
    if out is not None:
        check_out(out, input_paths(data))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / MARKER).touch()  # ours from now on: later compares may add to it
    names = expand_strategies(strategies, data.modality)
    seed_list = list(range(opts.seed, opts.seed + seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise ValueError("seeds must name at least one seed")
    shot_list = parse_shots(shots)
    store = store if store is not None else FeatureStore(opts.cache_dir, engine=opts.engine)
    if opts.model == "auto" and any(kind_of(s) != "baseline" for s in names):
        opts, _ = auto_pick(data, opts, store)
    spec = resolve_spec(data, opts)
    opts = dataclasses.replace(opts, model=spec.name, resume=False)
    out_dir = Path(out) if out is not None else None
    if spec.extra.get("frozen"):  # a frozen feature extractor: nothing to train
        kept = [n for n in names if n not in TRAINS_BACKBONE]
        if kept and len(kept) < len(names):  # only those asked: each stops with the reason
            dropped = ", ".join(n for n in names if n not in kept)
            say(f"{spec.name} is frozen (extract only): not run: {dropped}")
            names = kept

    quiet = dataclasses.replace(data, skipped=[])  # skipped inputs are reported once, here
    runs: list[dict[str, Any]] = []
    for seed in seed_list:
        seeded = resplit(quiet, seed, opts.val, opts.test)
        for k in shot_list:
            subset = take_shots(seeded, k, seed)
            for strategy in names:
                runs.append(_run(subset, strategy, seed, k, opts, store, out_dir))

    report = summarise(runs, names, shot_list)
    report = {
        "kind": "compare",
        "headstart_version": __version__,
        "source": data.source,
        "modality": data.modality,
        "classes": list(data.classes),
        "counts": resplit(data, seed_list[0], opts.val, opts.test).counts(),
        "skipped": [dataclasses.asdict(s) for s in data.skipped],
        "model": spec.name,
        "weights": spec.weights.describe() if opts.weights is None else f"local: {opts.weights}",
        "layer": opts.layer,
        "strategies": names,
        "kinds": {s: kind_of(s) for s in names},
        "seeds": seed_list,
        "shots": shot_list,
        "split_given": data.split_given,
        **report,
        "options": options_dict(opts),
        # the runs' own time (a reused run counts what it cost when it ran), and this call's
        "seconds": float(sum(r["seconds"] for r in runs)),
        "wall_seconds": time.perf_counter() - started,
        "command": command or _command(data.source, out, names, seed_list, shot_list, opts),
        "environment": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
        },
    }
    _announce(report["verdict"])
    result = CompareResult(report)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "compare.json", report)
        _write_report(out_dir)
        result.out = out_dir
    return result


def _run_key(data: LabeledData, strategy: str, seed: int, shots: Shots, opts: FitOptions) -> str:
    h = hashlib.sha1()
    for part in (data.keys, data.labels.tolist(), data.split.tolist()):
        h.update(json.dumps(part).encode())
    # what changes this run's result: its method's config, and the run options (a
    # baseline uses no source model, so those do not count for it)
    skip = {"strategy", "seed", "cache_dir", "resume"}
    if kind_of(strategy) == "baseline":
        skip |= {"model", "layer", "weights", "image_size"}
    everything = options_dict(opts)
    run = {f.name: everything[f.name] for f in dataclasses.fields(RunOptions) if f.name not in skip}
    relevant = {"run": run, "method": dataclasses.asdict(method_config(opts, strategy))}
    payload = [__version__, strategy, seed, shots, relevant]
    h.update(json.dumps(payload, sort_keys=True, default=str).encode())
    return h.hexdigest()


def run_dir_name(strategy: str, seed: int, shots: Shots) -> str:
    return f"runs/{strategy}/seed{seed}-{'all' if shots == 'all' else f'{shots}shot'}"


def _run(
    data: LabeledData,
    strategy: str,
    seed: int,
    shots: Shots,
    opts: FitOptions,
    store: FeatureStore,
    out: Path | None,
) -> dict[str, Any]:
    """One (strategy, seed, shots) run: reused from ``out`` when its key matches."""
    key = _run_key(data, strategy, seed, shots, opts)
    rel = run_dir_name(strategy, seed, shots)
    if out is not None and (out / rel / "run.json").is_file():
        record = json.loads((out / rel / "run.json").read_text())
        if record.get("key") == key:
            say(f"{strategy}, seed {seed}, shots {shots}: reused ({record['accuracy']:.3f})")
            return {**record, "reused": True}
    t = time.perf_counter()
    r = fit(data, options=dataclasses.replace(opts, strategy=strategy, seed=seed), store=store)
    metrics, history, logits = r.metrics, r.history, r.test_logits
    seconds = time.perf_counter() - t
    assert logits is not None
    y = data.labels[data.indices("test")]
    test = metrics["splits"]["test"]
    record = {
        "key": key,
        "strategy": strategy,
        "kind": kind_of(strategy),
        "seed": seed,
        "shots": shots,
        "n_train": len(data.indices("train")),
        "accuracy": test["accuracy"],
        "macro_f1": test["macro_f1"],
        "seconds": seconds,
        "dir": rel,
        "correct": (logits.argmax(1) == y).astype(int).tolist(),
    }
    say(f"{strategy}, seed {seed}, shots {shots}: test accuracy {record['accuracy']:.3f}")
    if out is not None:
        _write_run(out / rel, metrics, history, data, logits, record)
    return {**record, "reused": False}


def _write_run(
    final: Path,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    data: LabeledData,
    logits: np.ndarray,
    record: dict[str, Any],
) -> None:
    with atomic_dir(final) as tmp:
        atomic_write_json(tmp / "metrics.json", metrics)
        atomic_write_json(tmp / "history.json", history)
        atomic_write_text(tmp / "predictions.csv", _predictions_csv(data, logits))
        atomic_write_json(tmp / "run.json", record)


def summarise(
    runs: Sequence[dict[str, Any]], strategies: Sequence[str], shots: Sequence[Shots]
) -> dict[str, Any]:
    """Per-strategy intervals, transfer gains and the verdict, from the run records
    (each with ``strategy``, ``seed``, ``shots``, ``accuracy``, ``macro_f1``, ``seconds``,
    ``n_train`` and per-test-item ``correct``). A pure function of the records."""
    by = {(r["strategy"], r["shots"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    summary = []
    for k in shots:
        for s in strategies:
            rs = [by[(s, k, seed)] for seed in seeds]
            summary.append(
                {
                    "strategy": s,
                    "kind": kind_of(s),
                    "shots": k,
                    "n_train": int(np.mean([r["n_train"] for r in rs])),
                    "runs": len(rs),
                    "accuracy": mean_ci([r["accuracy"] for r in rs], bounds=(0, 1)),
                    "macro_f1": mean_ci([r["macro_f1"] for r in rs], bounds=(0, 1)),
                    "seconds": mean_ci([r["seconds"] for r in rs]),
                }
            )
    gains = []
    for k in shots:
        rows = [row for row in summary if row["shots"] == k]
        others = [row for row in rows if row["kind"] != "transfer"]
        if not others:
            continue
        best = max(others, key=lambda row: row["accuracy"]["mean"])["strategy"]
        for row in rows:
            if row["kind"] == "transfer":
                gains.append(_gain(row["strategy"], best, k, by, seeds))
    brief = [
        {k: r[k] for k in ("strategy", "seed", "shots", "n_train", "accuracy", "macro_f1")}
        | {"seconds": r["seconds"], "reused": r.get("reused", False), "dir": r["dir"]}
        for r in runs
    ]
    return {
        "runs": brief,
        "summary": summary,
        "gains": gains,
        "verdict": verdict(gains, shots[-1], strategies),
        "best": _best_run(runs, shots[-1]),
    }


def _gain(
    strategy: str, versus: str, shots: Shots, by: dict[tuple, dict[str, Any]], seeds: list[int]
) -> dict[str, Any]:
    if len(seeds) > 1:
        diffs = [
            by[(strategy, shots, s)]["accuracy"] - by[(versus, shots, s)]["accuracy"] for s in seeds
        ]
        gain = mean_ci(diffs)
    else:
        s = seeds[0]
        gain = paired_ci(by[(strategy, shots, s)]["correct"], by[(versus, shots, s)]["correct"])
    interval = f"{gain['mean']:+.3f} (95% CI {gain['lo']:+.3f} to {gain['hi']:+.3f})"
    if gain["lo"] > 0:
        status, detail = "positive", f"{strategy} beats {versus} by {interval}"
    elif gain["hi"] < 0:
        status, detail = "negative", f"{strategy} is worse than {versus}: {interval}"
    else:
        status = "negative"
        detail = f"{strategy} is not better than {versus} beyond the noise: {interval}"
    return {
        "strategy": strategy,
        "shots": shots,
        "versus": versus,
        "gain": gain,
        "verdict": status,
        "detail": detail,
    }


def verdict(
    gains: Sequence[dict[str, Any]], shots: Shots, strategies: Sequence[str]
) -> dict[str, Any]:
    """The headline at ``shots``: the transfer strategy whose gain over the best
    non-transfer one has the highest lower bound; ``status`` is ``"positive"`` (that bound
    is above zero), ``"negative"`` or ``"not compared"``."""
    at = [g for g in gains if g["shots"] == shots]
    if not at:
        return {
            "status": "not compared",
            "message": "Transfer was not compared: run at least one transfer strategy "
            "(extract, finetune) and one without pre-training (baseline, scratch).",
            "advice": [],
        }
    # The strategy most surely better: the highest lower bound of the gain's interval.
    g = max(at, key=lambda g: (g["gain"]["lo"], g["gain"]["mean"]))
    shot_text = "with all training data" if shots == "all" else f"at {shots} examples per class"
    if g["verdict"] == "positive":
        return {
            "status": "positive",
            "strategy": g["strategy"],
            "versus": g["versus"],
            "gain": g["gain"],
            "message": f"Transfer helps {shot_text}: {g['detail']}.",
            "advice": [],
        }
    advice = []
    if g["strategy"] == "extract" and "finetune" not in strategies:
        advice.append("Fine-tune instead of extracting features (--strategies finetune).")
    advice.append(
        "Try another cut layer or source model: `headstart rank DATA --layers auto` scores "
        "the candidates in seconds."
    )
    if g["gain"]["hi"] < 0:
        advice.append(
            "The source features hurt here: check how far the domains are apart "
            "(`headstart shift`)."
        )
    advice.append(
        f"Or keep the baseline {g['versus']}: it is as accurate and needs no pre-training."
    )
    return {
        "status": "negative",
        "strategy": g["strategy"],
        "versus": g["versus"],
        "gain": g["gain"],
        "message": f"Negative transfer {shot_text}: {g['detail']}.",
        "advice": advice,
    }


def _best_run(runs: Sequence[dict[str, Any]], shots: Shots) -> dict[str, Any] | None:
    at = [r for r in runs if r["shots"] == shots]
    transfer = [r for r in at if kind_of(r["strategy"]) == "transfer"] or at
    if not transfer:
        return None
    r = max(transfer, key=lambda r: (r["accuracy"], -r["seed"]))
    return {k: r[k] for k in ("strategy", "seed", "shots", "dir")}


def _announce(v: dict[str, Any]) -> None:
    if v["status"] == "negative":
        say(f"[bold red]warning: negative transfer[/]: {v['message']}")
        for a in v["advice"]:
            say(f"  - {a}")
    else:
        say(f"[bold]{v['status']}[/]: {v['message']}")


def _command(source: str, out: Any, strategies, seeds, shots, opts: FitOptions) -> str:
    """The ``headstart compare`` command line that reproduces this comparison."""
    import shlex

    from headstart._reproduce import cli_words

    given = dataclasses.replace(opts, strategy=FitOptions().strategy, resume=False)
    words, api_only = cli_words(given, FitOptions())
    head = ["headstart", "compare", str(source), "--strategies", ",".join(strategies)]
    runs = ["--seeds", str(len(seeds)), "--shots", ",".join(str(k) for k in shots)]
    line = shlex.join([*head, *runs, *words, "--out", str(out or "OUT")])
    if api_only:
        line += "  # Python API only, not settable here: " + ", ".join(api_only)
    return line


def _write_report(out: Path) -> None:
    try:
        from headstart.evaluate._report import write_compare_report
    except ImportError:  # pragma: no cover - the report module is optional during development
        return
    write_compare_report(out)


__all__ = [
    "DEFAULT_STRATEGIES",
    "CompareResult",
    "compare",
    "expand_strategies",
    "kind_of",
    "parse_shots",
    "resplit",
    "summarise",
    "take_shots",
    "verdict",
]
