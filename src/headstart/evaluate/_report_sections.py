"""The sections of a fit report, each a pure function from the fit's outputs to HTML.
The compare report reuses them for its best run."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from headstart.evaluate import _charts
from headstart.evaluate._card import accuracy_interval, source_licence
from headstart.evaluate._report_html import (
    Html,
    cards,
    figure,
    interval,
    join,
    num,
    pct,
    secs,
    section,
    table,
    tag,
)
from headstart.evaluate._report_items import (
    confident_mistakes,
    examples_by_class,
    is_image_items,
    item_html,
    mistake_card,
)
from headstart.zoo._registry import list_specs

MISTAKES = 12
SPLITS = ("train", "val", "test")


def _p(text: Any) -> Html:
    return tag("p", text)


def summary_cards(metrics: Mapping[str, Any]) -> Html:
    """Headline tiles: test accuracy with its interval, macro-F1, model, strategy, time."""
    test = metrics["splits"].get("test", {"n": 0})
    correct, n, lo, hi = accuracy_interval(test)
    val = metrics["splits"].get("val", {})
    selection = metrics.get("selection")
    if selection:  # the honest estimate of the chosen setting (a refit trains on val)
        held_out = (selection["label"], pct(selection["score"]))
    else:
        held_out = ("validation accuracy", pct(val.get("accuracy")))
    return cards(
        [
            ("test accuracy", f"{pct(test.get('accuracy'))} ({correct}/{n})"),
            ("95% interval (Wilson)", interval(lo, hi)),
            ("test macro-F1", num(test.get("macro_f1"))),
            held_out,
            ("model", metrics["model"]),
            ("strategy", metrics["strategy"]),
            ("total time", secs(metrics.get("seconds", {}).get("total"))),
            ("classes", len(metrics["classes"])),
        ]
    )


def summary_section(metrics: Mapping[str, Any]) -> Html:
    test = metrics["splits"].get("test", {"n": 0})
    _, n, lo, hi = accuracy_interval(test)
    if n:
        lead = (
            f"On {n} held-out test examples the model is right {pct(test['accuracy'])} of the "
            f"time; with 95% confidence its accuracy on data like this lies in "
            f"{interval(lo, hi)}."
        )
    else:
        lead = "There was no test split, so the model was not evaluated on held-out data."
    notes = [
        tag("div", tag("p", note), class_="banner negative") for note in metrics.get("notes") or []
    ]
    return section("summary", "Summary", join([summary_cards(metrics), *notes]), lead)


def data_section(
    classes: Sequence[str],
    counts: Mapping[str, Mapping[str, int]],
    skipped: Sequence[Mapping[str, Any]],
    predictions: Sequence[Mapping[str, Any]],
    source: str | None = None,
    about: str = "",
) -> Html:
    """Classes, examples per class and split, skipped inputs and why, test examples."""
    splits = [s for s in SPLITS if s in counts]
    rows = [
        [c, *(counts[s].get(c, 0) for s in splits), sum(counts[s].get(c, 0) for s in splits)]
        for c in classes
    ]
    totals = [sum(counts[s].values()) for s in splits]
    rows.append([Html("<b>total</b>"), *totals, sum(totals)])
    parts = [
        _p(join(tag("span", c, class_="chip") for c in classes)),
        table(["class", *splits, "total"], rows, numeric=range(1, len(splits) + 2)),
        tag("h3", "Skipped inputs"),
    ]
    if skipped:
        parts.append(table(["input", "reason"], [[s["where"], s["reason"]] for s in skipped]))
    else:
        parts.append(_p("none: every input was read."))
    items = [str(r["item"]) for r in predictions]
    if items and is_image_items(items):
        parts.append(tag("h3", "Test examples per class"))
        ex = examples_by_class(predictions, classes)
        rows = [
            [c, tag("div", join(item_html(i, True, 48) for i in ex[c]), class_="examples")]
            for c in classes
            if ex.get(c)
        ]
        parts.append(table(["class", "examples"], rows))
    lead = f"{len(classes)} classes" + (f", read from {source}" if source else "") + "."
    return section("data", "Data", join(parts), lead, about)


def _blocks_below(model: str, layer: str | None) -> list[str]:
    """The backbone's named blocks up to the cut point (``[]`` if unknown)."""
    spec = {s.name: s for s in list_specs(include_test=True)}.get(model)
    if spec is None:
        return []
    blocks = list(spec.blocks)
    return blocks[: blocks.index(layer) + 1] if layer in blocks else blocks


def _stage_rows(
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]]
) -> list[list[Any]]:
    schedule = metrics.get("schedule") or {"stages": []}
    blocks = _blocks_below(str(metrics["model"]), metrics.get("layer"))
    per_stage = metrics.get("parameters", {}).get("trainable_per_stage", {})
    rows = []
    for s in schedule["stages"]:
        trains = list(s["trainable"])
        frozen = [b for b in blocks if b not in trains] if blocks else []
        sweep = [r for r in history if r.get("stage") == s["name"] and "C" in r]
        if sweep:
            chosen = next((f" = {r['C']:g}" for r in sweep if r.get("chosen")), "")
            lrs = f"logistic regression, C{chosen} chosen on validation"
        else:
            mult = dict((b, m) for b, m in s.get("lr_mult", []))
            lrs = "; ".join(
                [f"head {s['lr']:g}", *(f"{b} {s['lr'] * m:g}" for b, m in mult.items())]
            )
        rows.append(
            [
                s["name"],
                "head" + (" + " + ", ".join(trains) if trains else ""),
                ", ".join(frozen) if frozen else ("none" if trains else "whole backbone"),
                num(per_stage.get(s["name"])),
                lrs,
                "cached features"
                if s.get("on_features")
                else ("yes" if s.get("augment") else "no"),
            ]
        )
    return rows


def model_section(
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]], about: str = ""
) -> Html:
    """Source model, provenance, licence, cut point, and what trained at each stage."""
    params = metrics.get("parameters", {})
    facts = [
        ("source model", metrics["model"]),
        ("weights", metrics.get("weights") or "n/a"),
        ("licence", source_licence(str(metrics["model"]))),
        ("cut point", metrics.get("layer") or "n/a"),
        ("feature dimension", num(metrics.get("feature_dim"))),
        ("parameters", num(params.get("total"))),
    ]
    bundle = metrics.get("bundle")  # what the bundle stores (LoRA: adapter or merged)
    if bundle:
        facts.append(("bundle", f"{bundle['stores']}, {bundle['bytes'] / 1e6:.2f} MB"))
    parts = [cards(facts)]
    rows = _stage_rows(metrics, history)
    parts.append(tag("h3", "Training stages"))
    if rows:
        headers = ["stage", "trains", "frozen", "trainable params", "learning rate", "augmented"]
        parts.append(table(headers, rows, numeric=[3]))
    else:
        parts.append(_p(f"No staged schedule: {metrics['strategy']} is trained in one go."))
    return section("model", "Model", join(parts), f"Strategy: {metrics['strategy']}.", about)


def _stage_summary(history: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    rows = []
    for stage in dict.fromkeys(r["stage"] for r in history if "epoch" in r):
        epochs = [r for r in history if r.get("stage") == stage and "epoch" in r]
        best = next((r for r in epochs if r.get("best")), epochs[-1])
        rows.append(
            [
                stage,
                max(r["epoch"] for r in epochs),
                best["epoch"],
                pct(best["val_acc"]),
                num(best["val_loss"]),
                secs(sum(r.get("seconds") or 0 for r in epochs)),
            ]
        )
    return rows


EPOCHS_CAPTION = (
    "Loss and accuracy per epoch, training vs. validation; the star marks the epoch whose "
    "weights were kept."
)
SWEEP_CAPTION = (
    "The logistic-regression head at each regularisation strength C; the star marks the C "
    "kept (best validation accuracy)."
)


def curves_section(history: Sequence[Mapping[str, Any]]) -> Html:
    """Learning curves of the epoch stages (and a per-stage table) and the regularisation
    sweep of a logistic-regression head, in the order they ran."""
    epochs, sweep = _charts.learning_curves_svg(history), _charts.head_sweep_svg(history)
    parts = []
    if epochs:
        headers = ["stage", "epochs", "best epoch", "val accuracy", "val loss", "time"]
        summary = table(headers, _stage_summary(history), numeric=[1, 2, 3, 4, 5])
        parts.append(join([figure(epochs, EPOCHS_CAPTION), summary]))
    if sweep:
        sweep_first = bool(history) and "C" in history[0]
        parts.insert(0 if sweep_first else len(parts), figure(sweep, SWEEP_CAPTION))
    if not parts:
        parts.append(_p("No training history was recorded."))
    return section("curves", "Learning curves", join(parts))


def confusion_table(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> Html:
    rows = [[c, *row] for c, row in zip(classes, matrix, strict=True)]
    return table(["true \\ predicted", *classes], rows, numeric=range(1, len(classes) + 1))


def confusion_section(metrics: Mapping[str, Any], about: str = "") -> Html:
    test = metrics["splits"].get("test", {"n": 0})
    classes = metrics["classes"]
    if not test.get("n"):
        return section("confusion", "Confusion matrix", _p("No test split."), None, about)
    body = join(
        [
            figure(
                _charts.confusion_svg(test["confusion"], classes),
                "Test split: rows are the true class, columns the predicted class; colour "
                "is the share of the true class.",
            ),
            confusion_table(test["confusion"], classes),
        ]
    )
    return section("confusion", "Confusion matrix", body, f"{test['n']} test examples.", about)


def per_class_section(metrics: Mapping[str, Any], about: str = "") -> Html:
    test = metrics["splits"].get("test", {"n": 0})
    if not test.get("n"):
        return section("per-class", "Per class", _p("No test split."), None, about)
    rows = [
        [c, num(r["precision"]), num(r["recall"]), num(r["f1"]), r["support"]]
        for c, r in test["per_class"].items()
    ]
    body = table(["class", "precision", "recall", "F1", "support"], rows, numeric=[1, 2, 3, 4])
    lead = f"Test split; macro-F1 {num(test['macro_f1'])}."
    return section("per-class", "Per class", body, lead, about)


def mistakes_section(predictions: Sequence[Mapping[str, Any]], about: str = "") -> Html:
    """The most confident wrong predictions on the test split."""
    wrong = confident_mistakes(predictions, MISTAKES)
    n_wrong = sum(1 for r in predictions if not r["correct"])
    if not predictions:
        return section(
            "mistakes", "Mistakes", _p("No test predictions were recorded."), None, about
        )
    if not wrong:
        text = f"None: all {len(predictions)} test examples were classified correctly."
        return section("mistakes", "Mistakes", _p(text), None, about)
    image = is_image_items([str(r["item"]) for r in predictions])
    body = tag("div", join(mistake_card(r, image) for r in wrong), class_="mistakes")
    lead = (
        f"{n_wrong} of {len(predictions)} test examples are wrong; the {len(wrong)} the "
        "model was most sure about come first."
    )
    return section("mistakes", "Most confident mistakes", body, lead, about)


def ranking_section(ranking: Mapping[str, Any]) -> Html:
    """``model="auto"``: every candidate's transferability score, the pick marked."""
    rows = ranking["rows"]
    chart = figure(
        _charts.ranking_svg(rows, ranking["score"]),
        f"{ranking['score']} of each candidate on {ranking['n_items']} training "
        "examples; blue: the recommended one.",
    )
    trs = []
    for r in rows:
        cells = [
            r["rank"],
            r["model"],
            r["layer"],
            num(r["score"], 4),
            num(r["score_se"], 4),
            num(r["feature_dim"]),
            num(r["params"]),
            num(r["ms_per_input"], 2),
            "recommended" if r.get("recommended") else "",
        ]
        numeric = {0, 3, 4, 5, 6, 7}
        tds = join(
            tag("td", c, class_="num" if i in numeric else None) for i, c in enumerate(cells)
        )
        trs.append(tag("tr", tds, class_="pick" if r.get("recommended") else None))
    headers = ["#", "model", "layer", ranking["score"], "± se", "dim", "params", "ms/input", ""]
    parts = [chart, table(headers, trs, numeric=[0, 3, 4, 5, 6, 7]), _p(ranking.get("rule", ""))]
    parts += [tag("p", f"note: {n}", class_="lead") for n in ranking.get("notes", [])]
    return section(
        "ranking",
        "Model ranking",
        join(parts),
        'model="auto" ranked these candidates before training.',
    )


def environment_table(env: Mapping[str, Any], version: Any) -> Html:
    rows = [["headstart", version], *([k, v] for k, v in env.items())]
    return table(["component", "version"], rows)


def reproduce_section(metrics: Mapping[str, Any]) -> Html:
    """Timings, seed, versions, and the command that reproduces the fit."""
    seconds = metrics.get("seconds", {})
    total = seconds.get("total") or sum(v for k, v in seconds.items() if k != "total") or 1.0
    rows = [
        [k.replace("_", " "), secs(v), pct(v / total) if k != "total" else ""]
        for k, v in seconds.items()
    ]
    command = metrics.get("command") or "not recorded"
    parts = [
        tag("h3", "Command"),
        tag("pre", tag("code", command)),
        cards(
            [("seed", metrics.get("seed")), ("forward passes", num(metrics.get("forward_passes")))]
        ),
        tag("h3", "Time"),
        table(["step", "time", "share"], rows, numeric=[1, 2]),
        tag("h3", "Environment"),
        environment_table(metrics.get("environment", {}), metrics.get("headstart_version")),
    ]
    options = metrics.get("options") or {}
    if options:
        text = json.dumps(options, indent=2, default=str)
        parts.append(tag("details", join([tag("summary", "All options"), tag("pre", text)])))
    return section("reproduce", "Reproduce", join(parts))


__all__ = [
    "confusion_section",
    "confusion_table",
    "curves_section",
    "data_section",
    "environment_table",
    "mistakes_section",
    "model_section",
    "per_class_section",
    "ranking_section",
    "reproduce_section",
    "summary_cards",
    "summary_section",
]
