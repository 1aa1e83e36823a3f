"""The adaptation-method registry: every way of moving a source model to a target domain.

An adaptation method is a function ``fn(task: AdaptTask, config) -> Candidate``
registered with :func:`register_adapt_method`, with a frozen config dataclass (fields
made with :func:`headstart._fields.option`, so ``headstart methods`` lists them). It is
a separate registry from :mod:`headstart.methods` because the contract differs: an
adaptation method receives unlabelled target data beside the labelled source, and
``headstart fit --strategy`` cannot run it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

USES = ("target features", "target batchnorm", "labelled target")


class NotApplicable(ValueError):
    """The method cannot run on this task (no BatchNorm layer, no labelled target...)."""


@dataclass(frozen=True)
class AdaptMethodInfo:
    """A registered adaptation method: ``uses`` says what of the target it reads
    (``"target features"``; ``"target batchnorm"``: one more backbone pass over the
    target; ``"labelled target"``: needs ``target_labelled``)."""

    name: str
    fn: Callable[..., Any]
    config_cls: type
    summary: str
    uses: tuple[str, ...] = ("target features",)
    modalities: tuple[str, ...] | None = None

    @property
    def kind(self) -> str:
        return "adapt"

    def applies_to(self, modality: str) -> bool:
        return self.modalities is None or modality in self.modalities


_METHODS: dict[str, AdaptMethodInfo] = {}


def register_adapt_method(
    name: str,
    fn: Callable[..., Any],
    config_cls: type,
    summary: str,
    uses: tuple[str, ...] = ("target features",),
    modalities: tuple[str, ...] | None = None,
) -> AdaptMethodInfo:
    """Add an adaptation method (a name can be registered once)."""
    bad = set(uses) - set(USES)
    if bad:
        raise ValueError(f"{name}: uses must be among {USES}, not {sorted(bad)}")
    if name in _METHODS or name == "auto":
        raise ValueError(f"adaptation method {name!r} is already registered")
    info = AdaptMethodInfo(name, fn, config_cls, summary, tuple(uses), modalities)
    _METHODS[name] = info
    return info


def get_adapt_method(name: str) -> AdaptMethodInfo:
    """The registered adaptation method ``name``; unknown names fail with the choices."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown adaptation method {name!r}; choose auto or one of {', '.join(_METHODS)}"
        ) from None


def list_adapt_methods() -> list[AdaptMethodInfo]:
    """Registered adaptation methods, in registration order."""
    return list(_METHODS.values())


__all__ = [
    "AdaptMethodInfo",
    "NotApplicable",
    "get_adapt_method",
    "list_adapt_methods",
    "register_adapt_method",
]
