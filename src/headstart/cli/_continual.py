"""``headstart continue``: add a step to a bundle without forgetting the old ones
(registered on the one ``app``), a few lines over :func:`headstart.continue_`. The method
options (``--epochs``, ``--ewc-lambda``, ...) are generated from the continual methods'
config dataclasses (:mod:`headstart.cli._config_flags`): each is written once, in its
field; a flag the chosen ``--method`` lacks is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from headstart.cli._app import Quiet, app, out
from headstart.cli._config_flags import with_config_flags


def _methods() -> list[Any]:
    from headstart.continual import list_continual_methods

    return list_continual_methods()


@app.command("continue")
@with_config_flags(_methods)
def continue_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle (fit --strategy extract, or continue).")],
    new_data: Annotated[
        Path, typer.Argument(help="The new step: labelled data of new classes, as for `fit`.")
    ],
    out_dir: Annotated[
        Path,
        typer.Option("--out", "-o", help="New folder for the new bundle (never BUNDLE itself)."),
    ],
    method: Annotated[
        str,
        typer.Option(
            help="naive | replay | ewc | lwf | prototype | refit | slda (`headstart methods`)."
        ),
    ] = "replay",
    memory: Annotated[
        int | None,
        typer.Option(help="Replay-memory rows, class-balanced (default 200, or the bundle's)."),
    ] = None,
    old_data: Annotated[
        Path | None,
        typer.Option(help="The data BUNDLE was fit on, if not where headstart.json says."),
    ] = None,
    scenario: Annotated[
        str,
        typer.Option(
            help="class: NEW_DATA brings new classes | task: the same, scored with the task "
            "known | domain: the known classes from a new domain."
        ),
    ] = "class",
    seed: Annotated[int, typer.Option(help="Random seed (split of NEW_DATA, training).")] = 0,
    val: Annotated[float, typer.Option(help="Validation share of NEW_DATA.")] = 0.15,
    test: Annotated[float, typer.Option(help="Test share of NEW_DATA (scores the step).")] = 0.15,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    as_json: Annotated[bool, typer.Option("--json", help="Print continual.json.")] = False,
    quiet: Quiet = False,
    configs: dict[str, Any] | None = None,
) -> None:
    """Add NEW_DATA to BUNDLE (new classes, or with --scenario domain the known classes
    from a new domain); write a new bundle, continual.json (accuracy matrix, ACC,
    forgetting, BWT) and report.html."""
    import dataclasses

    import headstart
    from headstart._progress import set_quiet

    set_quiet(quiet or as_json)
    config = (configs or {}).get(method)
    options = dataclasses.asdict(config) if config is not None else {}
    result = headstart.continue_(
        bundle,
        new_data,
        out_dir,
        method=method,
        memory=memory,
        scenario=scenario,
        old_data=old_data,
        seed=seed,
        val=val,
        test=test,
        text_column=text_column,
        label_column=label_column,
        options=options,
    )
    rep = result.report
    if as_json:
        print(json.dumps(rep, indent=2))
        return
    table = Table(title=f"accuracy after each step (test rows of each step's classes): {method}")
    table.add_column("after step", justify="left")
    for j, task in enumerate(rep["tasks"]):
        table.add_column(f"task {j}: {','.join(task)}"[:24], justify="right")
    table.add_column("ACC", justify="right")
    for i, row in enumerate(rep["matrix"]):
        cells = ["" if v is None else f"{v:.3f}" for v in row]
        step = rep["steps"][i]
        table.add_row(f"{i} ({step['method']})", *cells, f"{rep['acc_per_step'][i]:.3f}")
    out.print(table)
    out.print(
        f"ACC {rep['acc']:.3f}, forgetting {rep['forgetting']:.3f}, BWT {rep['bwt']:.3f}; "
        f"memory {rep['memory']['rows']} rows",
        highlight=False,
    )
    out.print(f"bundle, continual.json and report.html: {result.out}")
