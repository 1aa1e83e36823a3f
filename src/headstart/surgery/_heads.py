"""The head registry: every kind of head or adapter a bundle can hold, by type name.

A head type says how to describe a module as JSON (``describe(module) -> dict | None``:
``None`` when the module is not of this type) and how to rebuild it from that JSON
(``build(config) -> nn.Module``, placeholder weights that ``model.safetensors`` then
fills strictly). The bundle records ``"head": {"type": ..., ...}`` and rebuilds any
registered type; a method with its own head registers it next to its code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from headstart.surgery._model import Standardize, make_head


@dataclass(frozen=True)
class HeadType:
    name: str
    describe: Callable[[nn.Module], dict[str, Any] | None]
    build: Callable[[dict[str, Any]], nn.Module]


_HEADS: dict[str, HeadType] = {}


def register_head(
    name: str,
    describe: Callable[[nn.Module], dict[str, Any] | None],
    build: Callable[[dict[str, Any]], nn.Module],
) -> HeadType:
    if name in _HEADS:
        raise ValueError(f"head type {name!r} is already registered")
    _HEADS[name] = HeadType(name, describe, build)
    return _HEADS[name]


def head_types() -> list[str]:
    """The registered head type names."""
    return list(_HEADS)


def describe_head(head: nn.Module) -> dict[str, Any]:
    """``{"type": name, ...}`` from the first registered type that recognises ``head``."""
    for t in _HEADS.values():
        config = t.describe(head)
        if config is not None:
            return {"type": t.name, **config}
    raise ValueError(
        f"a {type(head).__name__} head cannot be saved: register its type with "
        "headstart.surgery.register_head"
    )


def build_head(config: dict[str, Any]) -> nn.Module:
    """Rebuild a head from :func:`describe_head`'s output (bundles of 0.1 have no
    ``type``: they hold a :func:`make_head` head)."""
    name = config.get("type", "mlp")
    if name not in _HEADS:
        raise ValueError(f"unknown head type {name!r}; known: {', '.join(_HEADS)}")
    return _HEADS[name].build(config)


def _describe_mlp(head: nn.Module) -> dict[str, Any] | None:
    """A :func:`make_head` head: input width, hidden sizes, dropout, classes."""
    if not (isinstance(head, nn.Sequential) and len(head) and isinstance(head[0], Standardize)):
        return None
    linears = [m for m in head if isinstance(m, nn.Linear)]
    drops = [m.p for m in head if isinstance(m, nn.Dropout)]
    return {
        "in_dim": linears[0].in_features,
        "hidden": [m.out_features for m in linears[:-1]],
        "dropout": drops[0] if drops else 0.0,
        "n_classes": linears[-1].out_features,
    }


def _build_mlp(c: dict[str, Any]) -> nn.Module:
    return make_head(c["in_dim"], c["n_classes"], tuple(c["hidden"]), c["dropout"])


register_head("mlp", _describe_mlp, _build_mlp)

__all__ = ["HeadType", "build_head", "describe_head", "head_types", "register_head"]
