"""``headstart pretrain``: develop a source model on an abundant labelled task and register
it in your zoo as ``local/<name>`` (registered on the one ``app``), a few lines over
:func:`headstart.pretrain`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from headstart._progress import set_quiet
from headstart.cli._app import Quiet, app


@app.command("pretrain")
def pretrain_command(
    source: Annotated[Path, typer.Argument(help="Labelled source data, as for `fit`.")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="New folder for the source model's bundle.")
    ],
    arch: Annotated[
        str | None,
        typer.Option(help="Architecture to train from random weights (default per modality)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Zoo name: local/NAME (default: the --out folder's name).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="At most this many epochs.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Override the input size.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (split, initialisation).")] = 0,
    objective: Annotated[
        str | None,
        typer.Option(
            help="Self-supervised on UNLABELLED data instead: simclr (images), simcse or mlm "
            "(text)."
        ),
    ] = None,
    probe_data: Annotated[
        Path | None,
        typer.Option(help="--objective: small labelled set for the linear-probe check."),
    ] = None,
    from_scratch: Annotated[
        bool, typer.Option(help="--objective: start from random, not pre-trained, weights.")
    ] = False,
    max_items: Annotated[
        int | None, typer.Option(help="--objective: use at most this many unlabelled items.")
    ] = None,
    from_model: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="--objective: continue from this model (a zoo name or local/NAME; "
            "same as --arch).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print source.json.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train ARCH on SOURCE; register it as local/NAME if it beats the naive baselines.

    With --objective, SOURCE is unlabelled (a folder of images, a table without a label
    column) and ARCH continues training self-supervised; with --probe-data it registers
    only if a linear probe on its features is at least as good as on the starting ones."""
    import headstart

    set_quiet(quiet or as_json)
    extra: dict = {"epochs": epochs} if epochs else {}
    if from_model is not None:
        if objective is None:
            raise typer.BadParameter("--from needs --objective (use --arch to train from scratch)")
        if arch is not None and arch != from_model:
            raise typer.BadParameter("--from and --arch name two models; give one")
        arch = from_model
    if objective is not None:
        extra |= {"probe_data": probe_data, "from_scratch": from_scratch, "max_items": max_items}
    elif probe_data or from_scratch or max_items:
        raise typer.BadParameter("--probe-data, --from-scratch and --max-items need --objective")
    result = headstart.pretrain(
        source, out_dir, arch, name, seed=seed, image_size=image_size, objective=objective, **extra
    )
    if as_json:
        print(json.dumps(result.report, indent=2))
    if result.registered is None:
        raise typer.Exit(1)
