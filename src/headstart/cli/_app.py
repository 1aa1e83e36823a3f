"""``headstart`` commands: each is a few lines over the public Python API."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import headstart
from headstart._progress import set_quiet
from headstart.adapt import list_adapt_methods
from headstart.cli._config_flags import with_config_flags
from headstart.cli._options import with_options
from headstart.data._modality import get_modality

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Transfer learning from one command: reuse a pre-trained model for your task, offline.",
)
out = Console()

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or status lines.")]


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    test: Annotated[bool, typer.Option("--test", help="Include tiny test backbones.")] = False,
) -> None:
    """List the model zoo, marking what is usable offline right now."""
    specs = headstart.list_specs(include_test=test)
    if as_json:
        rows = [{**s.to_dict(), "offline": s.offline_available()} for s in specs]
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="headstart model zoo")
    table.add_column("name", no_wrap=True)
    for col in ("modality", "params", "features", "input", "weights", "licence", "offline"):
        table.add_column(col)
    for s in specs:
        pre = s.preprocess
        inp = get_modality(s.modality).describe_input(pre)
        table.add_row(
            s.name,
            s.modality,
            f"{s.params_m:g}M",
            str(s.feature_dim),
            inp,
            s.weights.kind,
            s.licence.split(" ")[0],
            "[green]yes[/]" if s.offline_available() else "[red]no[/]",
        )
    out.print(table)
    out.print(
        "Any timm name (timm/<name>) or Hugging Face encoder (hf/<org>/<name>) also works "
        "when the hub is reachable; --weights FILE works always."
    )


@app.command()
def methods(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print every option as a Markdown table.")
    ] = False,
) -> None:
    """List the registered methods (transfer, scratch, baselines) and their options."""
    from headstart.adapt import list_adapt_methods
    from headstart.cli._options import options_markdown
    from headstart.continual import list_continual_methods
    from headstart.methods import list_methods
    from headstart.multitask import list_multitask_methods
    from headstart.selfsup import list_pretrain_objectives

    if markdown:
        print(options_markdown(), end="")
        return

    rows = [
        {
            "name": m.name,
            "kind": m.kind,
            "modalities": list(m.modalities or ("any",)),
            "summary": m.summary,
            "options": [f.name for f in dataclasses.fields(m.config_cls)],
        }
        for m in [
            *list_methods(),
            *list_adapt_methods(),
            *list_continual_methods(),
            *list_multitask_methods(),
            *list_pretrain_objectives(),
        ]
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(
        title="headstart methods (fit --strategy NAME; kind adapt: adapt --method NAME; "
        "kind continual: continue --method NAME; kind multitask: fit --label-column a,b "
        "--weighting NAME; kind pretrain: pretrain --objective NAME)"
    )
    for col in ("name", "kind", "data", "what it does", "options"):
        table.add_column(col, no_wrap=col in ("name", "kind"))
    for r in rows:
        table.add_row(
            r["name"], r["kind"], ", ".join(r["modalities"]), r["summary"], " ".join(r["options"])
        )
    out.print(table)


@app.command()
@with_options()
def fit(
    data: Annotated[Path, typer.Argument(help="Image folder, or CSV/JSONL of images or texts.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder (bundle, metrics).")],
    options: dict[str, Any],
    quiet: Quiet = False,
) -> None:
    """Train a model on DATA with a method (--strategy) and write a bundle plus metrics to --out."""
    from headstart._options import FitOptions, unused_options
    from headstart.multitask._api import is_multi_label

    set_quiet(quiet)
    # several label columns: a multi-task fit, which checks its own options
    multi = is_multi_label(options.get("label_column"))
    unused = [] if multi else unused_options(FitOptions(**options))
    if unused:
        flags = ", ".join("--" + u.replace("_", "-") for u in unused)
        raise typer.BadParameter(
            f"{flags} does not apply to --strategy {options.get('strategy', 'extract')} "
            "(`headstart methods` lists each method's options)"
        )
    result = headstart.fit(data, out_dir, **options)
    if isinstance(result, headstart.MultiTaskResult):  # several --label-column
        from headstart.cli._multitask import print_multitask

        print_multitask(result)
        return
    m = result.metrics
    test = m["splits"]["test"]
    if "ranking" in m:
        out.print(f"auto: ranked {len(m['ranking']['rows'])} candidates by {m['ranking']['score']}")
    out.print(
        f"[bold]{m['model']}[/] ({m['strategy']}, layer {m['layer']}): "
        f"test accuracy [bold]{test.get('accuracy', float('nan')):.3f}[/], "
        f"macro-F1 {test.get('macro_f1', float('nan')):.3f} on {test['n']} examples, "
        f"{m['seconds']['total']:.1f}s"
    )
    if m["skipped"]:
        out.print(f"[yellow]{len(m['skipped'])} input(s) skipped[/] (listed in metrics.json)")
    out.print(f"bundle and metrics: {result.out}")
    out.print(f"report: {result.out / 'report.html'} (open it in a browser; works offline)")


@app.command()
@with_options(skip=("strategy", "resume", "weighting"))
def compare(
    data: Annotated[Path, typer.Argument(help="Labelled data, as for `fit`.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder (reused runs).")],
    options: dict[str, Any],
    strategies: Annotated[
        str,
        typer.Option(help="Comma-separated methods; 'baseline' is the modality's baselines."),
    ] = "baseline,scratch,extract,finetune",
    seeds: Annotated[int, typer.Option(help="Seeds per strategy (intervals need >= 2).")] = 3,
    shots: Annotated[
        str, typer.Option(help="Training examples per class, e.g. 1,5,10,50,all.")
    ] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Print compare.json.")] = False,
    quiet: Quiet = False,
) -> None:
    """Every strategy on the same splits over seeds: does transfer beat the baselines?"""
    set_quiet(quiet or as_json)
    result = headstart.compare(
        data, out_dir, strategies=strategies, seeds=seeds, shots=shots, **options
    )
    rep = result.report
    if as_json:
        print(json.dumps(rep, indent=2))
        return
    table = Table(title=f"{rep['model']} on {rep['source']}: test accuracy, 95% CI over seeds")
    for col in ("strategy", "kind", "shots", "accuracy", "95% CI", "macro-F1", "seconds"):
        left = col in ("strategy", "kind")
        table.add_column(col, justify="left" if left else "right", no_wrap=not left)
    for row in rep["summary"]:
        acc, f1 = row["accuracy"], row["macro_f1"]
        table.add_row(
            row["strategy"],
            row["kind"],
            str(row["shots"]),
            f"{acc['mean']:.3f}",
            f"[{acc['lo']:.3f}, {acc['hi']:.3f}]",
            f"{f1['mean']:.3f}",
            f"{row['seconds']['mean']:.1f}",
        )
    out.print(table)
    for g in rep["gains"]:
        colour = "green" if g["verdict"] == "positive" else "red"
        out.print(f"[{colour}]{g['verdict']}[/] (shots {g['shots']}): {g['detail']}")
    verdict = rep["verdict"]
    colour = {"positive": "green", "negative": "bold red"}.get(verdict["status"], "yellow")
    out.print(f"[{colour}]{verdict['status']}[/]: {verdict['message']}", highlight=False)
    for advice in verdict["advice"]:
        out.print(f"  - {advice}", highlight=False)
    out.print(f"report: {result.out / 'report.html'}")


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def rank(
    data: Annotated[Path, typer.Argument(help="Labelled data, as for `fit`.")],
    models: Annotated[
        str, typer.Option(help="Comma-separated model names, or all-offline.")
    ] = "all-offline",
    layers: Annotated[str, typer.Option(help="auto, or comma-separated block names.")] = "auto",
    score: Annotated[
        str, typer.Option(help="knn_loo_accuracy | logme | linear_probe_accuracy | leep | ...")
    ] = "knn_loo_accuracy",
    max_items: Annotated[
        int | None, typer.Option(help="Rank on at most this many training examples.")
    ] = None,
    image_size: Annotated[int | None, typer.Option(help="Override the input size.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    quiet: Quiet = False,
) -> None:
    """Rank source models and cut layers for DATA before training; recommend one."""
    set_quiet(quiet or as_json)
    ranking = headstart.rank(
        data,
        models=models if models == "all-offline" else _names(models),
        layers="auto" if layers == "auto" else _names(layers),
        score=score,
        max_items=max_items,
        image_size=image_size,
    )
    if as_json:
        print(json.dumps(ranking.to_dict(), indent=2))
        return
    table = Table(title=f"{ranking.score} on {ranking.n_items} training examples")
    table.add_column("#")
    table.add_column("model", no_wrap=True)
    table.add_column("layer", no_wrap=True)
    for col in (ranking.score, "± se", "dim", "params", "ms/input", "pick"):
        table.add_column(col, justify="right")
    for i, r in enumerate(ranking.rows, 1):
        table.add_row(
            str(i),
            r.model,
            r.layer,
            f"{r.score:.4f}",
            f"{r.score_se:.4f}",
            str(r.feature_dim),
            f"{r.params / 1e6:.2f}M" if r.params >= 1e5 else f"{r.params / 1e3:.1f}k",
            f"{r.ms_per_input:.2f}",
            "[green]yes[/]" if r == ranking.recommended else "",
        )
    out.print(table)
    out.print(
        f"pick: the cheapest (ms/input) of the candidates whose {ranking.score} is within one "
        "standard error (± se) of the best",
        highlight=False,
    )
    for note in ranking.notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    best = ranking.recommended
    out.print(f"use: headstart fit {data} --model {best.model} --layer {best.layer} --out ...")


@app.command()
def shift(
    source: Annotated[Path, typer.Argument(help="Source dataset (labelled, as for `fit`).")],
    target: Annotated[Path, typer.Argument(help="Target dataset.")],
    model: Annotated[str, typer.Option(help="Backbone whose features compare the two.")],
    layer: Annotated[str | None, typer.Option(help="Cut the backbone after this block.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Override the input size.")] = None,
    max_items: Annotated[int | None, typer.Option(help="At most this many per dataset.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    quiet: Quiet = False,
) -> None:
    """How far TARGET lies from SOURCE in a backbone's features (proxy A-distance)."""
    set_quiet(quiet or as_json)
    report = headstart.domain_shift(
        source, target, model, layer=layer, image_size=image_size, max_items=max_items
    )
    if as_json:
        print(json.dumps(report, indent=2))
        return
    out.print(
        f"proxy A-distance [bold]{report['proxy_a_distance']:.3f}[/] (0: alike, 2: separable); "
        f"domain classifier accuracy {report['domain_accuracy']:.3f} "
        f"({report['model']} @ {report['layer']})"
    )
    table = Table(title="shift of each shared class (class-mean distance / within-class spread)")
    for col in ("class", "source", "target", "mean shift"):
        table.add_column(col)
    for r in report["per_class"]:
        value = "n/a" if r["mean_shift"] is None else f"{r['mean_shift']:.3f}"
        table.add_row(r["class"], str(r["n_source"]), str(r["n_target"]), value)
    if report["per_class"]:
        out.print(table)
    for side in ("source", "target"):
        if report[f"only_in_{side}"]:
            out.print(f"only in {side}: {', '.join(report[f'only_in_{side}'])}", highlight=False)


@app.command("adapt")
@with_config_flags(list_adapt_methods)
def adapt_command(
    source: Annotated[Path, typer.Argument(help="Labelled source data, as for `fit`.")],
    target: Annotated[
        Path,
        typer.Argument(
            help="Target domain: a flat image folder or a table with a text column "
            "(labelled data works too: its labels only score the result)."
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (bundle, adapt.json).")
    ],
    method: Annotated[
        str, typer.Option(help="auto (the label-free choice) or one method (`headstart methods`).")
    ] = "auto",
    model: Annotated[str | None, typer.Option(help="Backbone (default per modality).")] = None,
    target_labelled: Annotated[
        Path | None, typer.Option(help="A few labelled target examples (semi-supervised).")
    ] = None,
    validator: Annotated[
        str, typer.Option(help="im+rv | rv | im | snd | entropy | iwcv | dev (label-free)")
    ] = "im+rv",
    layer: Annotated[str | None, typer.Option(help="Cut the backbone after this block.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Override the input size.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (split, methods).")] = 0,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[str, typer.Option()] = "label",
    as_json: Annotated[bool, typer.Option("--json", help="Print adapt.json.")] = False,
    quiet: Quiet = False,
    configs: dict[str, Any] | None = None,
) -> None:
    """Adapt a model trained on labelled SOURCE to an unlabelled TARGET domain; write a bundle.

    The method options (--epochs, --reg, ...) come from each method's config and apply
    to every method that has them."""
    set_quiet(quiet or as_json)
    result = headstart.adapt(
        source,
        target,
        out_dir,
        method=method,
        model=model,
        target_labelled=target_labelled,
        validator=validator,
        layer=layer,
        image_size=image_size,
        seed=seed,
        text_column=text_column,
        label_column=label_column,
        configs=configs,
    )
    rep = result.report
    if as_json:
        print(json.dumps(rep, indent=2))
        return
    labelled = rep["target"]["labelled"]
    table = Table(title=f"{rep['model']}: {rep['source']['data']} -> {rep['target']['data']}")
    score = "im" if rep["validator"] == "im+rv" else rep["validator"]
    cols = ["method", f"{score} (label-free)", "rv", "proxy A-distance"]
    if labelled:
        cols.append("target accuracy*")
    for col in cols:
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rep["candidates"]:
        pad = r["proxy_a_distance"]
        row = [
            r["method"] + (" [green](chosen)[/]" if r["method"] == rep["chosen"] else ""),
            f"{r['scores'][score]:.3f}",
            f"{r['scores']['rv']:.3f}",
            "n/a" if pad is None else f"{pad:.3f}",
        ]
        if labelled:
            row.append(f"{r['target_accuracy']['accuracy']:.3f}")
        table.add_row(*row)
    out.print(table)
    if labelled:
        acc = {r["method"]: r["target_accuracy"]["accuracy"] for r in rep["candidates"]}
        out.print(
            f"* target accuracy (labels used for scoring only): {rep['chosen']} "
            f"{acc[rep['chosen']]:.3f}, source_only {acc['source_only']:.3f}",
            highlight=False,
        )
    pad = rep["proxy_a_distance"]
    out.print(rep["choice"]["message"], highlight=False)
    out.print(
        f"proxy A-distance {pad['before']:.3f} before, {pad['after']:.3f} after", highlight=False
    )
    for s in rep["not_applicable"]:
        out.print(f"[yellow]{s['method']}[/]: not applicable ({s['reason']})", highlight=False)
    out.print(f"bundle, adapt.json and report: {result.out}")


def _expand_inputs(inputs: list[str], modality: str, text_column: str) -> list[str]:
    from headstart.data._clean import hidden_part

    m = get_modality(modality)
    items: list[str] = []
    for x in inputs:
        p = Path(x)
        if m.files and p.is_dir():
            items += sorted(
                str(f)
                for f in p.rglob("*")
                if f.suffix.lower() in m.extensions and not hidden_part(f, p) and f.is_file()
            )
        elif not m.files and p.suffix.lower() in (".csv", ".tsv", ".jsonl") and p.is_file():
            from headstart.data._readers import _table_rows

            for line, row in _table_rows(p):
                if text_column not in row:
                    raise typer.BadParameter(f"{p}:{line}: no {text_column!r} column")
                items.append(str(row[text_column]))
        elif m.files and not p.is_file():
            raise typer.BadParameter(f"{x}: no such file")
        else:
            items.append(x)
    return items


@app.command()
def predict(
    bundle: Annotated[Path, typer.Argument(help="A folder written by `headstart fit`.")],
    inputs: Annotated[
        list[str], typer.Argument(help="Image or audio paths/folders, or texts / a CSV.")
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    text_column: Annotated[str, typer.Option()] = "text",
    runtime: Annotated[
        str, typer.Option(help="torch | onnx | onnx-int8 (after `headstart export`)")
    ] = "torch",
) -> None:
    """Print the predicted label and its probability for each input (offline); for a
    multi-task bundle, every task's."""
    from headstart.bundle._runtime import load_predictor
    from headstart.data import readable_files

    predictor = load_predictor(bundle, runtime, multitask=True)
    items = _expand_inputs(inputs, predictor.modality, text_column)
    skipped = []
    if get_modality(predictor.modality).files:  # as fit does: skip unreadable files, list them
        items, skipped = readable_files(items, predictor.modality)
    _list_skipped(skipped)
    if not items:
        raise typer.BadParameter(f"no readable input to predict ({len(skipped)} skipped)")
    if isinstance(predictor, headstart.MultiTaskPredictor):
        from headstart.cli._multitask import print_multitask_predictions

        print_multitask_predictions(items, predictor.predict(items), as_json)
        return
    proba = predictor.predict_proba(items)
    rows = [
        {"input": item, "label": predictor.classes[int(p.argmax())], "probability": float(p.max())}
        for item, p in zip(items, proba, strict=True)
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for col in ("input", "label", "probability"):
        table.add_column(col)
    for r in rows:
        text = r["input"] if len(r["input"]) < 80 else r["input"][:77] + "..."
        table.add_row(text, r["label"], f"{r['probability']:.3f}")
    out.print(table)


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Argument(help="A folder written by `headstart fit`.")],
    data: Annotated[Path, typer.Argument(help="Labelled data, as for `fit`.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    text_column: Annotated[str, typer.Option()] = "text",
    label_column: Annotated[
        str | None,
        typer.Option(help="Label column (default label; a multi-task bundle: its tasks')."),
    ] = None,
    path_column: Annotated[
        str | None, typer.Option(help="Multi-task: the image path column of the table.")
    ] = None,
) -> None:
    """Score a bundle on labelled data (offline); a multi-task bundle, per task."""
    predictor = headstart.load(bundle)
    if isinstance(predictor, headstart.MultiTaskPredictor):
        from headstart.cli._multitask import print_multitask_evaluation

        columns = label_column.split(",") if label_column else None
        rep = predictor.evaluate(
            data, text_column=text_column, path_column=path_column, label_columns=columns
        )
        print_multitask_evaluation(rep, as_json)
        return
    report = predictor.evaluate(data, text_column=text_column, label_column=label_column or "label")
    if as_json:
        print(json.dumps(report, indent=2))
        return
    _list_skipped(report["skipped"])
    out.print(
        f"accuracy [bold]{report['accuracy']:.3f}[/], macro-F1 {report['macro_f1']:.3f} "
        f"on {report['n']} examples"
    )
    table = Table()
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col)
    for name, r in report["per_class"].items():
        table.add_row(
            name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"])
        )
    out.print(table)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o")] = Path("runs/demo"),
    per_class: Annotated[int, typer.Option(help="Training images per class.")] = 50,
    image_size: Annotated[int, typer.Option()] = 112,
    quiet: Quiet = False,
) -> None:
    """The embedded default: Fashion-MNIST, EfficientNet-Lite0 transfer vs. from scratch."""
    from headstart._demo import run_demo

    set_quiet(quiet)
    summary = run_demo(out_dir, train_per_class=per_class, image_size=image_size)
    table = Table(
        title=f"Fashion-MNIST, {summary['samples']['train']} training images, "
        f"{summary['samples']['test']} test images"
    )
    for col in ("strategy", "test accuracy", "macro-F1", "seconds", "bundle"):
        table.add_column(col)
    for name, r in summary["runs"].items():
        table.add_row(
            name,
            f"{r['test_accuracy']:.3f}",
            f"{r['test_macro_f1']:.3f}",
            f"{r['seconds']:.0f}",
            r["out"],
        )
    out.print(table)
    gain = summary["runs"]["extract"]["test_accuracy"] - summary["runs"]["scratch"]["test_accuracy"]
    out.print(f"transfer (ImageNet features) vs. from scratch: [bold]{gain:+.3f}[/] test accuracy")
    out.print(f"reports: {summary['runs']['extract']['out']}/report.html (and scratch's)")


def _list_skipped(skipped: list) -> None:
    """Each skipped input on stderr, one line each (stdout stays the result, e.g. JSON)."""
    from rich.markup import escape

    err = Console(stderr=True)
    for s in skipped:
        where, reason = (s["where"], s["reason"]) if isinstance(s, dict) else (s.where, s.reason)
        err.print(f"[yellow]skipped[/] {escape(str(where))}: {escape(str(reason))}", soft_wrap=True)
    if skipped:
        err.print(f"[yellow]{len(skipped)} input(s) skipped[/]")


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def main() -> None:
    """Entry point. An error the user can fix (bad data, option, file, bundle) prints one
    line naming the file or option and exits 2; anything else is a bug: its traceback,
    a line asking for a report, exit 1. ``HEADSTART_DEBUG=1`` shows every traceback."""
    import os
    import traceback

    from rich.markup import escape

    from headstart._errors import UserError

    err = Console(stderr=True)
    debug = os.environ.get("HEADSTART_DEBUG", "") not in ("", "0")
    usage_error = typer.BadParameter.__mro__[1]  # typer's UsageError (it bundles its own click)

    try:
        code = app(standalone_mode=False)
    except usage_error as exc:  # type: ignore[misc]  # a bad flag or value: one line, as any other user error
        hint = f" (`{exc.ctx.command_path} --help`)" if exc.ctx else ""
        err.print(
            f"[red]error:[/] {escape(_one_line(exc.format_message()))}{hint}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
    except typer.Abort:
        err.print("[red]interrupted[/]")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)
    except (UserError, ValueError, OSError) as exc:  # bad input, or the file system said no
        if debug:
            raise
        err.print(f"[red]error:[/] {escape(_one_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception:
        if debug:
            raise
        traceback.print_exc()
        err.print(
            f"[red]headstart {headstart.__version__} hit an unexpected error: a bug.[/] Please "
            "report it, with the command you ran and the traceback above.",
            highlight=False,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)  # as a standalone click command does
