"""Reading weight files and mapping them onto a model, strictly.

Nothing here unpickles: state dicts are read with ``safetensors`` or
``torch.load(weights_only=True)``. Every load is strict: a missing, unexpected or
mis-shaped tensor is an error that names it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (memoised on path, size and mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a safetensors file or a plain (non-pickled-object) PyTorch state dict."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{p}: not a safetensors file or a plain PyTorch state dict "
            f"(loaded with weights_only=True): {exc}"
        ) from exc
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{p}: expected a mapping of tensor names to tensors")
    return obj


def _filtered(names: Iterable[str], drop: tuple[str, ...]) -> list[str]:
    return [n for n in names if not any(n.endswith(d) for d in drop)]


def load_by_order(
    model: nn.Module, state: dict[str, torch.Tensor], drop: tuple[str, ...] = ()
) -> None:
    """Load ``state`` into ``model`` pairing tensors by position, not by name.

    For weight files whose key names differ from the model's but whose tensors come in
    the same order. Every shape is checked; counts must match exactly.
    """
    target = model.state_dict()
    src_keys = _filtered(state.keys(), drop)
    dst_keys = _filtered(target.keys(), drop)
    if len(src_keys) != len(dst_keys):
        raise ValueError(f"weights have {len(src_keys)} tensors but the model has {len(dst_keys)}")
    mapped: dict[str, torch.Tensor] = {}
    for s, d in zip(src_keys, dst_keys, strict=True):
        if state[s].shape != target[d].shape:
            raise ValueError(
                f"shape mismatch pairing {s} {tuple(state[s].shape)} "
                f"with {d} {tuple(target[d].shape)}"
            )
        mapped[d] = state[s]
    for d in target:
        if d not in mapped:  # dropped buffers (num_batches_tracked): keep the model's own
            mapped[d] = target[d]
    model.load_state_dict(mapped, strict=True)


def load_by_name_or_order(model: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Load by key names; if names differ but tensors line up by order, load by order."""
    target = model.state_dict()
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    if not missing and not unexpected:
        for k, v in state.items():
            if v.shape != target[k].shape:
                raise ValueError(
                    f"{origin}: {k} has shape {tuple(v.shape)}, "
                    f"model expects {tuple(target[k].shape)}"
                )
        full = {**{k: target[k] for k in target if k not in state}, **state}
        model.load_state_dict(full, strict=True)
        return
    try:
        load_by_order(model, state, drop=("num_batches_tracked",))
    except ValueError as exc:
        raise ValueError(
            f"{origin}: weights do not fit the model. Missing: {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}; unexpected: {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}; by order: {exc}"
        ) from exc
