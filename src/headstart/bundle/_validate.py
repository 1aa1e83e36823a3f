"""Checking a bundle's ``headstart.json`` before anything is built from it.

A hand-edited or damaged config (a key deleted, a value of the wrong type, a label map
whose length no longer matches the head, a layer the backbone does not have) stops with a
:class:`~headstart._errors.BundleError` naming the file and the key, instead of a
traceback from deep inside model building. The head's width is also checked against the
tensors in ``model.safetensors`` (their shapes only: the header is read, not the data).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path
from typing import Any

from headstart._errors import BundleError
from headstart.zoo._spec import BackboneSpec

MODALITIES = ("image", "text", "audio")


def read_config(cfg_path: Path) -> dict[str, Any]:
    """``headstart.json`` parsed and checked (:func:`validate_config`; a multi-task
    bundle's, ``"kind": "multitask"``, by its own validator)."""
    try:
        config = json.loads(cfg_path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BundleError(f"{cfg_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"{cfg_path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})") from exc
    except (ValueError, RecursionError) as exc:  # a huge number, deep nesting
        raise BundleError(f"{cfg_path}: unreadable JSON ({exc})") from exc
    if isinstance(config, dict) and config.get("kind") == "multitask":
        from headstart.multitask._bundle import validate_multitask_config

        validate_multitask_config(config, cfg_path)
    else:
        validate_config(config, cfg_path)
    return config


def validate_config(config: Any, cfg_path: Path, weights: Path | None = None) -> None:
    """Raise :class:`BundleError` (``"FILE: key 'K': what is wrong"``) unless ``config``,
    read from ``cfg_path``, can be loaded; ``weights`` (default: ``model.safetensors`` next
    to it) is checked against the head."""
    where = str(cfg_path)
    if not isinstance(config, dict):
        raise BundleError(f"{where}: expected a JSON object, found {type(config).__name__}")

    def bad(key: str, why: str) -> BundleError:
        return BundleError(f"{where}: key {key!r}: {why}")

    from headstart.bundle._bundle import BUNDLE_FORMAT

    if config.get("format") != BUNDLE_FORMAT:
        raise bad("format", f"unsupported bundle format {config.get('format')!r}")
    for key in ("modality", "backbone", "layer", "head", "classes"):
        if key not in config:
            raise bad(key, "missing")
    if config["modality"] not in MODALITIES:
        raise bad("modality", f"{config['modality']!r} is not one of {', '.join(MODALITIES)}")
    if not isinstance(config["layer"], str):
        raise bad("layer", f"expected a block name, found {_kind(config['layer'])}")
    spec = _spec(config["backbone"], bad)
    if spec.modality != config["modality"]:
        raise bad("modality", f"{config['modality']!r}, but the backbone is {spec.modality}")
    if config["layer"] not in spec.blocks:
        raise bad("layer", f"{config['layer']!r} is not a block of {spec.name} ({spec.blocks})")
    classes = config["classes"]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise bad("classes", "expected a list of class names (texts)")
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise bad("classes", f"expected two or more distinct class names, found {classes!r}")
    n_out = _check_head(config["head"], config.get("feature_dim"), bad)
    if n_out is not None and n_out != len(classes):
        raise bad("classes", f"{len(classes)} names, but the head has {n_out} outputs")
    weights = weights or cfg_path.parent / "model.safetensors"
    shapes = _weight_shapes(weights)
    _check_head_weights(shapes, config["head"], len(classes), weights, where)
    adapter = config.get("adapter")
    if adapter is not None and not isinstance(adapter, dict):
        raise bad("adapter", f"expected an object, found {_kind(adapter)}")
    if adapter and adapter.get("save") == "adapter":
        return  # the base is rebuilt from the zoo and checked by its digest at load
    _check_backbone_weights(spec, config["layer"], cfg_path.parent / "assets", shapes, weights, bad)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _spec(d: Any, bad: Any) -> BackboneSpec:
    if not isinstance(d, dict):
        raise bad("backbone", f"expected an object, found {_kind(d)}")
    required = [
        f.name
        for f in dataclasses.fields(BackboneSpec)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    for name in required:
        if name not in d:
            raise bad(f"backbone.{name}", "missing")
    for name in ("name", "arch", "builder"):
        if not isinstance(d[name], str):
            raise bad(f"backbone.{name}", f"expected a text, found {_kind(d[name])}")
    if not _is_count(d["feature_dim"]):
        raise bad("backbone.feature_dim", f"expected a positive integer: {d['feature_dim']!r}")
    blocks = d["blocks"]
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, str) for b in blocks):
        raise bad("backbone.blocks", "expected a list of block names")
    for name in ("preprocess", "weights"):
        if not isinstance(d[name], dict):
            raise bad(f"backbone.{name}", f"expected an object, found {_kind(d[name])}")
    if not isinstance(d.get("extra", {}), dict):
        raise bad("backbone.extra", f"expected an object, found {_kind(d['extra'])}")
    try:
        spec = BackboneSpec.from_dict(d)
    except (KeyError, TypeError, ValueError) as exc:
        raise bad("backbone", f"not a valid backbone description ({exc!s})") from exc
    _check_preprocess(spec, bad)
    from headstart.bundle._skeleton import SKELETONS
    from headstart.zoo._registry import _BUILDERS

    if spec.builder not in SKELETONS and spec.builder not in _BUILDERS:
        raise bad("backbone.builder", f"{spec.builder!r} is not a builder this version knows")
    return spec


def _check_preprocess(spec: BackboneSpec, bad: Any) -> None:
    pre = spec.preprocess
    if spec.modality == "audio":
        rate = getattr(pre, "sample_rate", None)
        if not _is_count(rate):
            raise bad("backbone.preprocess.sample_rate", f"expected a positive integer: {rate!r}")
        secs = getattr(pre, "clip_seconds", None)
        if not (isinstance(secs, int | float) and math.isfinite(secs) and secs > 0):
            raise bad("backbone.preprocess.clip_seconds", f"expected seconds > 0: {secs!r}")
    elif spec.modality == "image":
        size = getattr(pre, "input_size", None)
        if not _is_count(size):
            raise bad("backbone.preprocess.input_size", f"expected a positive integer: {size!r}")
        crop = getattr(pre, "crop_pct", None)
        if not (isinstance(crop, int | float) and math.isfinite(crop) and 0 < crop <= 1):
            raise bad("backbone.preprocess.crop_pct", f"expected a number in (0, 1]: {crop!r}")
        for name in ("mean", "std"):
            v = getattr(pre, name, None)
            ok = isinstance(v, tuple) and len(v) == 3
            if not ok or not all(isinstance(x, int | float) and math.isfinite(x) for x in v):
                raise bad(f"backbone.preprocess.{name}", "expected three numbers")
        if not all(x != 0 for x in pre.std):  # type: ignore[union-attr]
            raise bad("backbone.preprocess.std", "a standard deviation of 0")
    else:
        length = getattr(pre, "max_length", None)
        if not _is_count(length):
            raise bad("backbone.preprocess.max_length", f"expected a positive integer: {length!r}")


def _check_head(h: Any, feature_dim: Any, bad: Any) -> int | None:
    """The number of outputs the head config declares (``None`` when it does not say)."""
    if not isinstance(h, dict):
        raise bad("head", f"expected an object, found {_kind(h)}")
    from headstart.surgery._heads import head_types

    if h.get("type", "mlp") not in head_types():
        raise bad("head.type", f"{h['type']!r} is not a head type this version knows")
    if feature_dim is not None and not _is_count(feature_dim):
        raise bad("feature_dim", f"expected a positive integer, found {feature_dim!r}")
    for key in ("in_dim", "n_classes"):
        if key in h and not _is_count(h[key]):
            raise bad(f"head.{key}", f"expected a positive integer, found {h[key]!r}")
    if "hidden" in h and (
        not isinstance(h["hidden"], list) or not all(_is_count(x) for x in h["hidden"])
    ):
        raise bad("head.hidden", f"expected a list of positive integers, found {h['hidden']!r}")
    if "dropout" in h:
        p = h["dropout"]
        if not (isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p < 1):
            raise bad("head.dropout", f"expected a number in [0, 1), found {p!r}")
    if h.get("type", "mlp") == "mlp":  # the plain head: every shape key is needed to rebuild it
        for key in ("in_dim", "hidden", "dropout", "n_classes"):
            if key not in h:
                raise bad(f"head.{key}", "missing")
    if feature_dim is not None and "in_dim" in h and h["in_dim"] != feature_dim:
        raise bad("head.in_dim", f"{h['in_dim']}, but the features are {feature_dim} wide")
    return h.get("n_classes")


def _weight_shapes(path: Path) -> dict[str, list[int]]:
    """The shape of every tensor in a safetensors file (its header only)."""
    if not path.is_file():
        raise BundleError(f"{path}: missing (the bundle's weights)")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # a damaged header: safetensors raises its own error type
        raise BundleError(f"{path}: not a readable safetensors file ({_line(exc)})") from exc


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_backbone_weights(
    spec: BackboneSpec, layer: str, assets: Path, shapes: dict, path: Path, bad: Any
) -> None:
    """The backbone the config describes can be rebuilt, and its tensors have the shapes
    of those of the same name in the weights file. The architecture is built on the
    ``meta`` device (no memory, no data); a builder that needs real tensors gets a CPU
    build instead."""
    import torch

    from headstart.bundle._skeleton import skeleton

    try:
        with torch.device("meta"):
            backbone = skeleton(spec, layer, assets)
    except Exception:  # some builders compute on real tensors: build it for real
        try:
            backbone = skeleton(spec, layer, assets)
        except Exception as exc:  # whatever the edited description made the builder do
            raise bad("backbone", f"cannot rebuild {spec.name} from it ({_line(exc)})") from exc
    for name, t in backbone.state_dict().items():
        key = f"backbone.{name}"
        if key in shapes and list(t.shape) != shapes[key]:
            raise bad(
                "backbone",
                f"describes {key} as {list(t.shape)}, but it is {shapes[key]} in {path.name}",
            )


def _check_head_weights(shapes: dict, h: dict, n_classes: int, path: Path, where: str) -> None:
    """The head's last layer in the weights file has ``n_classes`` outputs; a plain head's
    layers (``in_dim``, ``hidden``, ``n_classes``) have the widths of those in the file."""
    linears = sorted(
        ((k, s) for k, s in shapes.items() if k.startswith("head.") and len(s) == 2),
        key=lambda ks: _index(ks[0]),
    )
    if not linears:
        return
    key, shape = linears[-1]
    if shape[0] != n_classes:
        raise BundleError(
            f"{where}: key 'classes': {n_classes} names, but the head in {path.name} "
            f"({key}) has {shape[0]} outputs"
        )
    if "type" not in h:
        widths = [h["in_dim"], *h["hidden"], h["n_classes"]]
        described = [[o, i] for i, o in itertools.pairwise(widths)]
        held = [list(s) for _, s in linears]
        if described != held:
            raise BundleError(
                f"{where}: key 'head': describes layers of shape {described}, but "
                f"{path.name} holds {held}"
            )


def _index(key: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in key.split(".")[1:-1])


__all__ = ["read_config", "validate_config"]
