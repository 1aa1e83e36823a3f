"""The continual output's ``report.html``: ACC / forgetting / BWT, the task-by-step
accuracy matrix (table and chart), and which method is the right one on these frozen
features, from :func:`frozen_alternatives` (what ``prototype`` and ``slda`` score on the
very same state: both are exact functions of the state's running sums, whatever the
order of the steps, so they cost a solve, not a sequence)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from headstart.continual._state import ContinualState

TRAINED = ("naive", "replay", "ewc", "lwf")
FROZEN = ("prototype", "slda")


def frozen_alternatives(state: ContinualState, task_incremental: bool = False) -> dict[str, float]:
    """``{method: ACC}`` of ``prototype`` and ``slda`` fit on ``state`` now (every step's
    exact class sums, no training) and scored on every step's test rows, as the last row
    of the accuracy matrix would score them. A method that cannot fit the state (a class
    without examples) is left out."""
    from headstart.continual._methods import HeadError, NoConfig, SldaConfig, StepTask
    from headstart.continual._methods import prototype as fit_prototype
    from headstart.continual._methods import slda as fit_slda
    from headstart.continual._sequence import score_row

    none = np.zeros((0, state.dim), dtype=np.float32)
    task = StepTask(None, len(state.classes), len(state.classes), none, np.zeros(0, int), state)  # type: ignore[arg-type]
    out = {}
    for name, fn, config in (
        ("prototype", fit_prototype, NoConfig()),
        ("slda", fit_slda, SldaConfig()),
    ):
        try:
            head = fn(task, config).head
        except (HeadError, ValueError, np.linalg.LinAlgError):
            continue
        out[name] = float(np.mean(score_row(head, state, task_incremental)))
    return out


def choice_sentence(report: Mapping[str, Any]) -> str:
    """When ``prototype`` / ``refit`` / ``slda`` on frozen features is the best choice (for
    the run's scenario, from the benchmark), and whether it is for this run
    (``report["frozen_alternatives"]``)."""
    method, acc = report["method"], float(report["acc"])
    alt = report.get("frozen_alternatives") or {}
    rule = (
        "The backbone stays frozen in a continual step, so prototype (class means), refit "
        "(a logistic head re-fit on the memory plus the new step) and slda (streaming LDA) "
        "lose nothing a trained head would gain and cost seconds, no gradient step: they "
        "are the best choice whenever the old classes must be kept and the frozen features "
        "already separate the classes; naive, EWC and LwF keep almost none of the old "
        "classes in a class-incremental run on frozen features (bench/continual.py: Split-"
        "MNIST ACC 0.20 for all three, prototype 0.72, refit 0.79, slda 0.93, replay 0.82)."
    )
    if str(report.get("scenario", "")).startswith("domain"):
        rule = (
            "In a domain-incremental run the classes stay and only their look changes: "
            "class means pooled over the domains (prototype) and a head re-fit on the small "
            "memory (refit) lose to plain fine-tuning, while slda, whose shared covariance "
            "takes in the spread of the domains, is the best choice (bench/continual.py, "
            "rotated MNIST: prototype 0.63, refit 0.69, naive 0.74, replay 0.78, slda 0.84)."
        )
    if not alt:
        return rule
    best = max(alt, key=lambda k: alt[k])
    scores = ", ".join(f"{k} {v:.3f}" for k, v in alt.items())
    if method in alt:
        verdict = f"This run used {method}: ACC {acc:.3f} ({scores} on the same state)."
    elif alt[best] > acc + 0.01:
        verdict = (
            f"Here it is: {best} reaches ACC {alt[best]:.3f} on this very state against "
            f"{acc:.3f} for {method} ({scores}): rerun the step with --method {best}."
        )
    else:
        verdict = (
            f"Here {method} (ACC {acc:.3f}) is as good or better ({scores} on the same "
            "state): keep it."
        )
    return f"{rule} {verdict}"


def render_continual_report(report: Mapping[str, Any], chart_svg: str) -> str:
    """``report.html`` from ``continual.json``'s contents and the ``continual.svg`` chart."""
    from headstart.evaluate._report_html import (
        figure,
        hero,
        join,
        num,
        page,
        pct,
        secs,
        section,
        stat,
        table,
        tag,
    )

    tasks = report["tasks"]
    header = hero(
        "headstart continue report",
        f"{report['method']} · {report['scenario']} · {len(tasks)} steps",
        pct(report["acc"]),
        "ACC: mean test accuracy over every step after the last",
        [
            stat(num(report["forgetting"]), "forgetting"),
            stat(num(report["bwt"]), "BWT"),
            stat(len(report["classes"]), "classes"),
            stat(report["memory"]["rows"], "memory rows"),
            stat(secs(report.get("seconds")), "time"),
        ],
    )
    metrics = table(
        ["metric", "value", "what it measures"],
        [
            [
                "ACC",
                num(report["acc"]),
                "mean accuracy over every step's test rows, after the last",
            ],
            [
                "forgetting",
                num(report["forgetting"]),
                "mean drop of each old step from its best accuracy (0: none forgotten)",
            ],
            [
                "BWT",
                num(report["bwt"]),
                "mean change of each old step since it was learned (negative: forgetting)",
            ],
        ],
        numeric=[1],
    )
    cols = [f"step {j}: {','.join(t)}"[:28] for j, t in enumerate(tasks)]
    rows = []
    for i, row in enumerate(report["matrix"]):
        step = report["steps"][i]
        cells = ["" if v is None else num(v) for v in row]
        rows.append([f"{i} ({step['method']})", *cells, num(report["acc_per_step"][i])])
    matrix = table(["after step", *cols, "ACC"], rows, numeric=list(range(1, len(cols) + 2)))
    body = join(
        [
            metrics,
            tag("h3", "Accuracy after each step"),
            tag("p", report["matrix_note"]),
            matrix,
            figure(chart_svg, "task-by-step accuracy matrix (continual.svg)"),
            tag("h3", "Which method"),
            tag("p", choice_sentence(report)),
        ]
    )
    other = report.get("task_incremental") or report.get("class_incremental")
    if other:
        body = join(
            [
                body,
                tag(
                    "p",
                    f"{other['note']}: ACC {num(other['acc'])}, forgetting "
                    f"{num(other['forgetting'])}, BWT {num(other['bwt'])}.",
                ),
            ]
        )
    reproduce = join(
        [
            tag("pre", tag("code", report["command"])),
            tag("p", f"seed {report['seed']}; forward passes {report['forward_passes']}"),
        ]
    )
    sections = [
        ("continual", "Continual", section("continual", "Continual learning", body)),
        ("reproduce", "Reproduce", section("reproduce", "Reproduce", reproduce)),
    ]
    return page(
        f"headstart continue: {report['method']}",
        header,
        sections,
        "Written by headstart continue. Self-contained.",
    )


__all__ = ["choice_sentence", "frozen_alternatives", "render_continual_report"]
