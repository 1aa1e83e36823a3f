"""How well a transferability score ranks candidates: pure functions over result rows.

A *row* is one candidate ``(model, layer)`` on one task: ``{"task", "model", "layer",
"scores": {name: value}, "score_seconds": {name: s}, "accuracy": {truth: acc}, ...}``.
Larger is better for every score and every accuracy.

* Kendall's tau-b (``scipy.stats.kendalltau``) between a score and the real accuracy over
  a task's candidates: +1 same order, 0 unrelated, -1 reversed.
* Weighted tau (``scipy.stats.weightedtau``, hyperbolic weigher, the average of the
  rankings by score and by accuracy): like tau, but a swap near the top costs more.
* Top-1 hit: the score's best candidate is a best candidate by accuracy. Where the score
  ties at the top, the hit and the regret are averaged over the tied candidates (a
  random pick among them).
* Regret: best accuracy minus the accuracy of the score's pick (0 is perfect).

A score that is constant over a task's candidates (say an H-score saturated at ``C - 1``)
ranks nothing: its taus are undefined there and count as 0 in the means (``undefined``
says how often).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import kendalltau, rankdata, weightedtau

# Combinations tried, each a rank average of its parts (Borda count: mean of the ranks
# the parts give, higher is better). Kept few on purpose: with 3-4 tasks, trying many
# would find one that fits these tasks by chance.
COMBINATIONS: dict[str, tuple[str, ...]] = {
    "logme+knn": ("logme", "knn_loo_accuracy"),
    "logme+probe": ("logme", "linear_probe_accuracy"),
    "knn+probe": ("knn_loo_accuracy", "linear_probe_accuracy"),
    "logme+shrinkage_h": ("logme", "shrinkage_h_score"),
    "feature_mean": ("logme", "shrinkage_h_score", "knn_loo_accuracy", "linear_probe_accuracy"),
    "leep+logme": ("leep", "logme"),  # whole models only: LEEP needs the source head
}
# Not a score: fit every candidate with strategy="extract" and rank by validation accuracy
# (60 images per image task), the expensive way to choose; its seconds are the fits'.
BASELINE = "fit_val_accuracy"
# Cascades: rank every candidate by a cheap score, then re-rank its top K by a probe.
CASCADES: dict[str, tuple[str, str, int]] = {
    "logme>probe@3": ("logme", "linear_probe_accuracy", 3),
}


def rank_average(columns: Sequence[Sequence[float]]) -> np.ndarray:
    """Mean over ``columns`` of each one's ranks (1 = lowest, ties averaged): ``(n,)``."""
    return np.mean([rankdata(np.asarray(c, dtype=float)) for c in columns], axis=0)


def cascade(first: Sequence[float], second: Sequence[float], top: int) -> np.ndarray:
    """Order by ``first``; its ``top`` best are moved above the rest, ordered by
    ``second``. Returns values where larger is better (ranks, ``(n,)``)."""
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    out = rankdata(a)  # 1..n
    best = np.argsort(-a, kind="stable")[:top]
    out[best] = len(a) + rankdata(b[best])  # above every other candidate
    return out


def with_derived(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of one task's rows with the combination and cascade scores (where every part
    is present on every row; their seconds are the parts' sums) and the :data:`BASELINE`
    added."""
    rows = [
        {**r, "scores": dict(r["scores"]), "score_seconds": dict(r["score_seconds"])} for r in rows
    ]

    def have(name: str) -> bool:
        return all(r["scores"].get(name) is not None for r in rows)

    for name, parts in COMBINATIONS.items():
        if rows and all(have(p) for p in parts):
            values = rank_average([[r["scores"][p] for r in rows] for p in parts])
            for r, v in zip(rows, values, strict=True):
                r["scores"][name] = float(v)
                r["score_seconds"][name] = sum(r["score_seconds"][p] for p in parts)
    if rows and all(r.get("val_accuracy", {}).get("extract") is not None for r in rows):
        for r in rows:  # baseline: fit every candidate (extract), pick by validation accuracy
            r["scores"][BASELINE] = float(r["val_accuracy"]["extract"])
            r["score_seconds"][BASELINE] = float(r["fit_seconds"]["extract"])
    for name, (a, b, top) in CASCADES.items():
        if rows and have(a) and have(b):
            values = cascade([r["scores"][a] for r in rows], [r["scores"][b] for r in rows], top)
            shortlist = set(np.argsort([-r["scores"][a] for r in rows], kind="stable")[:top])
            for i, (r, v) in enumerate(zip(rows, values, strict=True)):
                r["scores"][name] = float(v)
                r["score_seconds"][name] = r["score_seconds"][a] + (
                    r["score_seconds"][b] if i in shortlist else 0.0
                )
    return rows


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def agreement(score: Sequence[float], acc: Sequence[float]) -> dict[str, Any]:
    """Kendall tau-b, weighted tau, top-1 hit and regret of ``score`` against ``acc``."""
    s = np.asarray(score, dtype=float)
    a = np.asarray(acc, dtype=float)
    if len(s) < 2:
        raise ValueError("need at least 2 candidates")
    constant = bool(np.all(s == s[0]))
    tau = math.nan if constant else float(kendalltau(s, a).statistic)
    wtau = math.nan if constant else float(weightedtau(s, a).statistic)
    picks = np.flatnonzero(s == s.max())
    best = a.max()
    return {
        "kendall_tau": _nan_to_none(tau),
        "weighted_tau": _nan_to_none(wtau),
        "top1_hit": float(np.mean(a[picks] == best)),
        "regret": float(np.mean(best - a[picks])),
        "n": len(s),
    }


def task_agreements(
    rows: list[dict[str, Any]], truths: Sequence[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{score: {truth: agreement}}`` over one task's rows (with derived scores)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    names = sorted({k for r in rows for k in r["scores"]})
    for name in names:
        if any(r["scores"].get(name) is None for r in rows):
            continue
        for truth in truths:
            if any(r["accuracy"].get(truth) is None for r in rows):
                continue
            out.setdefault(name, {})[truth] = agreement(
                [r["scores"][name] for r in rows], [r["accuracy"][truth] for r in rows]
            )
    return out


def summarise(
    per_task: dict[str, dict[str, dict[str, dict[str, Any]]]],
    seconds: dict[str, dict[str, float]],
) -> dict[str, dict[str, Any]]:
    """Mean over tasks per score and truth. ``seconds[task]`` holds the task's summed
    ``score:<name>``, ``features``, ``fit:<truth>`` seconds over its candidates.

    Returns ``{score: {"tasks", "<truth>": {means, hits}, "score_seconds",
    "seconds_vs_fit": {truth: ratio}}}``; taus of a constant score count as 0 (and are
    counted in ``undefined``)."""
    out: dict[str, dict[str, Any]] = {}
    scores = sorted({s for t in per_task.values() for s in t})
    for name in scores:
        tasks = [t for t in per_task if name in per_task[t]]
        entry: dict[str, Any] = {"tasks": tasks}
        truths = sorted({tr for t in tasks for tr in per_task[t][name]})
        for truth in truths:
            ag = [per_task[t][name][truth] for t in tasks if truth in per_task[t][name]]
            entry[truth] = {
                "kendall_tau": float(np.mean([a["kendall_tau"] or 0.0 for a in ag])),
                "weighted_tau": float(np.mean([a["weighted_tau"] or 0.0 for a in ag])),
                "top1_hits": float(sum(a["top1_hit"] for a in ag)),
                "regret": float(np.mean([a["regret"] for a in ag])),
                "tasks": len(ag),
                "undefined": sum(a["kendall_tau"] is None for a in ag),
            }
        score_s = [seconds[t][f"score:{name}"] for t in tasks if f"score:{name}" in seconds[t]]
        entry["score_seconds"] = float(np.mean(score_s)) if score_s else None
        entry["seconds_vs_fit"] = {}
        for truth in truths:
            fit_s = [seconds[t].get(f"fit:{truth}") for t in tasks]
            if score_s and all(f for f in fit_s):
                entry["seconds_vs_fit"][truth] = float(np.sum(score_s) / np.sum(fit_s))
        out[name] = entry
    return out


def test_noise(
    rows: list[dict[str, Any]], truths: Sequence[str], boots: int = 200, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """:func:`_test_noise` without the warnings of constant resamples (NaN taus, skipped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _test_noise(rows, truths, boots, seed)


def _test_noise(
    rows: list[dict[str, Any]], truths: Sequence[str], boots: int = 200, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """How much of the real ranking is test-set noise, from each fit's per-item results.

    Per truth: ``split_half_tau``, the mean Kendall tau between the candidates' accuracies
    on two disjoint random halves of the test set (what two independent test sets of half
    the size agree on: a rough ceiling for any score), and ``split_half_top1``, how often
    the best candidate on one half is a best one on the other; ``score_tau_sd`` per score,
    the standard deviation of its tau against accuracies on bootstrap resamples of the
    test items (the same resample for every candidate). Empty where rows lack
    ``test_correct``."""
    out: dict[str, dict[str, Any]] = {}
    rng = np.random.default_rng(seed)
    names = [n for n in rows[0]["scores"] if all(r["scores"].get(n) is not None for r in rows)]
    for truth in truths:
        if any(truth not in r.get("test_correct", {}) for r in rows):
            continue
        hits = np.array([[c == "1" for c in r["test_correct"][truth]] for r in rows], dtype=float)
        n = hits.shape[1]
        halves_tau, halves_top = [], []
        sds: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(boots):
            perm = rng.permutation(n)
            a, b = hits[:, perm[: n // 2]].mean(1), hits[:, perm[n // 2 :]].mean(1)
            halves_tau.append(kendalltau(a, b).statistic)
            halves_top.append(float(np.mean(b[a == a.max()] == b.max())))
            acc = hits[:, rng.integers(0, n, n)].mean(1)
            for name in names:
                sds[name].append(kendalltau([r["scores"][name] for r in rows], acc).statistic)
        out[truth] = {
            "split_half_tau": float(np.nanmean(halves_tau)),
            "split_half_top1": float(np.mean(halves_top)),
            "score_tau_sd": {
                k: _nan_to_none(float(np.nanstd(v))) if np.isfinite(v).any() else None
                for k, v in sds.items()
            },
            "boots": boots,
        }
    return out
