"""Analysis and markdown of ``bench/rank.py``'s results (rows in, dicts and text out)."""

from __future__ import annotations

from typing import Any

import numpy as np
from _rank_stats import (
    BASELINE,
    CASCADES,
    COMBINATIONS,
    summarise,
    task_agreements,
    test_noise,
    with_derived,
)
from run import machine_line

TRUTHS = ("extract", "finetune")
SINGLES = (
    "logme",
    "h_score",
    "shrinkage_h_score",
    "knn_loo_accuracy",
    "linear_probe_accuracy",
    "leep",
    "nce",
)
ORDER = (*SINGLES, *COMBINATIONS, *CASCADES, BASELINE)
SUBSETS = {
    "candidates": "every (model, layer) candidate",
    "models": "whole models only (full depth: the only cut where LEEP and NCE exist)",
}
MIN_CANDIDATES = 3  # fewer and a tau says nothing


def _by_task(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["task"], []).append(r)
    return out


def _seconds(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Summed seconds over a task's candidates. A fit's cost counts the extraction of the
    training features too (the scoring step had cached them for it)."""
    feats = sum(r["features_seconds"] for r in rows)
    out = {"features": feats}
    for name in rows[0]["score_seconds"]:
        out[f"score:{name}"] = sum(r["score_seconds"][name] for r in rows)
    for truth in TRUTHS:
        out[f"fit:{truth}"] = feats + sum(r["fit_seconds"][truth] for r in rows)
    return out


def analyse(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per subset: per-task agreements, seconds, and means over task groups."""
    tasks = _by_task(rows)
    out: dict[str, Any] = {}
    for subset in SUBSETS:
        per_task, seconds, noise = {}, {}, {}
        for task, trows in tasks.items():
            keep = [r for r in trows if subset == "candidates" or r["full_depth"]]
            if len(keep) < MIN_CANDIDATES:
                continue
            derived = with_derived(keep)
            per_task[task] = task_agreements(derived, TRUTHS)
            seconds[task] = _seconds(derived)
            noise[task] = test_noise(derived, TRUTHS)
        modality = {t: trows[0]["modality"] for t, trows in tasks.items()}
        groups = {
            "image": [t for t in per_task if modality[t] == "image"],
            "text": [t for t in per_task if modality[t] == "text"],
            "all": list(per_task),
        }
        out[subset] = {
            "per_task": per_task,
            "seconds": seconds,
            "mean": {
                g: summarise({t: per_task[t] for t in ts}, seconds)
                for g, ts in groups.items()
                if ts
            },
            "groups": groups,
            "noise": noise,
            "noise_mean": {g: _noise_mean([noise[t] for t in ts]) for g, ts in groups.items()},
        }
    return out


def _noise_mean(per_task: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean split-half tau and summed split-half top-1 agreement over tasks, per truth."""
    out = {}
    for truth in TRUTHS:
        got = [n[truth] for n in per_task if truth in n]
        if got:
            out[truth] = {
                "split_half_tau": float(np.mean([g["split_half_tau"] for g in got])),
                "split_half_top1": float(sum(g["split_half_top1"] for g in got)),
                "tasks": len(got),
            }
    return out


# ----------------------------------------------------------------------------- markdown


def _f(x: Any, fmt: str = ".2f") -> str:
    return "—" if x is None else format(x, fmt)


def _sorted(names: Any) -> list[str]:
    return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


def tau_table(summary: dict[str, Any], noise: dict[str, Any]) -> list[str]:
    """Mean taus, top-1 hits, regret (accuracy points) and seconds per score; last, the
    agreement of two disjoint halves of the test set (a rough noise ceiling)."""
    lines = [
        "| score | τ extract | wτ extract | top-1 extract | regret extract "
        "| τ finetune | wτ finetune | top-1 finetune | regret finetune "
        "| score s / task | ÷ extract fits | ÷ finetune fits |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in _sorted(summary):
        e = summary[name]
        cells = []
        for truth in TRUTHS:
            a = e.get(truth)
            if a is None:
                cells += ["—"] * 4
                continue
            flag = f" ({a['undefined']} const)" if a["undefined"] else ""
            cells += [
                f"{a['kendall_tau']:+.2f}{flag}",
                f"{a['weighted_tau']:+.2f}",
                f"{a['top1_hits']:.3g}/{a['tasks']}",
                f"{100 * a['regret']:.1f}",
            ]
        ratio = e["seconds_vs_fit"]
        cells += [
            _f(e["score_seconds"], ".2f"),
            _f(ratio.get("extract"), ".4f"),
            _f(ratio.get("finetune"), ".4f"),
        ]
        name_cell = name if name in SINGLES else f"*{name}*"
        lines.append(f"| {name_cell} | " + " | ".join(cells) + " |")
    if noise:
        cells = []
        for truth in TRUTHS:
            n = noise.get(truth)
            cells += (
                ["—"] * 4
                if n is None
                else [
                    f"{n['split_half_tau']:+.2f}",
                    "—",
                    f"{n['split_half_top1']:.3g}/{n['tasks']}",
                    "—",
                ]
            )
        lines.append("| (test half vs other half) | " + " | ".join(cells) + " | — | — | — |")
    return lines


def per_task_table(analysis: dict[str, Any]) -> list[str]:
    per_task = analysis["per_task"]
    tasks = list(per_task)
    head = " | ".join(f"{t} {tr[:3]}" for t in tasks for tr in TRUTHS)
    lines = [f"| score | {head} |", "|---|" + "---:|" * (2 * len(tasks))]
    names = _sorted({n for t in tasks for n in per_task[t]})
    for name in names:
        cells = []
        for t in tasks:
            for tr in TRUTHS:
                a = per_task[t].get(name, {}).get(tr)
                sd = analysis["noise"].get(t, {}).get(tr, {}).get("score_tau_sd", {}).get(name)
                cell = "—" if a is None else _f(a["kendall_tau"], "+.2f")
                cells.append(cell if sd is None or a is None else f"{cell} ±{sd:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def candidate_table(rows: list[dict[str, Any]]) -> list[str]:
    short = ("logme", "h", "shr-h", "knn", "probe", "leep", "nce")
    lines = [
        "| model | layer | dim | features s | "
        + " | ".join(short)
        + " | extract acc | finetune acc | extract fit s | finetune fit s |",
        "|---|---|---:|---:|" + "---:|" * (len(short) + 4),
    ]
    for r in rows:
        vals = [_f(r["scores"].get(n), ".3f") for n in SINGLES]
        lines.append(
            f"| {r['model']} | {r['layer']} | {r['feature_dim']} | {r['features_seconds']:.1f} | "
            + " | ".join(vals)
            + f" | {r['accuracy']['extract']:.4f} | {r['accuracy']['finetune']:.4f} "
            f"| {r['fit_seconds']['extract']:.1f} | {r['fit_seconds']['finetune']:.1f} |"
        )
    return lines


def markdown(report: dict[str, Any]) -> str:
    mi, st, an = report["machine"], report["settings"], report["analysis"]
    code = report["code"]
    lines = [
        f"# Does the ranking hold?{' (quick)' if report['quick'] else ''}",
        "",
        machine_line(report),
        "",
        f"Code: git {code['git']['commit'][:10]}"
        + (
            f" + {len(code['git']['uncommitted_src_files'])} uncommitted src file(s)"
            if code["git"]["uncommitted_src_files"]
            else ""
        )
        + f", {code['source']} (digest {code['digest']}). Command: `{report['command']}`",
        "",
        f"Images: {st['train_per_class']} training and {st['test_per_class']} test images "
        f"per class at image_size={st['image_size']}; models {', '.join(st['image_models'])} "
        f"cut after {', '.join(st['image_layers'])}. Text: {st['text_train']} training and "
        f"{st['text_test']} test snippets. `fit` keeps {st['val']:.0%} of training for "
        f"validation; scores see the rest. Extract: {st['extract'] or 'defaults'} "
        f"(logistic-regression head). Finetune: {st['finetune']} (head first on cached "
        "features, then the top blocks at lr 1e-4, early stopping on validation).",
        "",
        "τ: Kendall tau-b between score and test accuracy over a task's candidates; wτ: "
        "weighted tau (top ranks weigh more); top-1: tasks where the score's pick is a best "
        "candidate; regret: accuracy points lost by taking the score's pick (mean over tasks). "
        "score s: the score's seconds over all of a task's candidates (features excluded); "
        "÷ fits: that over the seconds of fitting every candidate (each fit counted with its "
        "training-feature extraction). *Italic*: rank averages of scores, and a cascade "
        "(`logme>probe@3`: LogME ranks all, a linear probe re-ranks LogME's top 3). "
        f"`{BASELINE}`: no score but the expensive baseline, fitting every candidate "
        "(extract) and ranking by its validation accuracy; its seconds are those fits.",
        "",
    ]
    sections = [
        ("candidates", "image", "Image tasks: every model x layer"),
        ("models", "image", "Image tasks: whole models only (LEEP and NCE need the source head)"),
        ("candidates", "text", "Text: MiniLM layers and GloVe"),
        ("candidates", "all", "All tasks (image and text)"),
    ]
    for subset, group, title in sections:
        summary = an.get(subset, {}).get("mean", {}).get(group)
        if not summary:
            continue
        tasks = an[subset]["groups"][group]
        noise = an[subset]["noise_mean"].get(group, {})
        lines += [
            f"## {title}",
            "",
            f"Tasks: {', '.join(tasks)}.",
            "",
            *tau_table(summary, noise),
            "",
        ]
    for subset in SUBSETS:
        if an.get(subset, {}).get("per_task"):
            lines += [
                f"## Kendall tau per task ({SUBSETS[subset]}; ± its bootstrap SD over "
                "resamples of the test items)",
                "",
                *per_task_table(an[subset]),
                "",
            ]
    lines += [
        "## Cost per task (seconds, summed over its candidates)",
        "",
        "| task | candidates | train features | extract fits | finetune fits |",
        "|---|---:|---:|---:|---:|",
    ]
    for task, s in an.get("candidates", {}).get("seconds", {}).items():
        count = sum(r["task"] == task for r in report["rows"])
        lines.append(
            f"| {task} | {count} | {s['features']:.0f} | {s['fit:extract']:.0f} "
            f"| {s['fit:finetune']:.0f} |"
        )
    lines.append("")
    for task, info in report["tasks"].items():
        rows = [r for r in report["rows"] if r["task"] == task]
        lines += [
            f"## {task}",
            "",
            f"{info['description']}; samples {info['samples']}.",
            "",
            *candidate_table(rows),
            "",
        ]
    lines += [
        "Notes:",
        "",
        "- One seed, one split per task: with "
        f"{10 * st['test_per_class']} test images per image task ({st['text_test']} for text) "
        "a difference of 1-2 accuracy points is within noise, so the real ranking is itself "
        "noisy between close candidates: the `(test half vs other half)` rows show how "
        "well two disjoint halves of the test set agree with each other.",
        "- With 3 image tasks (and 1 text task) every mean here is over very few tasks: a "
        "combination that wins here may not win elsewhere.",
        f"- Timings are on a shared machine (load average at start "
        f"{mi['loadavg_start'][0]:.1f}); scores run on one BLAS thread.",
        "",
    ]
    return "\n".join(lines)
