"""Training the top blocks on cached activations of the frozen lower blocks gives the
uncached path's loss and gradients (packaged EfficientNet-Lite0 at 32 px, real images)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

import headstart
from headstart.data._loader import iter_batches
from headstart.data._transforms import NO_AUGMENT, Augment
from headstart.surgery._model import TransferModel, make_head
from headstart.train import Stage, run_stage
from headstart.train._callbacks import Callback
from headstart.train._prefix import SuffixModel, frozen_prefix, prefix_activations
from headstart.zoo._registry import create_backbone, get_spec

TOP = ("head", "blocks.6")


@pytest.fixture(scope="module")
def lite0() -> headstart.zoo.Backbone:
    spec = get_spec("efficientnet_lite0.in1k")
    spec = dataclasses.replace(spec, preprocess=dataclasses.replace(spec.preprocess, input_size=32))
    backbone = create_backbone(spec, pretrained=True)
    backbone.pop_source_head_inplace()
    return backbone


def _model(backbone, freeze_bn: bool = True) -> TransferModel:
    torch.manual_seed(0)
    return TransferModel(copy.deepcopy(backbone), make_head(backbone.feature_dim, 3), freeze_bn)


def test_cached_activations_give_the_same_loss_and_gradients(lite0, tiny_images) -> None:
    data = headstart.read_data(tiny_images)
    items, y = data.items[:16], torch.from_numpy(data.labels[:16]).long()
    stage = Stage("finetune", TOP)
    plain, cached = _model(lite0), _model(lite0)
    start = frozen_prefix(plain, stage)
    assert start == lite0.block_names.index("blocks.6") == 7
    x = next(iter(iter_batches(lite0, items, "image", batch_size=16)))[1]
    for m in (plain, cached):
        m.train()
        for name, p in m.named_parameters():
            p.requires_grad_(name.startswith(("head.", "backbone.stages.7", "backbone.stages.8")))
    torch.manual_seed(1)  # the head's dropout draws the same mask in both
    loss = nn.functional.cross_entropy(plain(x), y)
    loss.backward()
    acts = prefix_activations(cached.backbone, items, "image", start, batch_size=5)
    suffix = SuffixModel(cached, start)
    torch.manual_seed(1)
    loss2 = nn.functional.cross_entropy(suffix(acts), y)
    loss2.backward()
    torch.testing.assert_close(loss2, loss, rtol=1e-5, atol=1e-6)
    grads = dict(plain.named_parameters())
    for name, p in cached.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-6)
    assert suffix.state_dict().keys() == plain.state_dict().keys()


class _BNWatch(Callback):
    def __init__(self) -> None:
        self.training_bn = 0

    def on_train_batch_end(self, state, logs) -> None:
        self.training_bn += sum(
            m.training for m in state.model.backbone.modules() if isinstance(m, _BatchNorm)
        )


def test_run_stage_with_the_cached_prefix_matches_the_plain_run(lite0, tiny_images) -> None:
    data = headstart.read_data(tiny_images)
    train, val = data.take("train")[:2], data.take("val")[:2]
    stage = Stage("finetune", TOP, lr=1e-3, max_epochs=2, patience=5, augment=False)
    runs = {}
    for cache in (False, True):
        model, notes, watch = _model(lite0), [], _BNWatch()
        bn_before = {n: b.clone() for n, b in model.named_buffers() if "running" in n}
        rows = run_stage(
            model,
            stage,
            train,
            val,
            "image",
            NO_AUGMENT,
            batch_size=8,
            notes=notes,
            cache_prefix=cache,
            extra_callbacks=[watch],
        )
        assert watch.training_bn == 0  # frozen BatchNorm stayed in inference mode
        for n, b in model.named_buffers():
            if n in bn_before:
                torch.testing.assert_close(b, bn_before[n])
        runs[cache] = (model, rows, notes)
    (m0, rows0, notes0), (m1, rows1, notes1) = runs[False], runs[True]
    assert any("computed once" in n for n in notes1) and not any("once" in n for n in notes0)
    assert any("trained in fp32" in n for n in notes1)
    for r0, r1 in zip(rows0, rows1, strict=True):
        assert r0["val_acc"] == r1["val_acc"]
        np.testing.assert_allclose(r1["val_loss"], r0["val_loss"], rtol=1e-4)
        if r0["train_loss"] is not None:
            np.testing.assert_allclose(r1["train_loss"], r0["train_loss"], rtol=1e-4)
    for (n, a), b in zip(m0.state_dict().items(), m1.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5, msg=n)


def test_when_the_prefix_is_not_cached(lite0, tiny_images) -> None:
    data = headstart.read_data(tiny_images)
    stage = Stage("finetune", TOP, max_epochs=1, patience=5)
    assert frozen_prefix(_model(lite0, freeze_bn=False), stage) == 0  # BatchNorm trains
    assert frozen_prefix(_model(lite0), dataclasses.replace(stage, params=("*.bias",))) == 0
    assert frozen_prefix(_model(lite0), Stage("all", tuple(lite0.block_names))) == 0
    notes: list[str] = []
    run_stage(
        _model(lite0),
        stage,
        data.take("train")[:2],
        data.take("val")[:2],
        "image",
        Augment(),
        batch_size=8,
        notes=notes,
    )
    assert any("under no_grad each step (augmentation on)" in n for n in notes)


def test_extraction_restores_each_module_mode(lite0, tiny_images) -> None:
    """Extraction puts the backbone in eval mode and back module by module: a BatchNorm
    frozen in inference mode inside a training backbone stays frozen afterwards."""
    from headstart.cache._store import iter_features

    backbone = copy.deepcopy(lite0)
    backbone.train()
    bns = [m for m in backbone.modules() if isinstance(m, _BatchNorm)]
    for bn in bns:
        bn.eval()
    items = sorted(str(p) for p in tiny_images.rglob("*.png"))[:4]
    list(iter_features(backbone, items, "image", batch_size=2))
    assert backbone.training
    assert not any(bn.training for bn in bns)
