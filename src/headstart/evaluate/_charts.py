"""Charts for the HTML reports: data in, an inline ``<svg>`` string out.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot, so no global
state and no display backend) and returns SVG ready to paste into HTML: no XML prologue,
no external reference (not even a namespace URL), text kept as text in the page's font,
and only the ids the chart refers to, prefixed with a hash of the chart (``page`` in
:mod:`._report_html` numbers them apart when one chart appears twice).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullLocator

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
TRAIN = "#9ca3af"
VAL = "#2563eb"
KIND_COLOURS = {"baseline": "#94a3b8", "scratch": "#d97706", "transfer": "#2563eb"}
SHADES = {  # one colour per strategy, a family per kind: transfer blue-green, scratch amber
    "transfer": ("#2563eb", "#059669", "#7c3aed", "#0891b2"),
    "scratch": ("#d97706", "#b45309"),
    "baseline": ("#64748b", "#94a3b8", "#334155"),
}
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "headstart",
    "font.size": 9,
    "axes.edgecolor": "#d1d5db",
    "axes.labelcolor": INK,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
}
P = ParamSpec("P")
R = TypeVar("R")
_PERCENT = FuncFormatter(lambda v, _: f"{100 * v:.0f}%")


def _themed(chart: Callable[P, R]) -> Callable[P, R]:
    """Run ``chart`` under the report's matplotlib style (rc settings apply at creation)."""

    @functools.wraps(chart)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(_RC):
            return chart(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Figure) -> str:
    """The figure as inline SVG: no prologue, no namespace URLs, page font, unique ids."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={k: None for k in ("Creator", "Date", "Format")})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text)
    text = re.sub(r"<(style|metadata)\b.*?</\1>", "", text, flags=re.S)
    text = text.replace("xlink:href=", "href=")
    text = re.sub(r"font-family:[^;\"]*", "font-family: inherit", text)
    width = re.search(r'width="([\d.]+)pt"', text)
    max_px = round(float(width.group(1)) * 4 / 3) if width else 720
    text = re.sub(r'\s(width|height)="[\d.]+pt"', "", text, count=2)
    text = text.replace("<svg", f'<svg role="img" style="max-width:{max_px}px"', 1)
    used = set(re.findall(r'(?:href="#|url\(#)([^")]+)', text))
    text = re.sub(r'\sid="([^"]+)"', lambda m: m.group(0) if m.group(1) in used else "", text)
    prefix = "c" + hashlib.sha1(text.encode()).hexdigest()[:8] + "-"
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', text)
    text = text.replace('href="#', f'href="#{prefix}').replace("url(#", f"url(#{prefix}")
    return text.strip()


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _clip(v: Any) -> float:
    return min(1.0, max(0.0, _num(v)))


def strategy_colours(names: Sequence[str], kinds: Mapping[str, str]) -> dict[str, str]:
    """A distinct colour per strategy, from its kind's family (so kinds read at a glance)."""
    used: dict[str, int] = {}
    out = {}
    for name in names:
        kind = kinds.get(name, "baseline")
        shades = SHADES.get(kind, SHADES["baseline"])
        out[name] = shades[used.get(kind, 0) % len(shades)]
        used[kind] = used.get(kind, 0) + 1
    return out


def _line(
    ax: Any, x: Sequence[float], y: Sequence[Any], colour: str, label: str, **kw: Any
) -> None:
    ax.plot(x, [_num(v) for v in y], color=colour, marker="o", ms=3.5, label=label, **kw)


def _stars(ax: Any, x: Sequence[float], y: Sequence[Any], label: str) -> None:
    style = {"ls": "none", "marker": "*", "ms": 12, "color": VAL, "markeredgecolor": "white"}
    ax.plot(x, [_num(v) for v in y], label=label, **style)


def _accuracy_axis(ax: Any, values: Sequence[Any], ylabel: str = "") -> None:
    """Percent ticks; the y range from a little under the lowest value to just over 100%."""
    low = min(_finite(values), default=0.0)
    ax.set_ylim(max(0.0, low - 0.1), 1.02)
    _style(ax, ylabel, percent=True)


def _style(ax: Any, ylabel: str = "", percent: bool = False) -> None:
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    if ylabel:
        ax.set_ylabel(ylabel)
    if percent:
        ax.yaxis.set_major_formatter(_PERCENT)


@_themed
def learning_curves_svg(history: Sequence[Mapping[str, Any]]) -> str | None:
    """Loss and accuracy per epoch, train vs. validation, every stage on one x axis with a
    dashed line at each stage boundary. ``None`` when ``history`` has no epoch rows."""
    rows = [r for r in history if "epoch" in r]
    if not rows:
        return None
    x = list(range(len(rows)))
    starts = [i for i, r in enumerate(rows) if i == 0 or r["stage"] != rows[i - 1]["stage"]]
    best = [i for i, r in enumerate(rows) if r.get("best")]
    ticks = x[:: max(1, len(x) // 10)]
    fig = _figure(8.0, 3.0)
    panels = zip(fig.subplots(1, 2), ("loss", "acc"), ("Loss", "Accuracy"), strict=True)
    for ax, key, title in panels:
        train, val = [r[f"train_{key}"] for r in rows], [r[f"val_{key}"] for r in rows]
        _line(ax, x, train, TRAIN, "train")
        _line(ax, x, val, VAL, "validation")
        _stars(ax, best, [val[i] for i in best], "kept (best)")
        for k, i in enumerate(starts):
            if k:
                ax.axvline(i - 0.5, color=MUTED, ls="--", lw=0.8)
            where = (i - 0.5 if k else x[0], 1.0)
            ax.annotate(
                rows[i]["stage"],
                where,
                xycoords=("data", "axes fraction"),
                xytext=(2, 3),
                va="bottom",
                textcoords="offset points",
                fontsize=8,
                color=MUTED,
            )
        ax.set_title(title, loc="left", pad=18)
        ax.set_xticks(ticks, [str(rows[i]["epoch"]) for i in ticks])
        ax.set_xlabel("epoch (per stage)")
        if key == "acc":
            _accuracy_axis(ax, train + val)
        else:
            _style(ax)
    ax.legend(loc="lower right", fontsize=8)
    return _svg(fig)


@_themed
def head_sweep_svg(history: Sequence[Mapping[str, Any]]) -> str | None:
    """A logistic-regression head's train / validation accuracy against its inverse
    regularisation ``C`` (log axis), the chosen ``C`` marked. ``None`` without such rows."""
    rows = sorted((r for r in history if "C" in r), key=lambda r: r["C"])
    if not rows:
        return None
    fig = _figure(4.8, 2.8)
    ax = fig.subplots()
    cs = [float(r["C"]) for r in rows]
    train, val = [r["train_acc"] for r in rows], [r["val_acc"] for r in rows]
    _line(ax, cs, train, TRAIN, "train")
    _line(ax, cs, val, VAL, "validation")
    chosen = [i for i, r in enumerate(rows) if r.get("chosen")]
    _stars(ax, [cs[i] for i in chosen], [val[i] for i in chosen], "chosen")
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(cs, [f"{c:g}" for c in cs])
    ax.set_xlabel("C (inverse regularisation strength)")
    ax.set_title("Head: accuracy by regularisation", loc="left")
    _accuracy_axis(ax, train + val)
    ax.legend(fontsize=8, loc="lower right")
    return _svg(fig)


@_themed
def confusion_svg(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """A heatmap of the confusion matrix (rows: true class, columns: predicted), coloured
    by the share of each true class, with the counts written in the cells (up to 20 classes)."""
    k = len(classes)
    share = [[v / max(1, sum(row)) for v in row] for row in matrix]
    side = min(10.0, 1.8 + 0.42 * k)
    fig = _figure(side + 1.1, side)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    turn = {"rotation": 45, "ha": "right"} if k > 4 else {}
    ax.set_xticks(range(k), classes, **turn)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for spine in ax.spines.values():
        spine.set_visible(False)
    for i, row in enumerate(matrix if k <= 20 else []):
        for j, v in enumerate(row):
            colour = "white" if share[i][j] > 0.55 else INK
            ax.text(j, i, str(v), ha="center", va="center", color=colour, fontsize=9)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, format=_PERCENT)
    bar.set_label("share of the true class")
    bar.outline.set_visible(False)
    return _svg(fig)


@_themed
def strategy_bars_svg(rows: Sequence[Mapping[str, Any]], ylabel: str = "test accuracy") -> str:
    """One bar per strategy: ``rows`` of ``{"label", "kind", "mean", "lo", "hi"}``, the
    bar at ``mean`` with a ``[lo, hi]`` error bar (clipped to [0, 1]), coloured by kind."""
    fig = _figure(max(4.0, 1.1 * len(rows) + 1.5), 3.4)
    ax = fig.subplots()
    x = list(range(len(rows)))
    means = [_num(r["mean"]) for r in rows]
    err = [
        [max(0.0, m - _clip(r["lo"])) for m, r in zip(means, rows, strict=True)],
        [max(0.0, _clip(r["hi"]) - m) for m, r in zip(means, rows, strict=True)],
    ]
    colours = [KIND_COLOURS.get(r["kind"], MUTED) for r in rows]
    style = {"ecolor": INK, "elinewidth": 1, "capsize": 4}
    ax.bar(x, means, color=colours, width=0.62, yerr=err, error_kw=style)
    for i, m in enumerate(means):
        inside = m > 0.15
        ax.text(
            i,
            m - 0.03 if inside else m + 0.02,
            f"{100 * m:.1f}%",
            ha="center",
            va="top" if inside else "bottom",
            fontsize=8,
            color="white" if inside else INK,
            fontweight="bold",
        )
    ax.set_xticks(x, [r["label"] for r in rows])
    ax.set_ylim(0, 1.02)
    _style(ax, ylabel, percent=True)
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    handles = [Patch(color=KIND_COLOURS.get(k, MUTED)) for k in kinds]
    fig.legend(handles, kinds, loc="outside upper center", ncols=len(kinds), fontsize=8)
    return _svg(fig)


@_themed
def efficiency_svg(
    series: Mapping[str, Sequence[Mapping[str, Any]]],
    kinds: Mapping[str, str],
    all_at: float | None = None,
) -> str:
    """Accuracy against labelled examples per class (log axis), one line per strategy with
    a shaded ``[lo, hi]`` band. ``series[strategy]`` holds ``{"x", "mean", "lo", "hi"}``;
    ``all_at``: where the full training set sits on the x axis (its tick reads "all")."""
    fig = _figure(7.2, 3.4)
    ax = fig.subplots()
    colours = strategy_colours(list(series), kinds)
    ticks: set[float] = set()
    means: list[Any] = []
    for name, points in series.items():
        pts = sorted(points, key=lambda p: p["x"])
        xs = [float(p["x"]) for p in pts]
        ticks.update(xs)
        means += [p["mean"] for p in pts] + [_clip(p["lo"]) for p in pts]
        dash = "--" if kinds.get(name) == "baseline" else "-"
        _line(ax, xs, [p["mean"] for p in pts], colours[name], name, ls=dash)
        lo, hi = [_clip(p["lo"]) for p in pts], [_clip(p["hi"]) for p in pts]
        ax.fill_between(xs, lo, hi, color=colours[name], alpha=0.12, lw=0)
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ordered = sorted(ticks)
    ax.set_xticks(ordered, [_shots_tick(t, all_at) for t in ordered])
    ax.set_xlabel("labelled training examples per class")
    _accuracy_axis(ax, means, "test accuracy")
    fig.legend(loc="outside right upper", fontsize=8)
    return _svg(fig)


def _shots_tick(x: float, all_at: float | None) -> str:
    return "all" if all_at is not None and math.isclose(x, all_at) else f"{x:g}"


@_themed
def overlay_curves_svg(
    curves: Mapping[str, Sequence[tuple[int, Any]]],
    colours: Mapping[str, str] | None = None,
    ylabel: str = "validation accuracy",
) -> str:
    """Several runs' validation accuracy against epoch on one chart (``(epoch, value)``
    pairs per label): where transfer starts higher, climbs faster and ends higher."""
    fig = _figure(7.2, 3.2)
    ax = fig.subplots()
    values: list[Any] = []
    for n, (name, points) in enumerate(curves.items()):
        colour = (colours or {}).get(name, SHADES["transfer"][n % 4])
        _line(ax, [p[0] for p in points], [p[1] for p in points], colour, name)
        values += [p[1] for p in points]
    ax.set_xlabel("epoch")
    _accuracy_axis(ax, values, ylabel)
    fig.legend(loc="outside right upper", fontsize=8)
    return _svg(fig)


@_themed
def ranking_svg(rows: Sequence[Mapping[str, Any]], score: str) -> str:
    """Horizontal bars of each candidate's score (``rows`` of ``{"model", "layer",
    "score", "score_se", "recommended"}``, best first), the recommended one highlighted."""
    fig = _figure(6.4, 0.9 + 0.32 * len(rows))
    ax = fig.subplots()
    y = list(range(len(rows)))[::-1]
    ses = [0.0 if r.get("score_se") is None else float(r["score_se"]) for r in rows]
    colours = [VAL if r.get("recommended") else TRAIN for r in rows]
    style = {"ecolor": INK, "elinewidth": 0.8, "capsize": 2}
    ax.barh(
        y, [_num(r["score"]) for r in rows], xerr=ses, color=colours, height=0.62, error_kw=style
    )
    ax.set_yticks(y, [f"{r['model']} @ {r['layer']}" for r in rows], fontsize=8)
    ax.set_xlabel(f"{score} (higher is better; bars: ± one standard error)")
    ax.grid(axis="x", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    return _svg(fig)


__all__ = [
    "KIND_COLOURS",
    "confusion_svg",
    "efficiency_svg",
    "head_sweep_svg",
    "learning_curves_svg",
    "overlay_curves_svg",
    "ranking_svg",
    "strategy_bars_svg",
    "strategy_colours",
]
