"""Options several methods share, defined once (each method picks its own default)."""

from __future__ import annotations

from typing import Any

from headstart._fields import option, positive, show_sizes, sizes


def hidden() -> Any:
    return option(
        "Hidden sizes of the new head, e.g. 256,128 (extract's mlp head: 256 when empty).",
        default=(),
        parse=sizes,
        show=show_sizes,
        check=lambda v: all(isinstance(h, int) and h > 0 for h in v),
        must="positive sizes, e.g. 256,128",
    )


def dropout() -> Any:
    return option(
        "Dropout before each layer of the new head.",
        default=0.2,
        check=lambda v: 0 <= v < 1,
        must="in [0, 1)",
    )


def head_lr() -> Any:
    return option("Learning rate of a trained (mlp) head.", default=1e-3, check=positive)


def head_epochs(default: int) -> Any:
    return option("At most this many epochs for a trained head.", default=default, check=positive)


def epochs(default: int = 10) -> Any:
    return option("At most this many end-to-end epochs.", default=default, check=positive)


def patience(default: int) -> Any:
    return option(
        "Stop after this many epochs without a better validation accuracy.",
        default=default,
        check=positive,
    )


def rate(text: str) -> float | str:
    return "auto" if text.strip().lower() == "auto" else float(text)


def lr(default: float) -> Any:
    return option(
        "Stage 2 learning rate (finetune: of the top block; bitfit: of the biases; lora: of "
        "the adapters) and the head's, or auto (a learning-rate range test: the rate at the "
        "loss minimum / 10).",
        default=default,
        parse=rate,
        check=lambda v: v == "auto" or (isinstance(v, int | float) and v > 0),
        must="> 0 or auto",
    )


def warmup() -> Any:
    return option(
        "Fraction of stage 2's steps with a linear learning-rate warm-up before the cosine "
        "decay (0.3: one-cycle).",
        default=0.1,
        check=lambda v: 0 <= v < 1,
        must="in [0, 1)",
    )


def keep_extract() -> Any:
    return option(
        "When stage 2 does not beat the head alone on validation, keep the extract model "
        "(head refit on train + validation) and say so.",
        default=True,
        flag="--no-keep-extract",
    )


def pixel_size() -> Any:
    return option(
        "pixels / small_cnn baselines: images resized to this many pixels a side.",
        default=32,
        check=positive,
    )


__all__ = [
    "dropout",
    "epochs",
    "head_epochs",
    "head_lr",
    "hidden",
    "keep_extract",
    "lr",
    "patience",
    "pixel_size",
    "rate",
    "warmup",
]


def precision() -> Any:
    from headstart.train._precision import PRECISIONS, check_precision

    return option(
        "Precision of end-to-end training: auto (bf16 autocast where the CPU has native "
        "bf16 and a probe step measures it faster), fp32 or bf16.",
        default="auto",
        check=check_precision,
        must="one of " + ", ".join(PRECISIONS),
    )
