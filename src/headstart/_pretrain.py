"""``headstart pretrain``: develop a source model of your own on an abundant related task.

The develop-a-model approach of transfer learning: train an architecture of the zoo on a
labelled *source* task (the ``scratch`` method: random initialisation, end to end), check
on held-out source data that it learned something (it must beat the majority class and
be no worse than the modality's classical baseline, ``pixels`` / ``tfidf`` / ``mfcc``, on
the same test split: a tie at the ceiling still shows learned features), and only then
register its backbone in the user's zoo as ``local/<name>``
(:mod:`headstart.zoo._local`), where ``fit``, ``rank``, ``compare`` and ``adapt`` take it
like any other model (``--layer`` reuses part of it).

``OUT`` is an ordinary ``fit`` bundle of the source task (report, metrics) plus
``source_model.safetensors`` (the backbone without its head) and ``source.json`` (the
verdict, the baselines, the provenance).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from headstart._errors import UserError
from headstart._progress import say
from headstart.data import read_data
from headstart.methods import list_methods

DEFAULT_ARCH = {
    "image": "efficientnet_lite0.in1k",
    "text": "glove_6b.50d",
    "audio": "ge2e.resemblyzer",
}
"""The architecture trained when ``arch`` is not given (from random weights). Text: the
GloVe word-bag architecture (the entry stores the vectors of the words seen in the
source data and that vocabulary); audio: the trainable GE2E encoder (its mel front end
is code, not weights)."""


class PretrainError(UserError, ValueError):
    """Data or options ``pretrain`` cannot develop a source model from."""


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns: the verdict and, when it passed, the zoo name."""

    registered: str | None
    accuracy: float
    baselines: dict[str, float]
    report: dict[str, Any]
    out: Path


def data_digest(items: list[Any], labels: np.ndarray, keys: list[str] | None) -> str:
    """SHA-256 over the items' content keys (or the items) and labels, in order."""
    h = hashlib.sha256()
    for item, key, y in zip(items, keys or [None] * len(items), labels, strict=True):
        h.update(str(key if key is not None else item).encode())
        h.update(b"\0" + str(int(y)).encode() + b"\n")
    return h.hexdigest()


def majority_accuracy(train_labels: np.ndarray, test_labels: np.ndarray) -> float:
    """Test accuracy of always predicting the most frequent training class:
    ``mean(y_test == argmax_k #{i: y_train_i = k})``."""
    top = int(np.bincount(train_labels).argmax())
    return float((test_labels == top).mean())


COLUMNS = ("text_column", "label_column", "path_column")
SAVES_ITSELF = (
    "timm",
    "small-cnn",
    "glove",
    "hf-text",
    "ge2e",
    "test-cnn",
    "test-words",
    "test-audio",
)
"""Builders whose whole backbone is rebuilt offline from what a zoo entry holds (one
safetensors file with its metadata, or a Hugging Face folder with the tokenizer): the
architectures ``pretrain`` can register (not the frozen TFLite speech embedding)."""


def pretrain_command(
    source: Any,
    out: Path,
    arch: str,
    name: str,
    seed: int,
    image_size: int | None,
    options: dict[str, Any],
) -> str:
    """The ``headstart pretrain`` command line of a run (the options the CLI has)."""
    words = ["headstart", "pretrain", str(source), "--out", str(out), "--arch", arch]
    words += ["--name", name]
    for flag, value in (
        ("--epochs", options.get("epochs")),
        ("--image-size", image_size),
        ("--seed", seed or None),
    ):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


def pretrain(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    arch: str | None = None,
    name: str | None = None,
    *,
    seed: int = 0,
    val: float = 0.15,
    test: float = 0.15,
    image_size: int | None = None,
    objective: str | None = None,
    **fit_options: Any,
) -> PretrainResult:
    """Train ``arch`` (default :data:`DEFAULT_ARCH` of the data's modality) from random
    weights on the labelled ``source`` data, write the bundle to ``out``, and register the
    backbone as ``local/<name>`` (default: ``out``'s folder name) only when its test
    accuracy beats the majority class and is at least the classical baseline's on the
    same split;
    otherwise say so and register nothing. ``fit_options``: any :func:`headstart.fit`
    option of the ``scratch`` method (``epochs``, ``scratch_lr``, ...).

    ``objective`` (``"simclr"`` for images, ``"simcse"`` or ``"mlm"`` for text): ``source`` is
    *unlabelled* and the model learns from it self-supervised instead
    (:func:`headstart.selfsup.pretrain_unlabelled`, which takes the other options:
    ``probe_data``, ``from_scratch``, ``epochs``, ...)."""
    import headstart

    if objective is not None:
        from headstart.selfsup import pretrain_unlabelled

        return pretrain_unlabelled(
            source, out, objective, arch, name, seed=seed, image_size=image_size, **fit_options
        )
    from headstart.zoo._local import check_name, register_local, zoo_dir

    out = Path(out)
    explicit = name is not None
    name = check_name(name or out.name.lower())
    columns = {k: fit_options.pop(k) for k in COLUMNS if k in fit_options}
    data = read_data(source, val=val, test=test, seed=seed, **columns)
    if data.modality not in DEFAULT_ARCH:
        raise PretrainError(
            f"{source}: {data.modality} data; pretrain develops "
            f"{', '.join(DEFAULT_ARCH)} source models"
        )
    if not (data.split == "test").any():
        raise PretrainError(f"{source}: no test split to check the source model on; use --test > 0")
    arch = arch or DEFAULT_ARCH[data.modality]
    from headstart.zoo import get_spec, list_specs

    if get_spec(arch).modality != data.modality:
        raise PretrainError(
            f"--arch {arch}: a {get_spec(arch).modality} model, not {data.modality}"
        )
    if get_spec(arch).builder not in SAVES_ITSELF:
        raise PretrainError(
            f"--arch {arch}: its {get_spec(arch).builder} front end (tokenizer, frozen "
            f"model) is not saved into a zoo entry; trainable architectures here: "
            + ", ".join(s.name for s in list_specs(data.modality) if s.builder in SAVES_ITSELF)
        )
    if not explicit and (zoo_dir() / name).exists():
        raise PretrainError(
            f"local/{name} is already in your zoo; pass --name {name} to replace it, or "
            "another --name"
        )
    common: dict[str, Any] = {"seed": seed}
    if image_size:
        common["image_size"] = image_size
    result = headstart.fit(data, out, strategy="scratch", model=arch, **common, **fit_options)
    accuracy = result.test_accuracy
    y_train, y_test = data.labels[data.split == "train"], data.labels[data.split == "test"]
    baselines = {"majority": majority_accuracy(y_train, y_test)}
    for info in list_methods(kind="baseline"):
        if info.applies_to(data.modality) and info.name != "small_cnn":
            base = headstart.fit(data, strategy=info.name, seed=seed)
            baselines[info.name] = base.test_accuracy
            break
    best_name = max(baselines, key=baselines.__getitem__)
    classical = max(v for k, v in baselines.items() if k != "majority") if len(baselines) > 1 else 0
    passed = accuracy > baselines["majority"] and accuracy >= classical
    backbone = result.predictor.model.backbone
    spec = backbone.spec
    provenance = {
        "source": str(Path(source).resolve()) if not hasattr(source, "items") else "data",
        "source_digest": data_digest(list(data.items), data.labels, data.keys),
        "classes": list(data.classes),
        "examples": {s: int((data.split == s).sum()) for s in ("train", "val", "test")},
        "arch": arch,
        "test_accuracy": accuracy,
        "baselines": baselines,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": pretrain_command(source, out, arch, name, seed, image_size, fit_options),
        "headstart": headstart.__version__,
    }
    from safetensors.torch import save_file

    if hasattr(backbone, "tokenizer"):  # a transformer: a Hugging Face folder (+ tokenizer)
        weights = out / "source_model"
        backbone.model.save_pretrained(weights)
        backbone.tokenizer.save_pretrained(weights)
        n_params = backbone.num_parameters()
    else:  # one safetensors file, a word model's vocabulary in its metadata
        weights = out / "source_model.safetensors"
        state, metadata = backbone.export_state(list(data.take("train")[0]))
        save_file(state, str(weights), metadata=metadata or None)
        n_params = sum(v.numel() for v in state.values())
    registered = None
    if passed:
        local = dataclasses.replace(
            spec,
            description=f"developed by headstart pretrain on {Path(str(source)).name} "
            f"({len(data.classes)} classes, test accuracy {accuracy:.3f})",
            licence="yours",
            params_m=round(n_params / 1e6, 4),
            num_source_classes=0,
        )
        registered = register_local(name, local, weights, provenance).name
        say(
            f"[green]{registered}[/]: test accuracy {accuracy:.3f}, best baseline {best_name} "
            f"{baselines[best_name]:.3f}; registered in your zoo (`headstart models`)"
        )
    else:
        say(
            f"[yellow]not registered[/]: the source model's test accuracy {accuracy:.3f} is "
            f"below {best_name} ({baselines[best_name]:.3f}), so no feature learning worth "
            "reusing happened; train longer (--epochs), another --arch, or more source data"
        )
    report = {**provenance, "registered": registered, "passed": passed, "beats": best_name}
    (out / "source.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return PretrainResult(registered, accuracy, baselines, report, out)


__all__ = [
    "DEFAULT_ARCH",
    "PretrainError",
    "PretrainResult",
    "data_digest",
    "majority_accuracy",
    "pretrain",
]
