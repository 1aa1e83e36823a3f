"""The ``headstart fit`` command line that reproduces a fit: the data source plus every
option that differs from its default, each spelled as the CLI spells it."""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headstart._fit import FitOptions


def _number(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


# FitOptions field -> (CLI flag, how the value is written); booleans are bare flags.
CLI_FLAGS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "model": ("--model", str),
    "strategy": ("--strategy", str),
    "layer": ("--layer", str),
    "weights": ("--weights", str),
    "head": ("--head", str),
    "hidden": ("--hidden", lambda v: ",".join(str(h) for h in v)),
    "dropout": ("--dropout", _number),
    "unfreeze": ("--unfreeze", str),
    "lr": ("--lr", _number),
    "epochs": ("--epochs", str),
    "batch_size": ("--batch-size", str),
    "image_size": ("--image-size", str),
    "seed": ("--seed", str),
    "text_column": ("--text-column", str),
    "label_column": ("--label-column", str),
    "path_column": ("--path-column", str),
    "strict": ("--strict", str),
}
AUGMENT_FLAGS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "crop": ("--no-crop", str),  # only ever written when switched off
    "flip": ("--no-flip", str),
    "rotate": ("--rotate", _number),
}
NO_EFFECT = ("cache_dir",)  # where features are cached changes no result


def _flags(
    opts: Any, defaults: Any, table: dict[str, tuple[str, Callable[[Any], str]]]
) -> tuple[list[str], list[str]]:
    """CLI words for the non-default fields of ``opts`` found in ``table``, and
    ``name=value`` for the non-default fields the CLI cannot set."""
    words: list[str] = []
    api_only: list[str] = []
    for f in dataclasses.fields(opts):
        value = getattr(opts, f.name)
        if f.name in NO_EFFECT or value == getattr(defaults, f.name):
            continue
        if dataclasses.is_dataclass(value):
            continue  # nested options (augment) are handled by their own table
        if f.name not in table:
            api_only.append(f"{f.name}={value!r}")
        elif isinstance(value, bool):
            words.append(table[f.name][0])
        else:
            flag, fmt = table[f.name]
            words += [flag, fmt(value)]
    return words, api_only


def reproduce_command(
    source: str | os.PathLike[str], opts: FitOptions, out: str | os.PathLike[str] | None = None
) -> str:
    """``headstart fit SOURCE --out OUT ...``: the shell command (quoted with
    :func:`shlex.quote`) that fits again with ``opts``. Options the CLI cannot set are
    listed in a trailing ``#`` comment, so the line stays runnable and says what differs."""
    from headstart._fit import FitOptions

    defaults = FitOptions()
    words, api_only = _flags(opts, defaults, CLI_FLAGS)
    augment, augment_api = _flags(opts.augment, defaults.augment, AUGMENT_FLAGS)
    words += augment
    api_only += [f"augment.{a}" for a in augment_api]
    line = shlex.join(["headstart", "fit", str(source), "--out", str(out or "OUT"), *words])
    if api_only:
        line += "  # Python API only, not settable here: " + ", ".join(api_only)
    return line


__all__ = ["AUGMENT_FLAGS", "CLI_FLAGS", "reproduce_command"]
