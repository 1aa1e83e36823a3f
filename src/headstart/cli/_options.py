"""CLI flags generated from the option fields (:mod:`headstart._options`), so each option
is written once: its type, flag, help text and default come from its dataclass field."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from headstart._options import FitOptions, flag_of
from headstart.methods import list_methods


def _cli_type(f: dataclasses.Field) -> type:
    if f.metadata.get("parse"):
        return str
    t = str(f.type).replace(" ", "")
    for name, typ in (("bool", bool), ("int", int), ("float", float)):
        if t.startswith(name):
            return typ
    return str


def _default_text(f: dataclasses.Field) -> str:
    """``default: X``; for a method option, each method's default."""
    if not f.metadata.get("method"):
        return "" if f.default is None or f.default is False else f" (default: {f.default})"
    per = {}
    for m in list_methods():
        for g in dataclasses.fields(m.config_cls):
            if g.name == f.name:
                show = g.metadata.get("show") or str
                per[m.name] = "none" if g.default is None else show(g.default)
    if len(set(per.values())) == 1:
        return f" (default: {next(iter(per.values()))}; {', '.join(per)})"
    return " (default: " + ", ".join(f"{k} {v}" for k, v in per.items()) + ")"


def _own_default(f: dataclasses.Field) -> Any:
    """The default a field really has: a method option's is its method's, not ``None``."""
    if not f.metadata.get("method"):
        return f.default
    for m in list_methods():
        for g in dataclasses.fields(m.config_cls):
            if g.name == f.name:
                return g.default
    return f.default


def _leaf_fields(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field]]:
    """``(path, field)`` of every CLI-settable field, nested dataclasses flattened."""
    out: list[tuple[str, dataclasses.Field]] = []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True):
            continue
        if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(
            f.default_factory
        ):
            out += _leaf_fields(f.default_factory, f"{prefix}{f.name}.")  # type: ignore[arg-type]
        else:
            out.append((prefix + f.name, f))
    return out


def _param_name(f: dataclasses.Field) -> str:
    return flag_of(f).lstrip("-").replace("-", "_")


def option_parameters(skip: Sequence[str] = ()) -> list[inspect.Parameter]:
    """Keyword parameters (typer ``Annotated`` options) for every field of
    :data:`FitOptions` the CLI can set, except ``skip``."""
    params = []
    for path, f in _leaf_fields(FitOptions):
        if path in skip:
            continue
        typ = _cli_type(f)
        helptext = f.metadata.get("help", "") + _default_text(f)
        if _own_default(f) is True:
            helptext = "Switch off: " + f.metadata.get("help", "")
        if typ is bool:
            ann, default = Annotated[bool, typer.Option(flag_of(f), help=helptext)], False
        else:
            ann = Annotated[typ | None, typer.Option(flag_of(f), help=helptext)]  # type: ignore[operator]
            default = None
        params.append(
            inspect.Parameter(
                _param_name(f), inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann
            )
        )
    return params


def collect_options(values: dict[str, Any], skip: Sequence[str] = ()) -> dict[str, Any]:
    """``FitOptions`` keyword arguments from the CLI ``values`` the user set (flags given,
    options not ``None``), parsed as each field says; nested options built over their
    defaults."""
    out: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, f in _leaf_fields(FitOptions):
        if path in skip:
            continue
        value = values.get(_param_name(f))
        if value is None or value is False:
            continue
        if value is True:  # a flag flips the default (a method option: its method's)
            default = _own_default(f)
            value = not default if isinstance(default, bool) else True
        elif f.metadata.get("parse"):
            try:
                value = f.metadata["parse"](value)
            except ValueError:
                raise typer.BadParameter(f"{value!r}", param_hint=flag_of(f)) from None
        if "." in path:
            outer, inner = path.split(".", 1)
            nested.setdefault(outer, {})[inner] = value
        else:
            out[path] = value
    defaults = FitOptions()
    for outer, given in nested.items():
        out[outer] = dataclasses.replace(getattr(defaults, outer), **given)
    return out


def with_options(skip: Sequence[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command taking ``options: dict`` (plus its own parameters): the
    generated option flags are added to its signature and collected into ``options``."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "options"]
        generated = option_parameters(skip)
        names = {p.name for p in generated}

        def command(**kwargs: Any) -> Any:
            values = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
            return func(options=collect_options(values, skip), **kwargs)

        keyword = inspect.Parameter.KEYWORD_ONLY
        command.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[p.replace(kind=keyword) for p in own] + generated
        )
        command.__doc__ = func.__doc__
        command.__name__ = func.__name__
        return command

    return decorate


def options_markdown() -> str:
    """The README's options table, from the same fields as the flags: regenerate it with
    ``headstart methods --markdown`` (a test checks the README holds this table)."""
    lines = ["| flag | applies to | default | what it does |", "|---|---|---|---|"]
    methods = list_methods()
    for _, f in _leaf_fields(FitOptions):
        if f.metadata.get("method"):
            users = [
                m.name
                for m in methods
                if f.name in {g.name for g in dataclasses.fields(m.config_cls)}
            ]
            where = ", ".join(users)
            default = _default_text(f).removeprefix(" (default: ").removesuffix(")")
            default = default.split(";")[0]
        else:
            where = "every method"
            default = "" if f.default is None or f.default is False else str(f.default)
            if f.default is True:
                default = "on"
        helptext = f.metadata.get("help", "").replace("|", "\\|")
        lines.append(f"| `{flag_of(f)}` | {where} | {default} | {helptext} |")
    return "\n".join(lines) + "\n"


__all__ = ["collect_options", "option_parameters", "options_markdown", "with_options"]
