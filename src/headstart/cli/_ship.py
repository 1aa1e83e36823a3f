"""``headstart export`` and ``headstart serve``: ship a bundle (registered on the one ``app``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from headstart.cli._app import app, out


@app.command()
def export(
    bundle: Annotated[Path, typer.Argument(help="A folder written by `headstart fit`.")],
    fmt: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    quantize: Annotated[
        str | None, typer.Option(help="Also write a quantised copy: int8 (model.int8.onnx).")
    ] = None,
) -> None:
    """Export the whole network (backbone + head) as DIR/model.onnx, checked against PyTorch."""
    from headstart.bundle._export import export_onnx

    if fmt != "onnx":
        raise typer.BadParameter(f"{fmt!r}: the only format is onnx", param_hint="--format")
    entry = export_onnx(bundle, quantize=quantize)
    shapes = ", ".join(f"{i['name']} {i['shape']}" for i in entry["inputs"])
    p = entry["parity"]
    out.print(
        f"{bundle / entry['file']}: opset {entry['opset']}, {entry['bytes'] / 1e6:.1f} MB; "
        f"inputs {shapes}",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"parity with PyTorch: max |logit diff| {p['max_abs_diff']:.1e} on {p['items']} "
        f"{p['source']} inputs (tolerance {p['tolerance']:g})",
        highlight=False,
        soft_wrap=True,
    )
    int8 = entry.get("int8")
    if int8 is not None:
        test = int8["test"]
        detail = (
            "no labelled test items to measure accuracy on"
            if test is None
            else f"test accuracy {test['accuracy_int8']:.3f} vs {test['accuracy_fp32']:.3f} "
            f"({test['accuracy_change']:+.3f}) on {test['n']} items"
        )
        colour = "yellow" if test is not None and test["accuracy_change"] < -0.01 else "green"
        out.print(
            f"{bundle / int8['file']}: {int8['bytes'] / 1e6:.1f} MB; [{colour}]{detail}[/]",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def serve(
    bundle: Annotated[Path, typer.Argument(help="A folder written by `headstart fit`.")],
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    runtime: Annotated[str, typer.Option(help="torch | onnx | onnx-int8")] = "torch",
    allow_paths: Annotated[
        bool | None,
        typer.Option(
            "--allow-paths/--no-paths",
            help='Read {"paths": [...]} from the server\'s disk (default: on loopback only).',
        ),
    ] = None,
    max_items: Annotated[int, typer.Option(min=1, help="Inputs per request at most.")] = 64,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="Request body limit, MB.")] = 16.0,
) -> None:
    """Serve predictions over HTTP: GET /health, GET /metadata, POST /predict."""
    from headstart.serve import Limits
    from headstart.serve import serve as run_server

    limits = Limits(max_body_bytes=int(max_body_mb * 1024 * 1024), max_items=max_items)
    out.print(f"loading {bundle} for the {runtime} runtime; then http://{host}:{port}")
    run_server(bundle, host, port, runtime, limits, allow_paths)
