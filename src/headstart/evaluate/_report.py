"""``report.html``: one self-contained page per fit (and per comparison, see
:mod:`headstart.evaluate._report_compare`) that a person would rather read than JSON.

The page has no script and no external resource: CSS inline, charts inline SVG,
thumbnails ``data:`` URIs. It opens offline by double-click.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from headstart._io import atomic_write_text
from headstart.evaluate._card import accuracy_interval
from headstart.evaluate._report_compare import render_compare_report, write_compare_report
from headstart.evaluate._report_html import Html, hero, interval, num, page, pct, secs, stat
from headstart.evaluate._report_items import normalise, read_fit_outputs
from headstart.evaluate._report_sections import (
    confusion_section,
    curves_section,
    data_section,
    mistakes_section,
    model_section,
    per_class_section,
    ranking_section,
    reproduce_section,
    summary_section,
)

REPORT = "report.html"


def fit_header(metrics: Mapping[str, Any], kicker: str = "headstart fit report") -> Html:
    """The page header: test accuracy big, its interval, macro-F1, size, model, time."""
    test = metrics["splits"].get("test", {"n": 0})
    _, n, lo, hi = accuracy_interval(test)
    stats = [
        stat(num(test.get("macro_f1")), "test macro-F1"),
        stat(n, "test examples"),
        stat(len(metrics["classes"]), "classes"),
        stat(secs(metrics.get("seconds", {}).get("total")), "total time"),
    ]
    title = f"{metrics['model']} · {metrics['strategy']}"
    if metrics.get("layer"):
        title += f" · cut at {metrics['layer']}"
    note = f"test accuracy · 95% CI {interval(lo, hi)}" if n else "no test split"
    return hero(kicker, title, pct(test.get("accuracy")), note, stats)


def render_fit_report(
    metrics: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    predictions: Sequence[Mapping[str, Any]],
    source: str | None = None,
) -> str:
    """The fit report as one HTML document, from the contents of ``metrics.json``,
    ``history.json`` and ``predictions.csv`` (rows as dicts); ``source``: the data's path."""
    preds = [normalise(r) for r in predictions]
    sections = [
        ("summary", "Summary", summary_section(metrics)),
        (
            "data",
            "Data",
            data_section(
                metrics["classes"],
                metrics.get("counts", {}),
                metrics.get("skipped", []),
                preds,
                source,
            ),
        ),
        ("model", "Model", model_section(metrics, history)),
        ("curves", "Learning curves", curves_section(history)),
        ("confusion", "Confusion", confusion_section(metrics)),
        ("per-class", "Per class", per_class_section(metrics)),
        ("mistakes", "Mistakes", mistakes_section(preds)),
    ]
    if metrics.get("ranking"):
        sections.append(("ranking", "Ranking", ranking_section(metrics["ranking"])))
    if metrics.get("adapt"):  # written by headstart adapt
        from headstart.adapt._outputs import adapt_section

        sections.insert(1, ("adapt", "Adaptation", adapt_section(metrics["adapt"])))
    sections.append(("reproduce", "Reproduce", reproduce_section(metrics)))
    title = f"headstart: {metrics['model']} ({metrics['strategy']})"
    footer = f"Written by headstart {metrics.get('headstart_version', '')}. Self-contained."
    return page(title, fit_header(metrics), sections, footer)


def write_fit_report(out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` from the fit outputs in ``out_dir``; return its path."""
    metrics, history, predictions, source = read_fit_outputs(Path(out_dir))
    path = Path(out_dir) / REPORT
    atomic_write_text(path, render_fit_report(metrics, history, predictions, source))
    return path


__all__ = [
    "REPORT",
    "render_compare_report",
    "render_fit_report",
    "write_compare_report",
    "write_fit_report",
]
