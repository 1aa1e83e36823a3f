"""Add or remove a class of a prototype bundle from a few examples, without retraining.

A :class:`~headstart.fewshot.PrototypeHead` holds one row per class: adding a class runs
the bundle's own backbone over its examples and appends their mean (in the head's
transformed space) as a new row; removing one drops its row. The centre and the scale stay
as fitted. The result is written as a new bundle (``out``), or replaces ``bundle`` in
place only when headstart wrote it and it holds nothing else, atomically
(:func:`headstart._io.atomic_dir`). The new folder holds the bundle alone: the fit's
metrics, report and any ONNX export describe the classes before the edit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from headstart._errors import UserError
from headstart._io import MARKER, atomic_dir, check_out, is_headstart_output
from headstart.bundle._bundle import Predictor, load_bundle, write_bundle_into
from headstart.cache._store import extract
from headstart.fewshot._prototype import PrototypeHead
from headstart.surgery._model import TransferModel

# Keys write_bundle_into sets itself; everything else in headstart.json is carried over.
_OWN_KEYS = (
    "format",
    "headstart_version",
    "modality",
    "backbone",
    "layer",
    "feature_dim",
    "head",
    "classes",
    "torch_version",
    "onnx",  # the exported graph has the old classes: it is not carried over
)
# What headstart writes into a bundle folder; anything else there is the user's, and a
# folder holding it is never replaced in place.
_WRITTEN = frozenset(
    {
        "model.safetensors",
        "headstart.json",
        "assets",
        "metrics.json",
        "history.json",
        "predictions.csv",
        "report.html",
        "MODEL_CARD.md",
        "zeroshot.json",
        "model.onnx",
        "model.int8.onnx",
        MARKER,
    }
)


class EditError(UserError, ValueError):
    """A class cannot be added or removed as asked; the message says why."""


def _prototype_bundle(bundle: str | os.PathLike[str]) -> tuple[Predictor, PrototypeHead]:
    predictor = load_bundle(bundle)
    head = predictor.model.head
    if not isinstance(head, PrototypeHead):
        raise EditError(
            f"{bundle}: its head is a {predictor.config['head'].get('type', 'mlp')} head, not "
            "prototypes; fit it with --strategy prototype (or make it with `headstart "
            "zeroshot --out`) to add or remove classes without retraining"
        )
    return predictor, head


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise EditError("the class name is empty")
    return name.strip()


def class_embedding(predictor: Predictor, items: Sequence[Any]) -> tuple[torch.Tensor, int]:
    """The sum of the transformed features of ``items`` and how many there are."""
    head = predictor.model.head
    assert isinstance(head, PrototypeHead)
    feats = extract(predictor.model.backbone, list(items), predictor.modality)
    z = head.embed(torch.from_numpy(feats)).double()
    return z.sum(0), len(items)


def add_class(
    bundle: str | os.PathLike[str],
    name: str,
    items: Sequence[Any],
    out: str | os.PathLike[str] | None = None,
    update: bool = False,
) -> Path:
    """Add class ``name`` to a prototype bundle from its examples ``items`` (image paths or
    texts): its prototype is their mean transformed feature. ``update=True`` adds the
    examples to an existing class instead (its prototype becomes the mean over old and new
    examples, ``(n p + sum z) / (n + m)``). Writes to ``out``, or in place when ``out`` is
    ``None``; returns the folder written."""
    name = _check_name(name)
    target = _target(bundle, out, items)
    predictor, head = _prototype_bundle(bundle)
    if not items:
        raise EditError(f"class {name!r}: no example given (a class needs at least one)")
    exists = name in predictor.classes
    clash = [c for c in predictor.classes if c.casefold() == name.casefold() and c != name]
    if clash:
        raise EditError(f"{bundle}: {name!r} differs from the class {clash[0]!r} only in case")
    if exists and not update:
        raise EditError(
            f"{bundle}: {name!r} is already a class; pass --update to add these examples to it, "
            "or choose another name"
        )
    if update and not exists:
        raise EditError(f"{bundle}: --update: {name!r} is not a class ({predictor.classes})")
    total, n = class_embedding(predictor, items)
    protos, counts = head.prototypes.double(), head.counts.double()
    classes = list(predictor.classes)
    if exists:
        k = classes.index(name)
        protos[k] = (counts[k] * protos[k] + total) / (counts[k] + n)
        counts[k] += n
    else:
        protos = torch.cat([protos, (total / n)[None]])
        counts = torch.cat([counts, torch.tensor([float(n)], dtype=torch.float64)])
        classes.append(name)
    edit = {"edit": "update" if exists else "add", "class": name, "examples": n}
    return _write(predictor, head, protos, counts, classes, target, edit)


def remove_class(
    bundle: str | os.PathLike[str], name: str, out: str | os.PathLike[str] | None = None
) -> Path:
    """Remove class ``name`` (its prototype row) from a prototype bundle; at least two
    classes must remain. Writes to ``out``, or in place; returns the folder written."""
    name = _check_name(name)
    target = _target(bundle, out, ())
    predictor, head = _prototype_bundle(bundle)
    classes = list(predictor.classes)
    if name not in classes:
        raise EditError(f"{bundle}: {name!r} is not a class ({', '.join(classes)})")
    if len(classes) <= 2:
        raise EditError(f"{bundle}: a model needs two or more classes; {name!r} cannot go")
    keep = [i for i, c in enumerate(classes) if c != name]
    protos, counts = head.prototypes.double()[keep], head.counts.double()[keep]
    edit = {"edit": "remove", "class": name}
    return _write(predictor, head, protos, counts, [classes[i] for i in keep], target, edit)


def _target(
    bundle: str | os.PathLike[str], out: str | os.PathLike[str] | None, items: Sequence[Any]
) -> Path:
    """Where the edited bundle goes, refused before any work when it would destroy
    something the user owns (see :func:`headstart._io.check_out`)."""
    bundle = Path(bundle)
    if not (bundle / "headstart.json").is_file():
        raise EditError(f"{bundle}: not a headstart bundle (no headstart.json)")
    if out is None:
        foreign = sorted(p.name for p in bundle.iterdir() if p.name not in _WRITTEN)
        if not is_headstart_output(bundle) or foreign:
            what = f"it holds files headstart did not write ({', '.join(foreign[:3])})"
            raise EditError(
                f"{bundle}: {what if foreign else 'not a headstart output'}, so it is not "
                "replaced in place; pass --out NEW to write the edited bundle elsewhere"
            )
        return bundle
    files = [str(i) for i in items if isinstance(i, str | os.PathLike) and Path(i).exists()]
    same = Path(os.path.realpath(out)) == Path(os.path.realpath(bundle))
    return check_out(out, files if same else [bundle, *files])


def _write(
    predictor: Predictor,
    head: PrototypeHead,
    protos: torch.Tensor,
    counts: torch.Tensor,
    classes: list[str],
    target: Path,
    edit: dict[str, Any],
) -> Path:
    new = PrototypeHead(head.in_dim, len(classes), head.transform, head.metric)
    new.centre.copy_(head.centre)
    new.scale.copy_(head.scale)
    new.prototypes.copy_(protos.float())
    new.counts.copy_(counts.float())
    model = TransferModel(predictor.model.backbone, new).eval()
    extra = {k: v for k, v in predictor.config.items() if k not in _OWN_KEYS}
    extra["edits"] = [*extra.get("edits", []), edit]
    with atomic_dir(target) as tmp:
        write_bundle_into(tmp, model, classes, extra)
    return target


__all__ = ["EditError", "add_class", "class_embedding", "remove_class"]
