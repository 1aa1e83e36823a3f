"""Progress bars (rich) that every long step uses; silenced globally with ``set_quiet``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
_STATE = {"quiet": False}
console = Console(stderr=True)


def set_quiet(quiet: bool) -> None:
    _STATE["quiet"] = quiet


def is_quiet() -> bool:
    return _STATE["quiet"]


def say(message: str) -> None:
    """A status line on stderr, unless quiet."""
    if not _STATE["quiet"]:
        console.print(message)


def track(iterable: Iterable[T], total: int, description: str, unit_scale: int = 1) -> Iterator[T]:
    """Iterate with a progress bar; ``unit_scale`` items advance per step (e.g. batch size)."""
    if _STATE["quiet"] or total <= 0:
        yield from iterable
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        for x in iterable:
            yield x
            bar.advance(task, min(unit_scale, total - bar.tasks[0].completed))
