"""Adapter bundles: a LoRA model saved as what changed, and rebuilt from the offline zoo.

A ``lora`` bundle (``"adapter": {"type": "lora", "save": "adapter"}`` in
``headstart.json``) holds in ``model.safetensors`` only the ``peft`` adapter tensors
(``...lora_A.default.weight``, ``...lora_B.default.weight``) and the head. The base network
is a *reference*: its zoo name and the sha256 of its state dict (:func:`state_digest`).
Loading rebuilds the base from the zoo (packaged weights, offline), refuses a base whose
digest differs (:class:`~headstart._errors.BundleError` naming the file), injects the
adapters with the stored ``peft`` settings and loads the saved tensors strictly.

``"save": "merged"`` (``--lora-save merged``, or a base the zoo cannot rebuild offline by
name: ``--weights FILE``, hub and user models) is a plain full bundle whose adapters were
merged into the weights before saving.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from headstart._errors import BundleError
from headstart.zoo._backbone import Backbone
from headstart.zoo._spec import BackboneSpec

OFFLINE_KINDS = ("package", "random")  # a zoo name alone rebuilds these weights offline


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over a state dict: every key (sorted), its dtype and shape, and its bytes."""
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}|{t.dtype}|{tuple(state[key].shape)}\n".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def has_adapters(module: nn.Module) -> bool:
    return any("lora_" in k for k in module.state_dict())


def base_state(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the network under the adapters, named as the plain network's
    (``x.base_layer.weight`` is ``x.weight``; adapter tensors left out)."""
    return {
        k.replace(".base_layer.", "."): v
        for k, v in backbone.state_dict().items()
        if "lora_" not in k
    }


def base_reference(spec: BackboneSpec, backbone: Backbone, weights: Any) -> tuple[dict | None, str]:
    """The reference an adapter bundle keeps to ``backbone`` (its source weights, before
    any adapter): ``({"model": name, "weights": ..., "sha256": ...}, "")``, or ``(None,
    why)`` when the zoo cannot rebuild it offline by name."""
    from headstart.zoo._registry import get_spec

    if weights is not None:
        return None, "the base weights came from --weights FILE"
    try:
        zoo = get_spec(spec.name)
    except Exception:
        zoo = None
    if zoo is None or zoo.weights != spec.weights or spec.weights.kind not in OFFLINE_KINDS:
        return None, f"{spec.name} is not in the offline zoo ({spec.weights.describe()})"
    digest = state_digest(backbone.state_dict())
    if spec.weights.kind == "random":  # seeded test models rebuild alike; others may not
        from headstart.zoo._registry import create_backbone

        with torch.random.fork_rng(devices=[]):  # the run's own random stream untouched
            again = create_backbone(spec, layer=backbone.layer)
        again.pop_source_head_inplace()
        if state_digest(again.state_dict()) != digest:
            return None, f"{spec.name}'s random weights are not rebuilt alike from the zoo"
    ref = {"model": spec.name, "weights": spec.weights.describe(), "sha256": digest}
    return ref, ""


def adapter_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """What an adapter bundle stores of ``model``: the adapter tensors and the head."""
    return {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if "lora_" in k or k.startswith("head.")
    }


def inject_settings_inplace(backbone: nn.Module, settings: Mapping[str, Any]) -> None:
    """Inject ``peft`` LoRA adapters described by ``settings`` (``r``, ``lora_alpha``,
    ``lora_dropout``, ``target_modules``) into ``backbone``, in place."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=int(settings["r"]),
        lora_alpha=float(settings["lora_alpha"]),
        lora_dropout=float(settings["lora_dropout"]),
        target_modules=list(settings["target_modules"]),
    )
    inject_adapter_in_model(config, backbone)


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every adapter merged into its layer (a plain network)."""
    from headstart.methods.lora.method import merge_inplace

    plain = copy.deepcopy(model)
    merge_inplace(plain.backbone if hasattr(plain, "backbone") else plain)
    return plain


def rebuild_backbone(config: dict[str, Any], cfg_path: Path) -> Backbone:
    """The base backbone of an adapter bundle from the zoo, its digest checked, with the
    bundle's adapters injected (their tensors still to be loaded)."""
    from headstart.zoo._registry import create_backbone, get_spec

    entry = config.get("adapter")
    try:
        base, settings = entry["base"], entry["peft"]  # type: ignore[index]
        name, recorded = str(base["model"]), str(base["sha256"])
        set(settings["target_modules"])
    except (KeyError, TypeError) as exc:
        raise BundleError(
            f"{cfg_path}: key 'adapter': expected 'base' (model, sha256) and 'peft' "
            f"(r, lora_alpha, lora_dropout, target_modules); missing {exc}"
        ) from exc
    try:  # the zoo's entry, with the preprocessing the model was trained with (image size)
        recorded_pre = BackboneSpec.from_dict(config["backbone"]).preprocess
        spec = dataclasses.replace(get_spec(name), preprocess=recorded_pre)
        backbone = create_backbone(spec, layer=config["layer"])
    except Exception as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise BundleError(
            f"{cfg_path}: key 'adapter.base': cannot rebuild the base model {name!r} from the "
            f"zoo ({why})"
        ) from exc
    backbone.pop_source_head_inplace()
    found = state_digest(backbone.state_dict())
    if found != recorded:
        raise BundleError(
            f"{cfg_path}: key 'adapter.base.sha256': the adapters were trained on another "
            f"{name} (base sha256 {recorded[:12]}..., the installed one is {found[:12]}...); "
            "install the weights it was made with, or refit with --lora-save merged"
        )
    try:
        inject_settings_inplace(backbone, settings)
    except Exception as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise BundleError(f"{cfg_path}: key 'adapter.peft': cannot inject ({why})") from exc
    return backbone


def load_adapter_state(model: nn.Module, state: dict[str, torch.Tensor], weights: Path) -> None:
    """Load an adapter bundle's tensors (adapters and head) into ``model``: exactly those
    keys, or a :class:`BundleError` naming ``weights``."""
    full = model.state_dict()
    wanted = {k for k in full if "lora_" in k or k.startswith("head.")}
    if set(state) != wanted:
        missing, extra = sorted(wanted - set(state)), sorted(set(state) - wanted)
        raise BundleError(
            f"{weights}: does not hold the adapters and head headstart.json describes "
            f"(missing {missing[:3]}, unexpected {extra[:3]})"
        )
    bad = [k for k in state if tuple(state[k].shape) != tuple(full[k].shape)]
    if bad:
        raise BundleError(
            f"{weights}: {bad[0]} is {list(state[bad[0]].shape)}, expected "
            f"{list(full[bad[0]].shape)}"
        )
    model.load_state_dict({**full, **state}, strict=True)


__all__ = [
    "adapter_tensors",
    "base_reference",
    "base_state",
    "has_adapters",
    "inject_settings_inplace",
    "load_adapter_state",
    "merged_copy",
    "rebuild_backbone",
    "state_digest",
]
