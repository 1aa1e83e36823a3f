"""``headstart fit-multi``: one model for several tasks (registered on the one ``app``), a
few lines over :func:`headstart.fit_multi`; and the printers that ``fit`` (several
``--label-column``), ``predict`` and ``evaluate`` use for a multi-task bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from headstart.cli._app import Quiet, app, out


@app.command("fit-multi")
def fit_multi_command(
    data: Annotated[
        list[Path],
        typer.Argument(
            help="One table with several label columns (--label-column a,b), or two or more "
            "labelled datasets of one modality (one task each)."
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder (the bundle).")],
    label_column: Annotated[
        str | None,
        typer.Option(
            help="One table: the tasks, comma-separated (topic,tone). Several datasets: "
            "each one's label column (default label)."
        ),
    ] = None,
    weighting: Annotated[
        str, typer.Option(help="equal | uncertainty | pcgrad | gradnorm (how task losses combine).")
    ] = "equal",
    model: Annotated[str | None, typer.Option(help="Backbone (default per modality).")] = None,
    image_size: Annotated[int | None, typer.Option(help="Override the input size.")] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    path_column: Annotated[
        str | None, typer.Option(help="Image path column (the items are images).")
    ] = None,
    test: Annotated[float, typer.Option(help="Test share of the rows (of each dataset).")] = 0.2,
    epochs: Annotated[int, typer.Option(help="Epochs of the shared trunk and heads.")] = 40,
    hidden: Annotated[int, typer.Option(help="Width of the shared trunk.")] = 256,
    gradnorm_alpha: Annotated[
        float, typer.Option(help="gradnorm: the restoring force alpha.")
    ] = 1.5,
    seed: Annotated[int, typer.Option()] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train one model for several tasks (shared trunk, one head per task) beside
    single-task models on the same rows; report each task's change (Δm)."""
    from headstart._progress import set_quiet
    from headstart.multitask import fit_multi

    set_quiet(quiet or as_json)
    r = fit_multi(
        data if len(data) > 1 else data[0],
        label_column,
        out_dir,
        weighting=weighting,
        model=model,
        image_size=image_size,
        text_column=text_column,
        path_column=path_column,
        test=test,
        epochs=epochs,
        hidden=hidden,
        gradnorm_alpha=gradnorm_alpha,
        seed=seed,
    )
    if as_json:
        print(json.dumps(r.report, indent=2))
        return
    print_multitask(r)


def print_multitask(r: Any) -> None:
    """The per-task table of a :class:`~headstart.multitask.MultiTaskResult`."""
    rep = r.report
    table = Table(title=f"test accuracy per task: single-task vs multi-task ({rep['weighting']})")
    for col in ("task", "single-task", "multi-task", "relative gain"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for t in rep["tasks"]:
        flag = " [red](negative transfer)[/]" if t in rep["negative_transfer"] else ""
        table.add_row(
            t,
            f"{rep['single_task'][t]:.3f}",
            f"{rep['multi_task'][t]:.3f}",
            f"{rep['relative_gain'][t]:+.3f}{flag}",
        )
    out.print(table)
    out.print(f"Δm {rep['delta_m']:+.4f}; bundle and metrics: {r.out}", highlight=False)
    if r.out is not None:
        out.print(f"report: {r.out / 'report.html'} (open it in a browser; works offline)")


def print_multitask_predictions(items: list[str], preds: list[dict], as_json: bool) -> None:
    """``predict`` on a multi-task bundle: every task's label and probability per input."""
    if as_json:
        rows = [{"input": i, "tasks": p} for i, p in zip(items, preds, strict=True)]
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    table.add_column("input")
    tasks = list(preds[0]) if preds else []
    for t in tasks:
        table.add_column(t)
    for item, p in zip(items, preds, strict=True):
        text = item if len(item) < 80 else item[:77] + "..."
        table.add_row(text, *(f"{p[t]['label']} ({p[t]['probability']:.3f})" for t in tasks))
    out.print(table)


def print_multitask_evaluation(rep: dict[str, Any], as_json: bool) -> None:
    """``evaluate`` on a multi-task bundle: accuracy and macro-F1 per task."""
    if as_json:
        print(json.dumps(rep, indent=2))
        return
    table = Table(title=f"{rep['n']} rows")
    for col in ("task", "labelled", "accuracy", "macro-F1"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for t, r in rep["tasks"].items():
        table.add_row(t, str(r["n"]), f"{r['accuracy']:.3f}", f"{r['macro_f1']:.3f}")
    out.print(table)
