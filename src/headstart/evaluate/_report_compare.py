"""The comparison report: does transfer beat the baselines, by how much, with how few
labels, and how the best run behaves (the fit-report sections reused).

Reads an out dir written by ``headstart compare``: ``compare.json`` plus one fit folder
per run (``runs/<strategy>/seed<s>-<shots>/``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from headstart._io import atomic_write_text
from headstart.evaluate import _charts
from headstart.evaluate._report_html import (
    Html,
    cards,
    figure,
    hero,
    interval,
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
from headstart.evaluate._report_items import normalise, read_fit_outputs, read_json
from headstart.evaluate._report_sections import (
    confusion_section,
    data_section,
    environment_table,
    mistakes_section,
    model_section,
    per_class_section,
)

REPORT = "report.html"


def shots_key(shots: Any) -> float:
    """Order of shot counts: numbers ascending, ``"all"`` last."""
    return math.inf if shots == "all" else float(shots)


def shots_label(shots: Any) -> str:
    return "all" if shots == "all" else f"{shots}-shot"


def points(value: Any) -> str:
    """A difference of accuracies in percentage points, signed: ``+12.3 pts``."""
    return "n/a" if value is None else f"{100 * float(value):+.1f} pts"


def gain_text(gain: Mapping[str, Any] | None) -> str:
    """``+12.3 pts [+5.1 pts, +19.5 pts]``: a gain and its 95% interval."""
    gain = gain or {}
    return f"{points(gain.get('mean'))} [{points(gain.get('lo'))}, {points(gain.get('hi'))}]"


def run_label(run: Mapping[str, Any]) -> str:
    return f"{run.get('strategy')}, seed {run.get('seed')}, {shots_label(run.get('shots'))}"


def _stat_cell(d: Mapping[str, Any] | None) -> str:
    """``mean [lo, hi]`` of an accuracy, the interval clipped to what an accuracy can be."""
    if not d:
        return "n/a"
    return f"{pct(d['mean'])} {interval(_unit(d['lo']), _unit(d['hi']))}"


def _unit(v: Any) -> float | None:
    return None if v is None else min(1.0, max(0.0, float(v)))


def _dot(kind: str) -> Html:
    colour = _charts.KIND_COLOURS.get(kind, "#6b7280")
    return Html(f'<span class="chip" style="background:{colour};color:#fff">{kind}</span>')


def _largest(compare: Mapping[str, Any]) -> Any:
    return max(compare["shots"], key=shots_key)


def verdict_banner(verdict: Mapping[str, Any]) -> Html:
    """Green for a positive verdict; amber with the word "negative" and the advice else."""
    status = "positive" if verdict.get("status") == "positive" else "negative"
    parts = [
        tag("span", status, class_="tag"),
        tag(
            "b",
            f"{verdict.get('strategy', '?')} vs. "
            f"{verdict.get('versus', '?')}: {points((verdict.get('gain') or {}).get('mean'))}",
        ),
    ]
    parts.append(tag("p", verdict.get("message", "")))
    advice = verdict.get("advice") or []
    if advice:
        parts.append(tag("ul", join(tag("li", a) for a in advice)))
    return tag("div", join(parts), class_=f"banner {status}")


def summary_section(compare: Mapping[str, Any]) -> Html:
    best = compare.get("best") or {}
    gain = (compare.get("verdict") or {}).get("gain") or {}
    tiles = cards(
        [
            ("gain, 95% interval", gain_text(gain)),
            ("best run", run_label(best)),
            ("strategies", ", ".join(compare["strategies"])),
            ("seeds, shot counts", f"{len(compare['seeds'])}, {len(compare['shots'])}"),
            ("runs", len(compare.get("runs", []))),
            ("total time", secs(compare.get("seconds"))),
        ]
    )
    body = join([verdict_banner(compare.get("verdict") or {}), tiles])
    return section("summary", "Verdict", body)


def compare_section(compare: Mapping[str, Any]) -> Html:
    """Every strategy at the largest shot count: bars with intervals, a table, the gains."""
    largest = _largest(compare)
    order = {s: i for i, s in enumerate(compare["strategies"])}
    rows = sorted(
        (r for r in compare["summary"] if r["shots"] == largest),
        key=lambda r: order.get(r["strategy"], 99),
    )
    bars = [{"label": r["strategy"], "kind": r["kind"], **r["accuracy"]} for r in rows]
    n_seeds = len(compare["seeds"])
    parts = [
        figure(
            _charts.strategy_bars_svg(bars),
            f"Mean test accuracy over {n_seeds} seed(s) at "
            f"{shots_label(largest)}; error bars: 95% interval over seeds.",
        ),
        table(
            [
                "strategy",
                "kind",
                "train examples",
                "accuracy [95% CI]",
                "macro-F1 [95% CI]",
                "seconds",
                "runs",
            ],
            [
                [
                    r["strategy"],
                    _dot(r["kind"]),
                    num(r["n_train"]),
                    _stat_cell(r["accuracy"]),
                    _f1_cell(r["macro_f1"]),
                    secs((r.get("seconds") or {}).get("mean")),
                    r["runs"],
                ]
                for r in rows
            ],
            numeric=[2, 3, 4, 5, 6],
        ),
    ]
    gains = compare.get("gains") or []
    if gains:
        parts += [
            tag("h3", "Gains"),
            table(
                ["strategy", "shots", "versus", "gain [95% CI]", "verdict", "detail"],
                [
                    [
                        g["strategy"],
                        shots_label(g["shots"]),
                        g["versus"],
                        gain_text(g["gain"]),
                        tag(
                            "span",
                            g["verdict"],
                            class_="good" if g["verdict"] == "positive" else "bad",
                        ),
                        g.get("detail", ""),
                    ]
                    for g in gains
                ],
                numeric=[1, 3],
            ),
        ]
    return section("compare", "Strategies side by side", join(parts))


def _f1_cell(d: Mapping[str, Any] | None) -> str:
    if not d:
        return "n/a"
    return f"{num(d['mean'])} [{num(_unit(d['lo']))}, {num(_unit(d['hi']))}]"


def efficiency_section(compare: Mapping[str, Any]) -> Html:
    """Accuracy against labelled examples per class, one line per strategy."""
    k = max(1, len(compare["classes"]))
    series: dict[str, list[dict[str, Any]]] = {}
    all_at = None
    for r in compare["summary"]:
        x = r["n_train"] / k if r["shots"] == "all" else float(r["shots"])
        if r["shots"] == "all":
            all_at = x
        series.setdefault(r["strategy"], []).append({"x": x, **r["accuracy"]})
    ordered = {s: series[s] for s in compare["strategies"] if s in series}
    svg = _charts.efficiency_svg(ordered, compare["kinds"], all_at)
    caption = (
        "Test accuracy against labelled training examples per class (log scale; 'all' is "
        "the full training set); bands: 95% interval over seeds. Dashed: baselines."
    )
    return section("efficiency", "Data efficiency", figure(svg, caption))


def _epoch_curve(history: Sequence[Mapping[str, Any]]) -> list[tuple[int, float]]:
    rows = [r for r in history if "epoch" in r]
    return [(i, r["val_acc"]) for i, r in enumerate(rows)]


def curves_section(out_dir: Path, compare: Mapping[str, Any]) -> Html:
    """Seed 0 at the largest shot count: transfer vs. scratch validation accuracy on one
    chart, then each run's own curves."""
    largest, seed = _largest(compare), compare["seeds"][0]
    runs = [r for r in compare["runs"] if r["seed"] == seed and r["shots"] == largest]
    overlay: dict[str, list[tuple[int, float]]] = {}
    per_run = []
    for r in runs:
        run_dir = out_dir / r["dir"]
        if not (run_dir / "history.json").is_file():
            continue
        history = read_json(run_dir / "history.json", [])
        curve = _epoch_curve(history)
        if curve and compare["kinds"].get(r["strategy"]) in ("scratch", "transfer"):
            overlay[r["strategy"]] = curve
        # epoch curves where the run has them, else its head's regularisation sweep
        svg = _charts.learning_curves_svg(history) or _charts.head_sweep_svg(history)
        if svg:
            per_run.append(figure(svg, f"{r['strategy']}, seed {seed}, {shots_label(largest)}"))
    parts = []
    if len(overlay) > 1 or any(compare["kinds"].get(s) == "scratch" for s in overlay):
        caption = (
            "Validation accuracy per epoch (stages concatenated): transfer should start "
            "higher, climb faster and end higher than training from scratch."
        )
        colours = _charts.strategy_colours(compare["strategies"], compare["kinds"])
        parts.append(figure(_charts.overlay_curves_svg(overlay, colours), caption))
    parts += per_run
    if not parts:
        parts.append(tag("p", "No learning curves were recorded for these runs."))
    lead = f"Seed {seed}, {shots_label(largest)}."
    return section("curves", "Learning curves", join(parts), lead)


def reproduce_section(compare: Mapping[str, Any]) -> Html:
    runs = sorted(
        compare.get("runs", []), key=lambda r: (r["strategy"], shots_key(r["shots"]), r["seed"])
    )
    rows = [
        [
            r["strategy"],
            r["seed"],
            shots_label(r["shots"]),
            num(r["n_train"]),
            pct(r["accuracy"]),
            num(r["macro_f1"]),
            secs(r["seconds"]),
            "yes" if r.get("reused") else "no",
            r["dir"],
        ]
        for r in runs
    ]
    parts = [
        tag("h3", "Command"),
        tag("pre", tag("code", compare.get("command") or "not recorded")),
        cards(
            [
                ("seeds", ", ".join(map(str, compare["seeds"]))),
                ("shots", ", ".join(map(shots_label, compare["shots"]))),
                ("total time", secs(compare.get("seconds"))),
            ]
        ),
        tag("h3", "Runs"),
        table(
            [
                "strategy",
                "seed",
                "shots",
                "train examples",
                "accuracy",
                "macro-F1",
                "time",
                "reused",
                "folder",
            ],
            rows,
            numeric=[1, 3, 4, 5, 6],
        ),
        tag("h3", "Environment"),
        environment_table(compare.get("environment") or {}, compare.get("headstart_version")),
    ]
    return section("reproduce", "Reproduce", join(parts))


def compare_header(compare: Mapping[str, Any]) -> Html:
    verdict = compare.get("verdict") or {}
    gain = verdict.get("gain") or {}
    stats = [
        stat(verdict.get("status", "?"), "verdict"),
        stat(len(compare["strategies"]), "strategies"),
        stat(len(compare["seeds"]), "seeds"),
        stat(len(compare["classes"]), "classes"),
        stat(secs(compare.get("seconds")), "total time"),
    ]
    title = f"{compare['model']} on {Path(str(compare.get('source', ''))).name or 'the data'}"
    note = (
        f"{verdict.get('strategy', '?')} vs. {verdict.get('versus', '?')} · 95% CI "
        f"[{points(gain.get('lo'))}, {points(gain.get('hi'))}]"
    )
    return hero("headstart compare report", title, points(gain.get("mean")), note, stats)


def render_compare_report(compare: Mapping[str, Any], out_dir: Path) -> str:
    """The comparison report as one HTML document, from ``compare.json`` and the run
    folders under ``out_dir`` (the best run's outputs fill the per-run sections)."""
    out_dir = Path(out_dir)
    best = compare.get("best") or {}
    about = "best run: " + run_label(best)
    sections = [
        ("summary", "Verdict", summary_section(compare)),
        ("compare", "Strategies", compare_section(compare)),
    ]
    if len(compare["shots"]) > 1:
        sections.append(("efficiency", "Data efficiency", efficiency_section(compare)))
    sections.append(("curves", "Learning curves", curves_section(out_dir, compare)))
    best_dir = out_dir / str(best.get("dir", ""))
    if best.get("dir") and (best_dir / "metrics.json").is_file():
        metrics, history, predictions, _ = read_fit_outputs(best_dir)
        preds = [normalise(p) for p in predictions]
        sections += [
            (
                "data",
                "Data",
                data_section(
                    compare["classes"],
                    compare["counts"],
                    compare.get("skipped", []),
                    preds,
                    compare.get("source"),
                    about,
                ),
            ),
            ("model", "Model", model_section(metrics, history, about)),
            ("confusion", "Confusion", confusion_section(metrics, about)),
            ("per-class", "Per class", per_class_section(metrics, about)),
            ("mistakes", "Mistakes", mistakes_section(preds, about)),
        ]
    sections.append(("reproduce", "Reproduce", reproduce_section(compare)))
    footer = f"Written by headstart {compare.get('headstart_version', '')}. Self-contained."
    return page(f"headstart compare: {compare['model']}", compare_header(compare), sections, footer)


def write_compare_report(out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` from ``out_dir/compare.json`` and its run folders."""
    out_dir = Path(out_dir)
    compare = read_json(out_dir / "compare.json")
    if compare is None:
        raise FileNotFoundError(f"no compare.json in {out_dir}")
    path = out_dir / REPORT
    atomic_write_text(path, render_compare_report(compare, out_dir))
    return path


__all__ = ["render_compare_report", "write_compare_report"]
