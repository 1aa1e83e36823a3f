"""``headstart add-class``, ``remove-class``, ``zeroshot`` and ``fewshot-eval``: few-shot
and zero-shot commands (registered on the one ``app``), each a few lines over
:mod:`headstart.fewshot`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from headstart.cli._app import Quiet, _expand_inputs, _list_skipped, app, out
from headstart.fewshot._labels import DEFAULT_TEMPLATE

Out = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", help="Write the edited bundle here (default: replace BUNDLE in place)."
    ),
]


@app.command("add-class")
def add_class(
    bundle: Annotated[Path, typer.Argument(help="A prototype bundle (fit --strategy prototype).")],
    name: Annotated[str, typer.Argument(help="The new class's name.")],
    examples: Annotated[list[str], typer.Argument(help="Its examples: images/folders, or texts.")],
    out_dir: Out = None,
    update: Annotated[
        bool, typer.Option("--update", help="Add the examples to an existing class NAME.")
    ] = False,
    text_column: Annotated[str, typer.Option()] = "text",
) -> None:
    """Add class NAME to a prototype bundle from a few examples, without retraining."""
    from headstart.bundle import load_bundle
    from headstart.data import readable_images
    from headstart.data._modality import get_modality
    from headstart.fewshot import add_class as add

    modality = load_bundle(bundle).modality
    items = _expand_inputs(examples, modality, text_column)
    if get_modality(modality).files:
        items, skipped = readable_images(items)
        _list_skipped(skipped)
    written = add(bundle, name, items, out=out_dir, update=update)
    verb = "updated" if update else "added"
    out.print(f"{verb} {name!r} from {len(items)} example(s): {written}", highlight=False)


@app.command("remove-class")
def remove_class(
    bundle: Annotated[Path, typer.Argument(help="A prototype bundle.")],
    name: Annotated[str, typer.Argument(help="The class to remove.")],
    out_dir: Out = None,
) -> None:
    """Remove class NAME from a prototype bundle."""
    from headstart.fewshot import remove_class as remove

    written = remove(bundle, name, out=out_dir)
    out.print(f"removed {name!r}: {written}", highlight=False)


@app.command()
def zeroshot(
    data: Annotated[Path, typer.Argument(help="Texts (CSV/JSONL) or an image folder.")],
    labels: Annotated[
        str,
        typer.Option(
            help='Comma-separated label names, e.g. "sports,politics", or name=description '
            'pairs, e.g. "pos=a good movie,neg=a bad movie" (the description is embedded).'
        ),
    ],
    template: Annotated[
        str,
        typer.Option(
            help="The text embedded for a label; {} stands for its description (its name)."
        ),
    ] = DEFAULT_TEMPLATE,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write predictions (and a bundle) here.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Text encoder, or an image-text model (CLIP, SigLIP).")
    ] = None,
    weights: Annotated[
        str | None, typer.Option(help="Local weights (a folder for image-text models).")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option(help="Softmax temperature of the cosine similarities.")
    ] = None,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    quiet: Quiet = False,
) -> None:
    """Classify DATA into --labels from the label names alone (no training)."""
    import headstart
    from headstart._progress import set_quiet

    set_quiet(quiet or as_json)
    result = headstart.zeroshot(
        data,
        labels,
        template=template,
        out=out_dir,
        model=model,
        weights=weights,
        temperature=temperature,
        text_column=text_column,
        label_column=label_column,
    )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    m = result.metrics
    if m is None:
        counts = {c: result.predicted.count(c) for c in result.classes}
        out.print(f"{len(result.items)} inputs: {counts}", highlight=False)
    else:
        out.print(
            f"[bold]{result.model}[/] zero-shot: accuracy [bold]{m['accuracy']:.3f}[/], "
            f"macro-F1 {m['macro_f1']:.3f} on {m['n']} labelled inputs; NLL {m['nll']:.3f} at "
            f"temperature {result.temperature:g} (best for these labels: "
            f"{m['fitted_temperature']:.3g})",
            highlight=False,
        )
    if result.out is not None:
        out.print(f"predictions: {result.out / 'predictions.csv'}")


@app.command("fewshot-eval")
def fewshot_eval(
    data: Annotated[Path, typer.Argument(help="Labelled data, as for `fit` (every split).")],
    ways: Annotated[int, typer.Option(help="Classes per episode.")] = 5,
    shots: Annotated[str, typer.Option(help="Support examples per class, e.g. 1,5,10.")] = "1,5,10",
    episodes: Annotated[int, typer.Option(help="Episodes per shot count.")] = 600,
    queries: Annotated[int, typer.Option(help="Query examples per class and episode.")] = 15,
    model: Annotated[str | None, typer.Option(help="Backbone (default per modality).")] = None,
    layer: Annotated[str | None, typer.Option(help="Cut the backbone after this block.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Override the input size.")] = None,
    transform: Annotated[str, typer.Option(help="raw, l2 or cl2n.")] = "cl2n",
    metric: Annotated[str, typer.Option(help="euclidean or cosine.")] = "euclidean",
    seed: Annotated[int, typer.Option()] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    quiet: Quiet = False,
) -> None:
    """N-way K-shot episodes on cached features: mean accuracy with a 95% interval."""
    import headstart
    from headstart._progress import set_quiet

    set_quiet(quiet or as_json)
    report = headstart.fewshot_eval(
        data,
        ways=ways,
        shots=shots,
        episodes=episodes,
        queries=queries,
        model=model,
        layer=layer,
        image_size=image_size,
        transform=transform,
        metric=metric,
        seed=seed,
    )
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table(
        title=f"{report['model']} @ {report['layer']}: {ways}-way, {queries} queries, "
        f"{episodes} episodes ({transform}, {metric})"
    )
    for col in ("shots", "accuracy", "95% CI"):
        table.add_column(col, justify="right")
    for r in report["rows"]:
        a = r["accuracy"]
        table.add_row(str(r["shots"]), f"{a['mean']:.3f}", f"[{a['lo']:.3f}, {a['hi']:.3f}]")
    out.print(table)
