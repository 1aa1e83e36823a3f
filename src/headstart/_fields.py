"""Dataclass fields that carry their own help text, CLI spelling and validity check.

Every option in headstart is such a field (run options in :mod:`headstart._options`,
each method's in its ``config.py``); the CLI, the reproduce command and the README's
options table read them, so an option is written once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import field
from typing import Any


def option(
    help: str,
    *,
    default: Any = None,
    default_factory: Any = dataclasses.MISSING,
    flag: str | None = None,
    cli: bool = True,
    parse: Callable[[str], Any] | None = None,
    show: Callable[[Any], str] | None = None,
    check: Callable[[Any], bool] | None = None,
    must: str = "",
) -> Any:
    """A dataclass field with its help text. ``flag``: the CLI spelling (default
    ``--name-with-dashes``; a boolean whose default is true is switched off by its
    ``--no-...`` flag); ``cli=False``: Python API only; ``parse`` / ``show``: from / to the
    CLI's text; ``check``: a validity test, with ``must`` saying what a valid value is."""
    meta = {
        "help": help,
        "flag": flag,
        "cli": cli,
        "parse": parse,
        "show": show,
        "check": check,
        "must": must,
    }
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def positive(v: Any) -> bool:
    return v is None or (isinstance(v, int | float) and math.isfinite(v) and v > 0)


def non_negative(v: Any) -> bool:
    return v is None or (isinstance(v, int | float) and math.isfinite(v) and v >= 0)


def fraction(v: Any) -> bool:
    return isinstance(v, int | float) and 0 <= v < 1


def sizes(text: str) -> tuple[int, ...]:
    """``"256,128"`` -> ``(256, 128)``."""
    return tuple(int(h) for h in text.split(",") if h.strip())


def show_sizes(v: tuple[int, ...]) -> str:
    return ",".join(str(h) for h in v)


def show_number(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


__all__ = ["fraction", "non_negative", "option", "positive", "show_number", "show_sizes", "sizes"]
