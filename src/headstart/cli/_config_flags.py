"""CLI flags generated from the config dataclasses of a plug-in registry (``adapt``'s
methods, and any registry whose entries carry a ``config_cls``), so a method's option is
written once, in its config field: ``--epochs``, ``--reg`` ... with the field's help text,
listing the methods each applies to and their defaults.

A flag sets that field in every method whose config has it (``--rounds`` is
self-training's rounds and TrAdaBoost's); a method whose config lacks it keeps its own.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from headstart._options import _MUST, flag_of
from headstart.cli._options import _cli_type


def config_fields(infos: Sequence[Any]) -> dict[str, tuple[dataclasses.Field, list[Any]]]:
    """``{field name: (field, [methods that have it])}`` over the registry entries'
    ``config_cls`` (the first method's field carries the type and help text)."""
    out: dict[str, tuple[dataclasses.Field, list[Any]]] = {}
    for info in infos:
        for f in dataclasses.fields(info.config_cls):
            if f.metadata.get("cli", True):
                out.setdefault(f.name, (f, []))[1].append(info)
    return out


def _help(f: dataclasses.Field, users: list[Any]) -> str:
    defaults = {}
    for info in users:
        g = next(g for g in dataclasses.fields(info.config_cls) if g.name == f.name)
        defaults[info.name] = g.default
    if len(set(map(repr, defaults.values()))) == 1:
        shown = f"{next(iter(defaults.values()))}; {', '.join(defaults)}"
    else:
        shown = ", ".join(f"{k} {v}" for k, v in defaults.items())
    return f"{f.metadata.get('help', '')} (default: {shown})"


def config_parameters(infos: Sequence[Any]) -> list[inspect.Parameter]:
    """Keyword parameters (typer options, default ``None``: the method's own default) for
    every config field of ``infos``."""
    params = []
    for name, (f, users) in config_fields(infos).items():
        typ = _cli_type(f)
        ann = Annotated[typ | None, typer.Option(flag_of(f), help=_help(f, users))]  # type: ignore[operator]
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann)
        )
    return params


def collect_configs(infos: Sequence[Any], values: dict[str, Any]) -> dict[str, Any]:
    """``{method name: config instance}`` for the methods whose fields the user set
    (``values``: flag values, ``None`` where not given); a value the field's ``check``
    refuses is a ``BadParameter`` naming the flag."""
    given = {k: v for k, v in values.items() if v is not None}
    fields = config_fields(infos)
    for name, value in given.items():
        f = fields[name][0]
        check = f.metadata.get("check")
        if check is not None and not check(value):
            must = f.metadata.get("must") or _MUST.get(check, "valid")
            raise typer.BadParameter(f"{value!r}: it must be {must}", param_hint=flag_of(f))
    out: dict[str, Any] = {}
    for info in infos:
        mine = {k: v for k, v in given.items() if info in fields[k][1]}
        if mine:
            out[info.name] = info.config_cls(**mine)
    return out


def refuse_foreign(infos: Sequence[Any], values: dict[str, Any], method: str | None) -> None:
    """When ``method`` names one method (not ``auto``), a flag given that its config lacks
    is a ``BadParameter`` naming the flag and the methods it belongs to."""
    if method in (None, "auto"):
        return
    fields = config_fields(infos)
    for name, value in values.items():
        if value is None:
            continue
        f, users = fields[name]
        if method not in {u.name for u in users}:
            owners = ", ".join(u.name for u in users)
            raise typer.BadParameter(
                f"does not apply to --method {method} (an option of {owners})",
                param_hint=flag_of(f),
            )


def with_config_flags(
    infos: Callable[[], Sequence[Any]],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command taking ``configs: dict`` (plus its own parameters): a flag per
    config field of the registry ``infos()`` is added to its signature, and the values
    given are collected into ``configs`` (:func:`collect_configs`); with a ``method``
    argument naming one method, flags of other methods are refused
    (:func:`refuse_foreign`)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        registry = list(infos())
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "configs"]
        generated = config_parameters(registry)
        clash = {p.name for p in own} & {p.name for p in generated}
        if clash:
            raise TypeError(f"method option(s) {sorted(clash)} clash with the command's own")
        names = {p.name for p in generated}

        def command(**kwargs: Any) -> Any:
            values = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
            refuse_foreign(registry, values, kwargs.get("method"))
            return func(configs=collect_configs(registry, values), **kwargs)

        keyword = inspect.Parameter.KEYWORD_ONLY
        command.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[p.replace(kind=keyword) for p in own] + generated
        )
        command.__doc__ = func.__doc__
        command.__name__ = func.__name__
        return command

    return decorate


__all__ = [
    "collect_configs",
    "config_fields",
    "config_parameters",
    "refuse_foreign",
    "with_config_flags",
]
