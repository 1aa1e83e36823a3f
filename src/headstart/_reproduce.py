"""The ``headstart fit`` command line that reproduces a fit: the data source plus every
option that differs from its default, each spelled as the CLI spells it (read from the
options' own fields, :mod:`headstart._options`)."""

from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any

from headstart._fields import show_number
from headstart._options import NO_EFFECT, FitOptions, flag_of


def cli_words(opts: Any, defaults: Any, prefix: str = "") -> tuple[list[str], list[str]]:
    """CLI words for the non-default fields of ``opts`` (nested option dataclasses
    included), and ``name=value`` for the non-default fields the CLI cannot set."""
    words: list[str] = []
    api_only: list[str] = []
    for f in dataclasses.fields(opts):
        value, default = getattr(opts, f.name), getattr(defaults, f.name)
        if f.name in NO_EFFECT or value == default:
            continue
        if dataclasses.is_dataclass(value):
            w, a = cli_words(value, default, f"{prefix}{f.name}.")
            words += w
            api_only += a
        elif not f.metadata.get("cli", True):
            api_only.append(f"{prefix}{f.name}={value!r}")
        elif isinstance(value, bool):
            words.append(flag_of(f))  # a flag that flips the default
        else:
            show = f.metadata.get("show") or show_number
            words += [flag_of(f), show(value)]
    return words, api_only


def reproduce_command(
    source: str | os.PathLike[str], opts: Any, out: str | os.PathLike[str] | None = None
) -> str:
    """``headstart fit SOURCE --out OUT ...``: the shell command (quoted with
    :func:`shlex.quote`) that fits again with ``opts``. Options the CLI cannot set are
    listed in a trailing ``#`` comment, so the line stays runnable and says what differs."""
    words, api_only = cli_words(opts, FitOptions())
    line = shlex.join(["headstart", "fit", str(source), "--out", str(out or "OUT"), *words])
    if api_only:
        line += "  # Python API only, not settable here: " + ", ".join(api_only)
    return line


__all__ = ["cli_words", "reproduce_command"]
