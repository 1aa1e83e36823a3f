"""``headstart fit-multi`` and ``predict-multi``: one model for several label columns of
one table (registered on the one ``app``), a few lines over :mod:`headstart.multitask`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from headstart.cli._app import Quiet, _expand_inputs, app, out


@app.command("fit-multi")
def fit_multi_command(
    data: Annotated[Path, typer.Argument(help="A CSV/TSV/JSONL table with several label columns.")],
    label_column: Annotated[
        str, typer.Option(help="The tasks: comma-separated label columns, e.g. topic,tone.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder (the model).")],
    weighting: Annotated[
        str, typer.Option(help="equal | uncertainty | pcgrad (how task losses combine).")
    ] = "equal",
    model: Annotated[str | None, typer.Option(help="Backbone (default per modality).")] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    path_column: Annotated[
        str | None, typer.Option(help="Image path column (the items are images).")
    ] = None,
    test: Annotated[float, typer.Option(help="Test share of the rows.")] = 0.2,
    epochs: Annotated[int, typer.Option(help="Epochs of the shared trunk and heads.")] = 40,
    seed: Annotated[int, typer.Option()] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train one model for every label column (shared trunk, one head per task) beside
    single-task models on the same rows; report each task's change (Δm)."""
    from headstart._progress import set_quiet
    from headstart.multitask import fit_multi

    set_quiet(quiet or as_json)
    r = fit_multi(
        data,
        label_column.split(","),
        out_dir,
        weighting=weighting,
        model=model,
        text_column=text_column,
        path_column=path_column,
        test=test,
        epochs=epochs,
        seed=seed,
    )
    rep = r.report
    if as_json:
        print(json.dumps(rep, indent=2))
        return
    table = Table(title=f"test accuracy per task: single-task vs multi-task ({weighting})")
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
    out.print(f"Δm {rep['delta_m']:+.4f}; model: {r.out}", highlight=False)


@app.command("predict-multi")
def predict_multi_command(
    bundle: Annotated[Path, typer.Argument(help="A folder written by `headstart fit-multi`.")],
    inputs: Annotated[list[str], typer.Argument(help="Image paths/folders, or texts / a CSV.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    text_column: Annotated[str, typer.Option()] = "text",
) -> None:
    """Print, for each input, every task's predicted label and its probability."""
    from headstart.multitask import load_multitask

    p = load_multitask(bundle)
    items = _expand_inputs(inputs, p.modality, text_column)
    preds = p.predict(items)
    if as_json:
        rows = [{"input": i, "tasks": pr} for i, pr in zip(items, preds, strict=True)]
        print(json.dumps(rows, indent=2))
        return
    for item, pr in zip(items, preds, strict=True):
        tasks = ", ".join(f"{t}={v['label']} ({v['probability']:.2f})" for t, v in pr.items())
        out.print(f"{item}: {tasks}", highlight=False)
