"""``MODEL_CARD.md``: what a trained bundle is for, what it was trained on, how well it
does (with 95% intervals), what it cannot do, and how to load it.

Everything that comes from the user (class names, paths, model names, the command) is
escaped: :func:`md_text` for prose and table cells, :func:`md_code` for code spans and
:func:`md_fence` for code blocks, so a class named ``<script>`` or ``a|b`` is shown as
written and never becomes HTML, a link or a broken table."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headstart._io import atomic_write_text
from headstart.evaluate._stats import wilson_interval
from headstart.zoo._registry import get_spec, list_specs

CARD = "MODEL_CARD.md"


def source_licence(model: str) -> str:
    """The licence of a source model's weights: the registry's entry for a registered or
    hub model, ``"unknown"`` for anything else (a description, a local file)."""
    registered = {s.name: s for s in list_specs(include_test=True)}
    if model in registered:
        return registered[model].licence
    if not model or any(ch.isspace() for ch in model):
        return "unknown"
    try:
        return get_spec(model).licence
    except Exception:  # an unknown name: nothing to say about its licence
        return "unknown"


def _selection(selection: Mapping[str, Any] | None) -> list[str]:
    """How the head's setting was chosen, and whether the final model saw the validation
    labels."""
    if not selection:
        return []
    chosen = ", ".join(
        f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
        for k, v in selection["chosen"].items()
    )
    estimate = f"{selection['label']} {_pct(selection['score'])}"
    line = f"- setting chosen by {selection['by']}: {chosen} ({estimate})"
    if selection["refit"]:
        line += f"; then refit on train + validation ({selection['n_fit']} examples)"
    return [line]


def accuracy_interval(report: Mapping[str, Any]) -> tuple[int, int, float, float]:
    """``(correct, n, lo, hi)``: a split's correct count and the 95% Wilson interval of its
    accuracy (``report`` is one split of ``metrics["splits"]``)."""
    n = int(report.get("n", 0))
    correct = round(float(report.get("accuracy", 0.0)) * n) if n else 0
    lo, hi = wilson_interval(correct, n)
    return correct, n, lo, hi


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_text(value: Any) -> str:
    """``value`` as literal Markdown text: one line, HTML characters as entities, Markdown
    punctuation backslash-escaped."""
    one_line = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))


def md_code(value: Any) -> str:
    """``value`` as an inline code span, on one line, whatever backticks it holds; as
    :func:`md_text` when it holds ``<``, ``>`` or ``&`` (no raw HTML, whatever renders it)."""
    text = " ".join(str(value).split())
    if any(ch in text for ch in "<>&"):
        return md_text(text)
    ticks = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def md_fence(value: Any, info: str = "") -> list[str]:
    """``value`` as a fenced code block, fenced by more backticks than it holds."""
    text = str(value)
    ticks = "`" * max(3, max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    return [ticks + info, text, ticks]


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[md_text(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(row) + " |" for row in cells]


def _stages(schedule: Mapping[str, Any] | None) -> list[str]:
    if not schedule:
        return ["- no staged schedule (a baseline trained in one go)"]
    lines = []
    for s in schedule["stages"]:
        trained = ", ".join(map(md_text, s["trainable"]))
        what = trained or "none (backbone frozen)"
        lines.append(
            f"- stage {md_code(s['name'])}: backbone blocks trained: {what}; head learning rate "
            f"{s['lr']:g}, at most {s['max_epochs']} epochs"
        )
    return lines


def render_model_card(metrics: Mapping[str, Any], bundle: Mapping[str, Any] | None = None) -> str:
    """The model card as Markdown, from ``metrics.json`` (and ``headstart.json``, for the
    data source and modality, when given)."""
    bundle = bundle or {}
    classes = list(metrics["classes"])
    modality = bundle.get("modality", "input")
    source = bundle.get("fit", {}).get("source") or "not recorded"
    test = metrics["splits"].get("test", {"n": 0})
    correct, n, lo, hi = accuracy_interval(test)
    counts = metrics.get("counts", {})
    splits = [s for s in ("train", "val", "test") if s in counts]
    lines = [
        f"# Model card: {modality} classifier ({len(classes)} classes)",
        "",
        f"Trained with headstart {metrics.get('headstart_version', '?')}: {_origin(metrics)}.",
        "",
        "## Intended use",
        "",
        f"Sorts {modality}s into one of these {len(classes)} classes: "
        + ", ".join(md_code(c) for c in classes)
        + ". It is meant for inputs like its training data (below); check it on your own "
        "labelled examples before relying on it, and keep a person in the loop for decisions "
        "that matter.",
        "",
        "## Data",
        "",
        f"- source: {md_code(source)}",
        "- examples per split: " + ", ".join(f"{s} {sum(counts[s].values())}" for s in splits),
        "",
        *_md_table(
            ["class", *splits], [[c, *(counts[s].get(c, 0) for s in splits)] for c in classes]
        ),
        "",
        f"- inputs skipped while reading: {len(metrics.get('skipped', []))}",
        "",
        "## Model",
        "",
        f"- source model: {md_code(metrics['model'])}",
        f"- source weights: {md_text(metrics.get('weights', 'unknown'))}",
        f"- licence of the source model: {md_text(source_licence(str(metrics['model'])))}",
        f"- cut point (reused up to this block): {md_code(metrics.get('layer'))}",
        f"- feature dimension: {metrics.get('feature_dim')}",
        f"- strategy: {md_code(metrics['strategy'])}",
        *_stages(metrics.get("schedule")),
        *_selection(metrics.get("selection")),
        "",
        "## Metrics (test split)",
        "",
    ]
    if n:
        lines += [
            f"- accuracy: **{_pct(test['accuracy'])}** ({correct} of {n} correct; 95% Wilson "
            f"interval {_pct(lo)} to {_pct(hi)})",
            f"- macro-F1: {test['macro_f1']:.3f}",
            "",
            *_md_table(
                ["class", "precision", "recall", "recall 95% interval", "F1", "support"],
                [_class_row(c, r) for c, r in test["per_class"].items()],
            ),
        ]
    else:
        lines.append("- no test split: the model was not evaluated on held-out data")
    lines += ["", "## Limitations", "", *_limitations(metrics, classes, n, lo, hi, source)]
    lines += [
        "",
        "## How to load",
        "",
        "```python",
        "import headstart",
        "",
        'model = headstart.load("path/to/this/folder")',
        f"model.predict([...])  # a list of {_noun(modality)}",
        "```",
        "",
    ]
    if metrics.get("command"):
        lines += ["Reproduce the training run:", "", *md_fence(metrics["command"], "sh"), ""]
    return "\n".join(lines)


def _origin(metrics: Mapping[str, Any]) -> str:
    strategy, model = metrics["strategy"], metrics["model"]
    if _is_transfer(strategy):
        return f"transfer from {md_code(model)} (strategy {md_code(strategy)})"
    if strategy == "scratch":
        return f"the architecture of {md_code(model)} trained from scratch (no pre-trained weights)"
    return f"a baseline without pre-training: {md_text(model)} (strategy {md_code(strategy)})"


def _class_row(name: str, r: Mapping[str, Any]) -> list[Any]:
    support = int(r["support"])
    lo, hi = wilson_interval(round(float(r["recall"]) * support), support)
    ci = f"{_pct(lo)} to {_pct(hi)}" if support else "n/a"
    return [name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", ci, f"{r['f1']:.3f}", support]


def _limitations(
    metrics: Mapping[str, Any], classes: list[str], n: int, lo: float, hi: float, source: str
) -> list[str]:
    out = []
    if n:
        width = 100 * (hi - lo)
        small = " — a small test set, so treat the number as rough" if n < 200 else ""
        out.append(
            f"- The accuracy was measured on {n} test examples; its 95% interval is "
            f"{width:.0f} percentage points wide{small}."
        )
    out += [
        f"- It learned only from the data in {md_code(source)}; inputs that look different "
        "(other cameras, lighting, writing style, language, time period) may be classified "
        "worse than the test numbers suggest.",
        f"- It knows only these classes: {', '.join(map(md_text, classes))}. An input that "
        "belongs to none of them (out of distribution) still gets one of these labels, "
        "often with high confidence.",
    ]
    if _is_transfer(metrics["strategy"]):
        out.append("- Biases of the source model's pre-training data carry over into this model.")
    return out


def write_model_card(out_dir: Path) -> Path:
    """Write ``out_dir/MODEL_CARD.md`` from ``metrics.json`` (and ``headstart.json``)."""
    out_dir = Path(out_dir)
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    bundle_file = out_dir / "headstart.json"
    bundle = json.loads(bundle_file.read_text(encoding="utf-8")) if bundle_file.is_file() else None
    path = out_dir / CARD
    atomic_write_text(path, render_model_card(metrics, bundle))
    return path


__all__ = ["accuracy_interval", "render_model_card", "source_licence", "write_model_card"]


def _is_transfer(strategy: str) -> bool:
    """Whether the method reuses pre-trained weights (the registry says)."""
    from headstart.methods import get_method

    try:
        return get_method(strategy).kind == "transfer"
    except ValueError:  # a method this version does not know
        return False


def _noun(modality: str) -> str:
    from headstart.data._modality import get_modality

    try:
        return get_modality(modality).noun
    except ValueError:  # metrics without a known modality
        return "inputs"
