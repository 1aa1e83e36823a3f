"""Every option, written once: a dataclass field whose metadata carries its help text.

:class:`RunOptions` holds what every run shares (data columns, the source model, seed,
sizes); each registered method's config dataclass holds its own knobs
(``headstart/methods/<name>/config.py``). :data:`FitOptions` is generated from both: the
run options plus the union of every method's fields, which default to ``None`` ("the
chosen method's default"). The CLI flags, the reproduce command and the README's options
table are generated from the same fields, so a new method's option appears everywhere by
being declared in its config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from headstart._fields import fraction, non_negative, option, positive
from headstart.cache._engine import ENGINES
from headstart.data._transforms import Augment


@dataclass(frozen=True)
class RunOptions:
    """The options every run shares, whatever the method."""

    model: str | None = option(
        "Backbone name (default per modality), or 'auto': rank the offline zoo, then pick."
    )
    strategy: str = option(
        "The method: extract, finetune, scratch, bitfit, ... (`headstart methods` lists them).",
        default="extract",
        check=lambda v: v in _method_names(),
        must="a registered method: `headstart methods` lists them",
    )
    layer: str | None = option("Reuse the network up to this block (`headstart models --json`).")
    weights: str | None = option("Local weights file (safetensors or state dict) for the model.")
    batch_size: int = option(
        "Batch size for training and extraction.", default=32, check=positive, must="> 0"
    )
    image_size: int | None = option(
        "Override the backbone's input size (pixels; smaller is faster).",
        default=None,
        check=positive,
        must="> 0",
    )
    augment: Augment = option("Training-time augmentation.", default_factory=Augment)  # noqa: RUF009
    seed: int = option("Random seed (split, initialisation, order).", default=0)
    val: float = option(
        "Fraction held out for validation (when the data names no split).",
        default=0.15,
        check=fraction,
        must="in [0, 1)",
    )
    test: float = option(
        "Fraction held out for testing (when the data names no split).",
        default=0.15,
        check=fraction,
        must="in [0, 1)",
    )
    text_column: str = option("Text column of a CSV/TSV/JSONL table.", default="text")
    label_column: str = option(
        "Label column of a table or manifest; several, comma-separated (a,b): a multi-task "
        "model, one head per column.",
        default="label",
    )
    weighting: str | None = option(
        "Multi-task only (several --label-column): how the task losses combine: equal, "
        "uncertainty, pcgrad or gradnorm (default equal).",
        default=None,
        check=lambda v: v in _weightings(),
        must="one of: equal, uncertainty, pcgrad, gradnorm",
    )
    path_column: str | None = option("Image path column of a manifest (default: guessed).")
    strict: bool = option("Fail on unreadable images instead of skipping them.", default=False)
    resume: bool = option(
        "Continue an interrupted run from its last epoch checkpoint next to --out.", default=False
    )
    cache_dir: str | None = option("Feature cache folder (default: ~/.cache/headstart).", cli=False)
    engine: str = option(
        "What runs the frozen backbone when features are extracted: auto (a measured probe "
        "picks the fastest of torch, onnx and bf16 that passes the parity check), torch, "
        "onnx (ONNX Runtime) or bf16 (native bf16 CPUs only).",
        default="auto",
        check=lambda v: v in ENGINES,
        must="one of: " + ", ".join(ENGINES),
    )


# Options that change where things go, never a result.
NO_EFFECT = ("cache_dir", "resume", "engine")  # engine: features equal to a tolerance


def method_fields(config_classes: list[type]) -> dict[str, dataclasses.Field]:
    """The union of the methods' config fields by name (the first declaration wins; a
    field declared twice must have the same type)."""
    out: dict[str, dataclasses.Field] = {}
    for cls in config_classes:
        for f in dataclasses.fields(cls):
            if f.name in out and str(out[f.name].type) != str(f.type):
                raise TypeError(f"{cls.__name__}.{f.name}: {f.type} vs {out[f.name].type}")
            out.setdefault(f.name, f)
    return out


def build_fit_options(config_classes: list[type]) -> type:
    """``FitOptions``: :class:`RunOptions` plus every method field, defaulting to ``None``."""
    run_names = {f.name for f in dataclasses.fields(RunOptions)}
    extra = []
    for name, f in method_fields(config_classes).items():
        if name in run_names:
            raise TypeError(f"method option {name!r} clashes with a run option")
        meta = dict(f.metadata)
        meta["method"] = True
        extra.append((name, f"{f.type} | None", field(default=None, metadata=meta)))
    cls = dataclasses.make_dataclass(
        "FitOptions",
        extra,
        bases=(RunOptions,),
        frozen=True,
        namespace={"__post_init__": _check_all, "__module__": "headstart._options"},
    )
    cls.__doc__ = (
        "Every knob of :func:`headstart.fit`: the run options (:class:`RunOptions`) and "
        "each method's own (``None``: the method's default). `headstart methods` lists them."
    )
    return cls


_MUST = {positive: "> 0", non_negative: ">= 0", fraction: "in [0, 1)"}  # when `must` is unsaid


def _check_all(self: Any) -> None:
    for f in dataclasses.fields(self):
        check = f.metadata.get("check")
        value = getattr(self, f.name)
        if check is not None and value is not None and not check(value):
            must = f.metadata["must"] or _MUST.get(check, "valid")
            raise ValueError(f"option {flag_of(f)}: {value!r} is invalid; it must be {must}")


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def options_dict(opts: Any) -> dict[str, Any]:
    """``opts`` as plain JSON-able values (nested dataclasses as dicts)."""
    return dataclasses.asdict(opts)


def _weightings() -> tuple[str, ...]:
    from headstart.multitask._train import WEIGHTINGS

    return WEIGHTINGS


def _method_names() -> list[str]:
    from headstart.methods import list_methods

    return [m.name for m in list_methods()]


def _method_configs() -> list[type]:
    from headstart.methods import list_methods

    return [m.config_cls for m in list_methods()]


FitOptions = build_fit_options(_method_configs())


def method_config(opts: Any, name: str | None = None) -> Any:
    """The config of method ``name`` (default ``opts.strategy``): its fields set in
    ``opts`` (not ``None``), the method's defaults for the rest."""
    from headstart.methods import get_method

    info = get_method(name or opts.strategy)
    given = {
        f.name: getattr(opts, f.name)
        for f in dataclasses.fields(info.config_cls)
        if getattr(opts, f.name, None) is not None
    }
    return info.config_cls(**given)


def unused_options(opts: Any) -> list[str]:
    """Method options set in ``opts`` that the chosen method does not have."""
    from headstart.methods import get_method

    own = {f.name for f in dataclasses.fields(get_method(opts.strategy).config_cls)}
    return [
        f.name
        for f in dataclasses.fields(opts)
        if f.metadata.get("method") and f.name not in own and getattr(opts, f.name) is not None
    ]


__all__ = [
    "NO_EFFECT",
    "FitOptions",
    "RunOptions",
    "build_fit_options",
    "flag_of",
    "method_config",
    "options_dict",
    "unused_options",
]
