"""``report.html`` of a multi-task run, from its ``metrics.json``, on the report machinery of
:mod:`headstart.evaluate` (the same page, sections, tables and charts as a fit's).

The page answers "did sharing help each task?": a banner (Δm, the tasks that lost), a
table per task of the single-task and the multi-task model's test accuracy and macro-F1
on the same rows with the difference and the negative-transfer flag, and each task's
confusion matrix and per-class scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from headstart.evaluate import _charts
from headstart.evaluate._report_html import (
    Html,
    cards,
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
from headstart.evaluate._report_sections import confusion_table, reproduce_section


def _points(a: float, b: float) -> str:
    return f"{100 * (a - b):+.1f} pts"


def verdict(metrics: Mapping[str, Any]) -> tuple[str, str]:
    """``("positive" | "negative", sentence)``: did sharing help on average, and which
    tasks lost against their single-task model."""
    lost = list(metrics["negative_transfer"])
    dm = float(metrics["delta_m"])
    if lost:
        return "negative", (
            f"Negative transfer between tasks: {', '.join(lost)} scored lower with the "
            f"shared model than alone (Δm {dm:+.4f} over all tasks). Train "
            f"{'it' if len(lost) == 1 else 'them'} as single-task models, or try another "
            "--weighting."
        )
    return "positive", (
        f"Sharing helped or held every task: Δm {dm:+.4f} (the mean relative improvement "
        "over single-task models on the same rows)."
    )


def tasks_table(metrics: Mapping[str, Any]) -> Html:
    """One row per task: single-task vs multi-task accuracy and macro-F1, Δ, the flag."""
    rows = []
    for name in metrics["tasks"]:
        t = metrics["per_task"][name]
        s, m = t["single_task"], t["multi_task"]
        flag = (
            tag("span", "negative transfer", class_="bad")
            if t["negative_transfer"]
            else tag("span", "ok", class_="good")
        )
        rows.append(
            [
                name,
                len(t["classes"]),
                t["train_labels"],
                s["n"],
                pct(s["accuracy"]),
                pct(m["accuracy"]),
                _points(m["accuracy"], s["accuracy"]),
                f"{t['relative_gain']:+.4f}",
                num(s["macro_f1"]),
                num(m["macro_f1"]),
                flag,
            ]
        )
    headers = [
        "task",
        "classes",
        "train labels",
        "test labels",
        "single-task acc.",
        "multi-task acc.",
        "Δ acc.",
        "relative gain",
        "single-task F1",
        "multi-task F1",
        "",
    ]
    return table(headers, rows, numeric=range(1, 10))


def task_section(name: str, t: Mapping[str, Any], index: int) -> Html:
    """A task's confusion matrix and per-class scores (multi-task model, test rows)."""
    m = t["multi_task"]
    if not m["n"]:
        return section(f"task-{index}", f"Task {name}", tag("p", "No labelled test row."))
    per_class = [
        [c, num(r["precision"]), num(r["recall"]), num(r["f1"]), r["support"]]
        for c, r in m["per_class"].items()
    ]
    body = join(
        [
            figure(
                _charts.confusion_svg(m["confusion"], t["classes"]),
                "Multi-task model on the test rows with this task's label: rows are the true "
                "class, columns the predicted class.",
            ),
            confusion_table(m["confusion"], t["classes"]),
            table(["class", "precision", "recall", "F1", "support"], per_class, [1, 2, 3, 4]),
        ]
    )
    lead = (
        f"{m['n']} labelled test rows; accuracy {pct(m['accuracy'])} shared vs "
        f"{pct(t['single_task']['accuracy'])} alone."
    )
    return section(f"task-{index}", f"Task {name}", body, lead)


def render_multitask_report(metrics: Mapping[str, Any], history: Sequence[Any] = ()) -> str:
    """The multi-task report as one self-contained HTML document."""
    status, sentence = verdict(metrics)
    banner = tag(
        "div",
        join([tag("span", status, class_="tag"), tag("p", sentence)]),
        class_=f"banner {status}",
    )
    summary = join(
        [
            banner,
            tasks_table(metrics),
            cards(
                [
                    ("weighting", metrics["weighting"]),
                    ("backbone", f"{metrics['model']} (frozen, cut at {metrics['layer']})"),
                    ("rows", f"{metrics['rows']['train']} train / {metrics['rows']['test']} test"),
                    ("task weights", _weights(metrics)),
                    ("data", ", ".join(map(str, metrics["data"]))),
                ]
            ),
        ]
    )
    lead = (
        "Each task scored on the same test rows by a single-task model (the same trunk with "
        "that task's head alone) and by the shared model; Δ and the relative gain are "
        "multi-task minus single-task."
    )
    sections = [
        ("summary", "Summary", section("summary", "Single-task vs multi-task", summary, lead))
    ]
    for i, name in enumerate(metrics["tasks"]):
        sections.append((f"task-{i}", name, task_section(name, metrics["per_task"][name], i)))
    sections.append(("reproduce", "Reproduce", reproduce_section(metrics)))
    stats = [
        stat(len(metrics["tasks"]), "tasks"),
        stat(len(metrics["negative_transfer"]), "tasks that lost"),
        stat(metrics["rows"]["test"], "test rows"),
        stat(secs(metrics.get("seconds", {}).get("total")), "total time"),
    ]
    header = hero(
        "headstart multi-task report",
        f"{metrics['model']} · {len(metrics['tasks'])} tasks · {metrics['weighting']}",
        f"{float(metrics['delta_m']):+.4f}",
        "Δm: mean relative improvement over single-task",
        stats,
    )
    footer = f"Written by headstart {metrics.get('headstart_version', '')}. Self-contained."
    return page(f"headstart: multi-task ({metrics['model']})", header, sections, footer)


def _weights(metrics: Mapping[str, Any]) -> str:
    w = metrics.get("task_weights")
    if not w:
        return "1 each"
    return ", ".join(f"{t} {v:.3f}" for t, v in zip(metrics["tasks"], w, strict=True))


__all__ = ["render_multitask_report", "tasks_table", "verdict"]
