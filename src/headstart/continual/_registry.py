"""The continual-method registry: every way of adding a step of new classes to a model.

A continual method is a function ``fn(task: StepTask, config) -> StepResult`` registered
with :func:`register_continual_method`, with a frozen config dataclass (fields made with
:func:`headstart._fields.option`, so ``headstart methods`` lists them, kind
``continual``). It is a separate registry from :mod:`headstart.methods` because the
contract differs: a continual method starts from an existing head and what the bundle
remembers of the old steps (replay memory, Fisher information, class sums), not from a
backbone and a dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContinualMethodInfo:
    """A registered continual method; ``uses``: what it needs (``"linear head"``: a head
    whose last layer is linear, grown by the new classes) and what of the past it reads
    (``"memory"``: the replay memory; ``"fisher"``: EWC's importance; ``"old head"``;
    ``"class sums"``)."""

    name: str
    fn: Callable[..., Any]
    config_cls: type
    summary: str
    uses: tuple[str, ...] = ()
    modalities: tuple[str, ...] | None = None

    @property
    def kind(self) -> str:
        return "continual"


_METHODS: dict[str, ContinualMethodInfo] = {}


def register_continual_method(
    name: str,
    fn: Callable[..., Any],
    config_cls: type,
    summary: str,
    uses: tuple[str, ...] = (),
) -> ContinualMethodInfo:
    """Add a continual method (a name can be registered once)."""
    if name in _METHODS:
        raise ValueError(f"continual method {name!r} is already registered")
    info = ContinualMethodInfo(name, fn, config_cls, summary, tuple(uses))
    _METHODS[name] = info
    return info


def get_continual_method(name: str) -> ContinualMethodInfo:
    """The registered continual method ``name``; unknown names fail with the choices."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(
            f"--method: unknown continual method {name!r}; choose one of {', '.join(_METHODS)}"
        ) from None


def list_continual_methods() -> list[ContinualMethodInfo]:
    """Registered continual methods, in registration order."""
    return list(_METHODS.values())


__all__ = [
    "ContinualMethodInfo",
    "get_continual_method",
    "list_continual_methods",
    "register_continual_method",
]
