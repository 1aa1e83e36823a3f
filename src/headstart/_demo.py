"""The embedded default job: a real transfer on real data that ships with an installed package.

A few hundred Fashion-MNIST images (Debian's ``dataset-fashion-mnist``), EfficientNet-Lite0
pre-trained on ImageNet (weights inside a pip package), the fast feature-extraction path,
and the same network trained from scratch for comparison. Offline, on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from headstart._fit import FitResult, fit
from headstart._io import MARKER, check_out, is_headstart_output
from headstart._progress import say
from headstart.datasets import fashion_mnist_folder


def _is_demo_folder(out: Path) -> bool:
    """A demo folder of 0.1 (before the output marker): data plus headstart runs only."""
    if not out.is_dir():
        return False
    names = {p.name for p in out.iterdir()}
    runs = [out / n for n in ("extract", "scratch") if n in names]
    return (
        "data" in names
        and names <= {"data", "extract", "scratch", MARKER}
        and all(is_headstart_output(r) for r in runs)
    )


def run_demo(
    out: str | os.PathLike[str] = "runs/demo",
    model: str = "efficientnet_lite0.in1k",
    train_per_class: int = 50,
    test_per_class: int = 100,
    image_size: int = 112,
    scratch_epochs: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """Build the demo data under ``out/data``, fit ``extract`` and ``scratch`` into
    ``out/extract`` and ``out/scratch``; return a summary of both."""
    out = Path(out)
    if not _is_demo_folder(out):
        check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()
    data = out / "data"
    if not (data / "train").is_dir():
        say(
            f"writing Fashion-MNIST sample to {data} "
            f"({train_per_class}/class for training, {test_per_class}/class for testing)"
        )
        fashion_mnist_folder(data, train_per_class, test_per_class, seed)
    runs: dict[str, FitResult] = {}
    for strategy in ("extract", "scratch"):
        say(
            f"[bold]{strategy}[/]: {model} "
            f"({'random init' if strategy == 'scratch' else 'pre-trained on ImageNet'})"
        )
        runs[strategy] = fit(
            data,
            out / strategy,
            model=model,
            strategy=strategy,
            image_size=image_size,
            epochs=scratch_epochs,
            seed=seed,
        )
    return {
        "data": str(data),
        "model": model,
        "samples": runs["extract"].metrics["samples"],
        "runs": {
            s: {
                "test_accuracy": r.metrics["splits"]["test"]["accuracy"],
                "test_macro_f1": r.metrics["splits"]["test"]["macro_f1"],
                "seconds": r.metrics["seconds"]["total"],
                "out": str(r.out),
            }
            for s, r in runs.items()
        },
    }
