"""The method registry: every kind of transfer (and every baseline) is a plug-in.

A method lives in ``headstart/methods/<name>/``: ``config.py`` (a frozen dataclass whose
fields carry their help text, see :func:`headstart._fields.option`), ``method.py`` (a
:class:`~headstart.methods.Method` subclass) and ``__init__.py``, which calls
:func:`register_method`. The package imports every folder it finds, so adding a method
edits nothing outside its folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["transfer", "baseline", "scratch"]
KINDS: tuple[str, ...] = ("transfer", "baseline", "scratch")


@dataclass(frozen=True)
class MethodInfo:
    """A registered method: its name, config dataclass, implementation and kind
    (``transfer`` reuses a pre-trained source; ``scratch`` trains the same architecture
    from random weights; ``baseline`` is a classical model with no pre-training), the
    modalities it applies to (``None``: all) and a one-line summary."""

    name: str
    config_cls: type
    method_cls: type
    kind: Kind
    summary: str
    modalities: tuple[str, ...] | None = None

    def applies_to(self, modality: str) -> bool:
        return self.modalities is None or modality in self.modalities


_METHODS: dict[str, MethodInfo] = {}


def register_method(
    name: str,
    config_cls: type,
    method_cls: type,
    kind: Kind,
    summary: str,
    modalities: tuple[str, ...] | None = None,
) -> MethodInfo:
    """Add a method to the registry (a name can be registered once)."""
    if kind not in KINDS:
        raise ValueError(f"{name}: kind must be one of {KINDS}, not {kind!r}")
    if name in _METHODS:
        raise ValueError(f"method {name!r} is already registered")
    info = MethodInfo(name, config_cls, method_cls, kind, summary, modalities)
    _METHODS[name] = info
    return info


def get_method(name: str) -> MethodInfo:
    """The registered method ``name``; unknown names fail with the choices."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; choose from {', '.join(_METHODS)} (`headstart methods`)"
        ) from None


def list_methods(kind: str | None = None, modality: str | None = None) -> list[MethodInfo]:
    """Registered methods, in registration order, optionally of one kind / modality."""
    return [
        m
        for m in _METHODS.values()
        if (kind is None or m.kind == kind) and (modality is None or m.applies_to(modality))
    ]


def kind_of(name: str) -> str:
    """``"transfer"``, ``"scratch"`` or ``"baseline"``: what the registry says."""
    return get_method(name).kind


__all__ = ["KINDS", "MethodInfo", "get_method", "kind_of", "list_methods", "register_method"]
