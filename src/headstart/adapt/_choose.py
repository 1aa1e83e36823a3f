"""Scoring every candidate without target labels, and the label-free choice.

Each candidate's probabilities on the held-out source validation rows and on the
unlabelled target go through every validator of :mod:`headstart.adapt._validators`.
The choice uses one of them (``validator``, information maximisation by default): the
best-scoring candidate wins only if it beats ``source_only`` by more than twice the
bootstrap standard error of the difference; otherwise ``source_only`` is kept, and
the result says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from headstart.adapt import _validators as v

VALIDATORS: dict[str, str] = {
    "rv": "reverse validation: a classifier taught by the target predictions, on source rows",
    "im": "information maximisation H(mean p) - mean H(p) on the target",
    "snd": "soft neighbourhood density of the target predictions",
    "entropy": "minus the mean target prediction entropy",
    "iwcv": "importance-weighted source validation log-likelihood",
    "dev": "deep embedded validation (IWCV with a control variate)",
}
SND_ROWS = 1000  # SND is O(N^2): scored on a seeded subset of the target this large
BOOTSTRAP = 100


@dataclass(frozen=True)
class Scored:
    """A candidate's probabilities: ``val`` on source validation rows, ``target``; and
    ``rv_hits``, its reverse-validation hit per source validation row."""

    val: np.ndarray
    target: np.ndarray
    rv_hits: np.ndarray | None = None


def _score(name: str, s: Scored, yv: np.ndarray, wv: np.ndarray, snd_rows: np.ndarray) -> float:
    if name == "rv":
        return float(s.rv_hits.mean()) if s.rv_hits is not None else float("nan")
    if name == "im":
        return v.information_maximization(s.target)
    if name == "snd":
        return v.snd(s.target[snd_rows])
    if name == "entropy":
        return v.target_entropy(s.target)
    if name == "iwcv":
        return v.iwcv(s.val, yv, wv)
    if name == "dev":
        return v.dev(s.val, yv, wv)
    raise ValueError(f"unknown validator {name!r}; choose from {', '.join(VALIDATORS)}")


def score_all(
    scored: Mapping[str, Scored], yv: np.ndarray, wv: np.ndarray, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Every validator on every candidate: ``{candidate: {validator: score}}`` plus its
    source validation accuracy (``source_val_accuracy``)."""
    n_t = len(next(iter(scored.values())).target)
    snd_rows = np.sort(np.random.default_rng(seed).permutation(n_t)[:SND_ROWS])
    out: dict[str, dict[str, float]] = {}
    for name, s in scored.items():
        row = {
            k: _score(k, s, yv, wv, snd_rows) if n_t >= 2 or k != "snd" else float("nan")
            for k in VALIDATORS
        }
        row["source_val_accuracy"] = (
            float((s.val.argmax(1) == yv).mean()) if len(yv) else float("nan")
        )
        out[name] = row
    return out


def bootstrap_gain_se(
    a: Scored, b: Scored, validator: str, yv: np.ndarray, wv: np.ndarray, seed: int = 0
) -> float:
    """Bootstrap standard error of ``score(a) - score(b)`` for ``validator``: target rows
    (and source validation rows) resampled with replacement, the same draw for both."""
    rng = np.random.default_rng(seed)
    n_t, n_v = len(a.target), len(a.val)
    diffs = []
    for _ in range(BOOTSTRAP):
        it = rng.integers(0, n_t, min(n_t, SND_ROWS) if validator == "snd" else n_t)
        iv = rng.integers(0, n_v, n_v)
        ra, rb = (
            Scored(s.val[iv], s.target[it], None if s.rv_hits is None else s.rv_hits[iv])
            for s in (a, b)
        )
        every = np.arange(len(it))
        if validator in ("iwcv", "dev") and wv[iv].sum() <= 0:
            continue
        diffs.append(
            _score(validator, ra, yv[iv], wv[iv], every)
            - _score(validator, rb, yv[iv], wv[iv], every)
        )
    return float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("inf")


def choose(
    scores: Mapping[str, Mapping[str, float]],
    scored: Mapping[str, Scored],
    validator: str,
    yv: np.ndarray,
    wv: np.ndarray,
    eligible: Callable[[str], bool] = lambda name: True,
    seed: int = 0,
) -> dict[str, Any]:
    """The label-free choice among the ``eligible`` candidates: ``chosen``, ``best`` (the
    top scorer), its ``gain`` over ``source_only``, the ``gain_se`` and a ``message``.

    ``validator="im+rv"`` (the default of :func:`~headstart.adapt.adapt`): information
    maximisation among the candidates whose reverse validation is no worse than
    ``source_only``'s (``gated_out`` lists the others). IM alone rewards confident,
    balanced target predictions even when they are wrong; RV catches those, since a
    classifier taught by wrong target labels fails on the labelled source."""
    if validator not in (*VALIDATORS, "im+rv"):
        raise ValueError(
            f"unknown validator {validator!r}; choose from im+rv, {', '.join(VALIDATORS)}"
        )
    asked, gated = validator, []
    if validator == "im+rv":
        floor = scores["source_only"]["rv"]
        gated = [n for n in scores if np.isfinite(scores[n]["rv"]) and scores[n]["rv"] < floor]
        validator = "im"
    names = [
        n for n in scores if eligible(n) and n not in gated and np.isfinite(scores[n][validator])
    ]
    best = max(names, key=lambda n: scores[n][validator])
    base = scores["source_only"][validator]
    gain = scores[best][validator] - base
    out: dict[str, Any] = {
        "validator": asked,
        "best": best,
        "gain": gain,
        "gain_se": 0.0,
        "gated_out": gated,
    }
    if best == "source_only":
        out.update(
            chosen="source_only",
            message=f"no method scores above source_only by {validator}: keeping source_only",
        )
        return out
    se = bootstrap_gain_se(scored[best], scored["source_only"], validator, yv, wv, seed)
    out["gain_se"] = se
    if gain > 2 * se:
        out.update(
            chosen=best,
            message=f"{best} beats source_only by {validator}: +{gain:.3f} (2 SE = {2 * se:.3f})",
        )
    else:
        out.update(
            chosen="source_only",
            message=(
                f"no method beats source_only by the label-free estimate ({validator}): the best, "
                f"{best}, is +{gain:.3f}, within 2 SE ({2 * se:.3f}); keeping source_only"
            ),
        )
    return out


__all__ = ["BOOTSTRAP", "VALIDATORS", "Scored", "bootstrap_gain_se", "choose", "score_all"]
