"""The user's zoo: source models developed with ``headstart pretrain``, named ``local/<name>``.

Each entry is a folder ``<zoo>/<name>/`` holding ``entry.json`` (the backbone spec, with
``weights`` pointing at the entry's own copy of the weights, and the provenance: source
data digest, metrics, baselines, date, command) and ``weights.safetensors``, or, for a
transformer text model, ``model/`` (a Hugging Face folder: config, tokenizer and weights,
which ``transformers`` reads offline). The zoo is
``$HEADSTART_ZOO`` or ``$XDG_DATA_HOME/headstart/zoo`` (``~/.local/share/headstart/zoo``).
Entries are written atomically (a temporary folder renamed into place), and an entry
is only ever replaced by another ``pretrain`` of the same name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from headstart._errors import UserError
from headstart.data._modality import list_modalities
from headstart.zoo._spec import BackboneSpec, WeightsSource

PREFIX = "local/"
HF_FOLDER = "model"  # a text entry's Hugging Face folder (instead of weights.safetensors)
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class LocalModelError(UserError, ValueError):
    """A ``local/<name>`` that is not in the user's zoo, or a name that cannot be one."""


def zoo_dir() -> Path:
    env = os.environ.get("HEADSTART_ZOO")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "headstart" / "zoo"


def check_name(name: str) -> str:
    """``name`` (without ``local/``) when it is a valid entry name, else a one-line error."""
    if not NAME.match(name):
        raise LocalModelError(
            f"--name {name!r}: use 1-64 lower-case letters, digits, '_', '.' or '-'"
        )
    return name


def _read(folder: Path) -> BackboneSpec | None:
    """The entry's spec, or ``None`` for a damaged, half-written or foreign entry (it is
    not listed, and nothing else breaks on it)."""
    weights = folder / "weights.safetensors"
    if (folder / HF_FOLDER).is_dir():
        weights = folder / HF_FOLDER
    try:
        entry = json.loads((folder / "entry.json").read_text(encoding="utf-8"))
        spec = BackboneSpec.from_dict(entry["spec"])
        provenance = entry.get("provenance", {})
        if not (
            isinstance(spec.extra, dict)
            and isinstance(provenance, dict)
            and spec.modality in {m.name for m in list_modalities()}
            and isinstance(spec.licence, str)
            and isinstance(spec.description, str)
            and isinstance(spec.params_m, int | float)
            and isinstance(spec.feature_dim, int)
            and (weights.is_file() or (weights / "config.json").is_file())
        ):
            return None
        return dataclasses.replace(
            spec,
            name=PREFIX + folder.name,
            weights=WeightsSource("file", str(weights)),
            extra={**spec.extra, "provenance": provenance},
        )
    except Exception:
        return None


def local_specs() -> list[BackboneSpec]:
    """Every readable entry of the user's zoo, by name."""
    root = zoo_dir()
    if not root.is_dir():
        return []
    found = (_read(d) for d in sorted(root.iterdir()) if d.is_dir() and NAME.match(d.name))
    return [s for s in found if s is not None]


def get_local_spec(name: str) -> BackboneSpec:
    """The spec of ``local/<name>``; an unknown name fails with the entries there are."""
    short = name.removeprefix(PREFIX)
    spec = _read(zoo_dir() / short) if NAME.match(short) else None
    if spec is None:
        have = ", ".join(s.name for s in local_specs()) or "none yet"
        raise LocalModelError(
            f"unknown model {name!r}: not in your zoo ({zoo_dir()}; entries: {have}). "
            "`headstart pretrain SOURCE --out DIR --name NAME` develops one"
        )
    return spec


def register_local(
    name: str, spec: BackboneSpec, weights: Path, provenance: dict[str, Any]
) -> BackboneSpec:
    """Add (or replace) ``local/<name>``: ``spec``'s architecture with ``weights`` (a
    safetensors file, or a Hugging Face model folder; copied into the entry) and
    ``provenance``; returns the entry's spec."""
    check_name(name)
    root = zoo_dir()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        if Path(weights).is_dir():
            shutil.copytree(weights, tmp / HF_FOLDER)
            locator = HF_FOLDER
        else:
            shutil.copyfile(weights, tmp / "weights.safetensors")
            locator = "weights.safetensors"
        d = spec.with_weights(WeightsSource("file", locator)).to_dict()
        entry = {"spec": d, "provenance": provenance}
        (tmp / "entry.json").write_text(json.dumps(entry, indent=1, default=str), "utf-8")
        final = root / name
        old = None
        if final.exists():
            old = root / f".{name}-old-{os.getpid()}"
            final.rename(old)
        try:
            tmp.rename(final)
        except OSError:
            if old is not None:
                old.rename(final)  # put the previous entry back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return get_local_spec(name)


__all__ = [
    "HF_FOLDER",
    "PREFIX",
    "LocalModelError",
    "check_name",
    "get_local_spec",
    "local_specs",
    "register_local",
    "zoo_dir",
]
