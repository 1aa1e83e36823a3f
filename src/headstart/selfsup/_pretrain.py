"""``headstart pretrain UNLABELLED --objective simclr|simcse|mlm``: learn from unlabelled data.

The backbone (``arch``: by default the modality's packaged model, Lite0 or MiniLM)
starts from its **pre-trained weights** and continues training, self-supervised, on the
unlabelled target-domain items (domain-adaptive pre-training, as DAPT does for language
models): on a CPU, a few epochs from scratch learn little that ImageNet or MiniLM does
not already hold. ``from_scratch=True`` starts from random weights instead. ``mlm``
is task-adaptive pre-training (TAPT): BERT's masked-language-model objective on the
task's own texts, with a fresh MLM head that is not saved (:mod:`headstart.selfsup._mlm`).

There are no labels, so the check differs from the labelled ``pretrain``: with
``probe_data`` (a small labelled set, split into probe-train and probe-test), a linear
probe (logistic regression, ``C`` by cross-validation, as ``fit --strategy extract``
picks it) is fit on the starting weights' features and on the pre-trained ones'; the
model registers in the user's zoo only when its probe accuracy is at least the starting
weights'. Without ``probe_data`` it registers with the note that nothing checked it.

``OUT`` holds ``ssl.json`` (the verdict, the probe scores, the history, the
provenance) and the weights: ``source_model.safetensors`` (images) or
``source_model/`` (a Hugging Face folder with config and tokenizer: text).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart._progress import say
from headstart.selfsup._mlm import MLM, MaskedLM, MLMHead
from headstart.selfsup._objectives import (
    Encoder,
    ProjectedBackbone,
    SimCLR,
    SimCSE,
    TwoViewStream,
    get_pretrain_objective,
    simclr_view,
)

DEFAULT_ARCH = {"image": "efficientnet_lite0.in1k", "text": "minilm_l6.sbert_all_v2"}


def embed(backbone: Any, items: list[Any], modality: str, batch_size: int = 64) -> np.ndarray:
    """Pooled features ``(N, d)`` of ``items`` (evaluation preprocessing, no gradient)."""
    from headstart.data._loader import iter_batches

    was = backbone.training
    backbone.eval()
    rows = []
    with torch.inference_mode():
        for _, inputs in iter_batches(backbone, items, modality, batch_size):
            rows.append(backbone(inputs).float().numpy())
    backbone.train(was)
    return np.concatenate(rows)


def probe_accuracy(
    x: np.ndarray, y: np.ndarray, split: np.ndarray, n_classes: int, seed: int = 0
) -> float:
    """Test accuracy of a logistic-regression probe fit on the ``split == "train"`` rows
    (``C`` by cross-validation, refit) and scored on the ``"test"`` rows."""
    from headstart.train._heads import fit_logistic_head

    tr, te = split == "train", split == "test"
    empty_x, empty_y = np.zeros((0, x.shape[1]), np.float32), np.zeros(0, np.int64)
    fit = fit_logistic_head(x[tr], y[tr], empty_x, empty_y, n_classes, seed, cv=True, refit=True)
    with torch.inference_mode():
        pred = fit.head(torch.from_numpy(x[te].astype(np.float32))).argmax(1).numpy()
    return float((pred == y[te]).mean())


def _train(backbone: Any, items: list[Any], objective: str, config: Any, seed: int) -> list:
    from headstart.train._callbacks import History, ProgressBar
    from headstart.train._engine import ItemStream, fit_stage
    from headstart.train._schedule import Stage

    torch.manual_seed(seed)
    if objective == "simclr":
        model: torch.nn.Module = ProjectedBackbone(backbone, backbone.feature_dim, config.proj_dim)
        head_lr = 1e-3
        blocks = tuple(backbone.block_names)
        mult = tuple((b, config.lr / head_lr) for b in blocks)
        stage = Stage("simclr", blocks, head_lr, mult, config.epochs, weight_decay=1e-6)
        view = simclr_view(backbone.spec.preprocess, config.crop_min)
        stream: Any = TwoViewStream(items, view, config.batch_size)
        loss: Any = SimCLR(config.temperature)
    elif objective == "mlm":
        from headstart.zoo._text import hf_model_path

        emb = backbone.model.get_input_embeddings()
        head = MLMHead(emb, float(getattr(backbone.model.config, "layer_norm_eps", 1e-12)))
        if head.load_bert_head_inplace(hf_model_path(backbone.spec)):
            say("mlm: starting from the folder's pre-trained MLM head")
        model = MaskedLM(backbone, head)
        blocks = tuple(backbone.block_names)
        mult = tuple((b, config.lr / config.head_lr) for b in blocks)
        stage = Stage("mlm", blocks, config.head_lr, mult, config.epochs, weight_decay=0.01)
        stream = ItemStream(backbone, items, None, "text", config.batch_size, train=False)
        loss = MLM.for_tokenizer(
            backbone.tokenizer, mask_prob=config.mask_prob, max_length=config.max_length
        )
    else:
        model = Encoder(backbone)
        stage = Stage("simcse", (), config.lr, (), config.epochs, weight_decay=0.0)
        stream = ItemStream(backbone, items, None, "text", config.batch_size, train=False)
        loss = SimCSE(config.temperature)
    history = History()
    fit_stage(
        model,
        stage,
        {"unlabelled": stream},
        loss,
        [history, ProgressBar(objective)],
        seed=seed,
        evaluate_start=False,
    )
    backbone.eval()
    return history.rows


def _save(backbone: Any, folder: Path) -> Path:
    """The backbone's weights in ``folder``: a safetensors file, or a Hugging Face folder."""
    if hasattr(backbone, "tokenizer"):
        path = folder / "source_model"
        backbone.model.save_pretrained(path)
        backbone.tokenizer.save_pretrained(path)
        return path
    from safetensors.torch import save_file

    path = folder / "source_model.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(path))
    return path


def pretrain_unlabelled(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    objective: str = "simclr",
    arch: str | None = None,
    name: str | None = None,
    *,
    probe_data: str | os.PathLike[str] | None = None,
    from_scratch: bool = False,
    seed: int = 0,
    image_size: int | None = None,
    max_items: int | None = None,
    text_column: str = "text",
    path_column: str | None = None,
    **config_options: Any,
) -> Any:
    """Self-supervised pre-training of ``arch`` on the unlabelled ``source`` with
    ``objective`` (``"simclr"``: images, ``"simcse"`` or ``"mlm"``: text), then the probe
    check and the zoo entry ``local/<name>`` (see the module docstring).
    ``config_options``: fields of the objective's config (:class:`SimCLRConfig`,
    :class:`SimCSEConfig`, :class:`~headstart.selfsup.MLMConfig`: ``epochs``, ``lr``,
    ``batch_size``, ...). ``arch`` may be a ``local/`` entry (continue from a model of
    your zoo: the CLI's ``--from``). ``max_items``: use at most this many unlabelled
    items (a seeded sample). Returns a :class:`~headstart.PretrainResult` (``accuracy``
    is the probe accuracy, ``baselines`` holds the starting weights' probe accuracy)."""
    import headstart
    from headstart._io import atomic_dir, check_out
    from headstart._pretrain import PretrainError, PretrainResult
    from headstart.adapt._target import read_target
    from headstart.data import read_data
    from headstart.zoo import create_backbone, get_spec
    from headstart.zoo._local import check_name, register_local, zoo_dir
    from headstart.zoo._spec import ImagePreprocess

    try:
        info = get_pretrain_objective(objective)
    except ValueError as exc:
        raise PretrainError(str(exc)) from None
    config_cls = info.config_cls
    known = {f.name for f in dataclasses.fields(config_cls)}
    if set(config_options) - known:
        bad = ", ".join(sorted(set(config_options) - known))
        raise PretrainError(f"--objective {objective} has no option {bad}; it has {sorted(known)}")
    config = config_cls(**config_options)
    for f in dataclasses.fields(config_cls):
        check = f.metadata.get("check")
        if check is not None and not check(getattr(config, f.name)):
            raise PretrainError(
                f"--{f.name.replace('_', '-')} {getattr(config, f.name)!r}: invalid"
            )
    out = Path(out)
    explicit = name is not None
    name = check_name(name or out.name.lower())
    check_out(out, [source, *([probe_data] if probe_data else [])])
    data = read_target(source, text_column=text_column, path_column=path_column)
    if data.modality != info.modality:
        other = {"image": "simclr", "text": "simcse"}.get(data.modality)
        hint = f" (use --objective {other})" if other else ""
        raise PretrainError(
            f"{source}: {data.modality} data, but --objective {objective} takes "
            f"{info.modality}{hint}"
        )
    arch = arch or DEFAULT_ARCH[info.modality]
    spec = get_spec(arch)
    if spec.modality != info.modality:
        raise PretrainError(f"--arch {arch}: a {spec.modality} model, not {info.modality}")
    trainable = {"image": ("timm", "test-cnn"), "text": ("hf-text",)}[info.modality]
    if spec.builder not in trainable:
        raise PretrainError(
            f"--arch {arch}: --objective {objective} trains timm CNNs or transformer "
            f"encoders, not a {spec.builder} model"
        )
    if not explicit and (zoo_dir() / name).exists():
        raise PretrainError(
            f"local/{name} is already in your zoo; pass --name {name} to replace it, or "
            "another --name"
        )
    if image_size and isinstance(spec.preprocess, ImagePreprocess):
        pre = dataclasses.replace(spec.preprocess, input_size=int(image_size))
        spec = dataclasses.replace(spec, preprocess=pre)
    items = list(data.items)
    if max_items and len(items) > max_items:
        pick = np.sort(np.random.default_rng(seed).choice(len(items), max_items, replace=False))
        items = [items[i] for i in pick]
    if len(items) < 2:
        raise PretrainError(f"{source}: {len(items)} unlabelled item(s); contrast needs 2 or more")
    backbone = create_backbone(spec, pretrained=not from_scratch)
    backbone.pop_source_head_inplace()
    probe = None
    start_acc = None
    if probe_data is not None:
        probe = read_data(
            probe_data,
            val=0.0,
            test=0.5,
            seed=seed,
            text_column=text_column,
            path_column=path_column,
        )
        if probe.modality != info.modality:
            raise PretrainError(f"--probe-data {probe_data}: {probe.modality}, not {info.modality}")
        k = len(probe.classes)
        x0 = embed(backbone, list(probe.items), probe.modality)
        start_acc = probe_accuracy(x0, probe.labels, probe.split, k, seed)
    say(f"{objective}: {len(items)} unlabelled {info.modality} items, {arch}")
    history = _train(backbone, items, objective, config, seed)
    accuracy = float("nan")
    if probe is not None:
        x1 = embed(backbone, list(probe.items), probe.modality)
        accuracy = probe_accuracy(x1, probe.labels, probe.split, len(probe.classes), seed)
    passed = start_acc is None or accuracy >= start_acc
    start = "random weights" if from_scratch else f"{spec.name}'s pre-trained weights"
    keys = sorted(data.keys)
    provenance = {
        "source": str(Path(source).resolve()),
        "source_digest": hashlib.sha256("\n".join(keys).encode()).hexdigest(),
        "objective": objective,
        "config": dataclasses.asdict(config),
        "unlabelled_items": len(items),
        "arch": arch,
        "start": start,
        "probe_data": str(Path(probe_data).resolve()) if probe_data else None,
        "probe_accuracy": None if probe is None else accuracy,
        "baselines": {} if start_acc is None else {"start": start_acc},
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": _command(
            source,
            out,
            objective,
            arch,
            name,
            probe_data,
            from_scratch,
            seed,
            image_size,
            max_items,
            config_options,
        ),
        "headstart": headstart.__version__,
    }
    registered = None
    with atomic_dir(out) as tmp:
        weights = _save(backbone, tmp)
        if passed:
            note = (
                f"probe accuracy {accuracy:.3f} vs {start_acc:.3f} before"
                if start_acc is not None
                else "no probe data: not checked against the starting weights"
            )
            local = dataclasses.replace(
                spec,
                description=f"{objective} on {Path(str(source)).name} from {start} ({note})",
                licence="yours" if from_scratch else f"derived from {spec.name} ({spec.licence})",
                params_m=round(sum(p.numel() for p in backbone.parameters()) / 1e6, 2),
                num_source_classes=0,
            )
            registered = register_local(name, local, weights, provenance).name
        report = {**provenance, "registered": registered, "passed": passed, "history": history}
        (tmp / "ssl.json").write_text(json.dumps(report, indent=1, default=str), "utf-8")
    if registered and start_acc is None:
        say(f"[green]{registered}[/]: registered (no --probe-data, so not checked)")
    elif registered:
        say(
            f"[green]{registered}[/]: linear-probe accuracy {accuracy:.3f}, "
            f"{start_acc:.3f} with the starting weights; registered in your zoo"
        )
    else:
        say(
            f"[yellow]not registered[/]: linear-probe accuracy {accuracy:.3f} is below the "
            f"starting weights' {start_acc:.3f}, so {objective} did not help here; use "
            f"{arch} as it is, or train longer (--epochs) on more unlabelled data"
        )
    baselines = {} if start_acc is None else {"start": start_acc}
    return PretrainResult(registered, accuracy, baselines, report, out)


def _command(source, out, objective, arch, name, probe, scratch, seed, size, max_items, opts):
    words = ["headstart", "pretrain", str(source), "--objective", objective, "--out", str(out)]
    words += ["--arch", arch, "--name", name]
    if probe:
        words += ["--probe-data", str(probe)]
    if scratch:
        words.append("--from-scratch")
    for flag, value in (
        ("--image-size", size),
        ("--seed", seed or None),
        ("--max-items", max_items),
        ("--epochs", opts.get("epochs")),
    ):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


__all__ = ["DEFAULT_ARCH", "embed", "pretrain_unlabelled", "probe_accuracy"]
