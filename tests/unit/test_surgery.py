"""Cutting, freezing, the BatchNorm policy, and BatchNorm statistics through training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

import headstart
from headstart.methods import _base as methods_base
from headstart.surgery import (
    TransferModel,
    bn_eval_inplace,
    cut,
    freeze_inplace,
    make_head,
    top_blocks,
)

BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _bn_stats(backbone: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in backbone.state_dict().items() if k.endswith(BN_BUFFERS)}


def _batchnorms(module: nn.Module) -> list[_BatchNorm]:
    return [m for m in module.modules() if isinstance(m, _BatchNorm)]


# -- cut ----------------------------------------------------------------------------------


def test_cut_returns_a_new_backbone_and_leaves_the_input_alone() -> None:
    whole = headstart.create_backbone("test_cnn.tiny")
    before = _state(whole)
    part = cut(whole, "block1")
    assert part is not whole
    assert part.block_names == ["stem", "block1"] and part.feature_dim == 16
    assert part.source_head is None
    # the input is untouched
    assert whole.block_names == ["stem", "block1", "block2"]
    assert len(whole.stages) == 3 and whole.feature_dim == 32
    assert whole.source_head is not None
    after = _state(whole)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    # and independent: changing the copy does not change the original
    with torch.no_grad():
        part.stages[0][0].weight.add_(1.0)
    assert torch.equal(whole.stages[0][0].weight, before["stages.0.0.weight"])


def test_cut_at_unknown_block_raises_before_copying() -> None:
    whole = headstart.create_backbone("test_cnn.tiny")
    with pytest.raises(ValueError, match="stem, block1, block2"):
        cut(whole, "nope")


def test_top_blocks() -> None:
    bb = headstart.create_backbone("test_cnn.tiny")
    assert top_blocks(bb, 0) == []
    assert top_blocks(bb, 2) == ["block2", "block1"]
    assert top_blocks(bb, "all") == ["block2", "block1", "stem"]
    with pytest.raises(ValueError):
        top_blocks(bb, -1)


# -- freeze -------------------------------------------------------------------------------


def test_freeze_inplace_leaves_only_named_blocks_trainable() -> None:
    bb = headstart.create_backbone("test_cnn.tiny")
    assert freeze_inplace(bb, except_blocks=["block2"]) is bb
    for name, block in bb.blocks():
        flags = {p.requires_grad for p in block.parameters()}
        assert flags == {name == "block2"}, name
    assert all(not p.requires_grad for p in bb.source_head.parameters())
    freeze_inplace(bb)
    assert not any(p.requires_grad for p in bb.parameters())
    freeze_inplace(bb, except_blocks=("stem", "block1", "block2"))
    assert all(p.requires_grad for _, b in bb.blocks() for p in b.parameters())
    with pytest.raises(ValueError, match="block9"):
        freeze_inplace(bb, except_blocks=["block9"])


def test_freeze_does_not_touch_batchnorm_modes() -> None:
    bb = headstart.create_backbone("test_cnn.tiny").train()
    freeze_inplace(bb)
    assert all(m.training for m in _batchnorms(bb))
    assert bn_eval_inplace(bb) == 3
    assert not any(m.training for m in _batchnorms(bb))


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_transfer_model_train_keeps_backbone_batchnorm_in_eval(freeze_bn: bool) -> None:
    bb = headstart.create_backbone("test_cnn.tiny")
    head = nn.Sequential(nn.BatchNorm1d(32), nn.Linear(32, 3))
    model = TransferModel(bb, head, freeze_bn=freeze_bn)
    assert model.train() is model
    bns = _batchnorms(bb)
    assert len(bns) == 3
    assert all(m.training != freeze_bn for m in bns)
    assert head.training and head[0].training  # the new head trains normally
    assert bb.stages[0][0].training  # other backbone layers follow train()
    model.eval()
    assert not any(m.training for m in model.modules())
    # running statistics do not move in a training-mode forward pass
    before = _bn_stats(bb)
    model.train()
    model(torch.randn(4, 3, 32, 32))
    moved = [k for k, v in _bn_stats(bb).items() if not torch.equal(v, before[k])]
    assert (moved == []) == freeze_bn


def test_make_head_shapes() -> None:
    head = make_head(32, 3)
    assert head(torch.randn(5, 32)).shape == (5, 3)
    assert [type(m).__name__ for m in head] == ["Standardize", "Dropout", "Linear"]
    mlp = make_head(32, 4, hidden=(8, 6), dropout=0.1)
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 8), (8, 6), (6, 4)]


# -- BatchNorm statistics through headstart.fit ----------------------------------------------


@pytest.fixture
def stats_weights(tmp_path: Path) -> Path:
    """test_cnn weights whose BatchNorm statistics are not the initial zeros and ones."""
    bb = headstart.create_backbone("test_cnn.tiny").train()
    with torch.no_grad():
        for _ in range(3):
            bb(torch.randn(8, 3, 32, 32) * 2 + 0.5)
    path = tmp_path / "with_stats.safetensors"
    save_file({k: v.contiguous() for k, v in bb.state_dict().items()}, str(path))
    return path


@pytest.mark.parametrize("use_file", [False, True], ids=["seeded", "weights-file"])
def test_finetune_all_keeps_pretrained_batchnorm_statistics(
    tiny_images: Path, store, monkeypatch: pytest.MonkeyPatch, stats_weights: Path, use_file: bool
) -> None:
    weights = str(stats_weights) if use_file else None
    pretrained = headstart.create_backbone("test_cnn.tiny", weights=weights)
    ref_stats, ref_state = _bn_stats(pretrained), _state(pretrained)
    assert len(ref_stats) == 9
    if use_file:
        assert int(ref_stats["stages.0.1.num_batches_tracked"]) == 3
        assert not torch.allclose(ref_stats["stages.0.1.running_var"], torch.ones(8))

    seen: dict[str, dict[str, torch.Tensor]] = {}
    real_run_stage = methods_base.run_stage

    def spy(model, stage, *args, **kwargs):
        seen[f"before {stage.name}"] = _bn_stats(model.backbone)  # i.e. after the head stage
        history = real_run_stage(model, stage, *args, **kwargs)
        seen[f"after {stage.name}"] = _bn_stats(model.backbone)
        return history

    monkeypatch.setattr(methods_base, "run_stage", spy)
    result = headstart.fit(
        tiny_images,
        model="test_cnn.tiny",
        strategy="finetune",
        unfreeze="all",
        epochs=2,
        head_epochs=5,
        lr=1e-3,
        weights=weights,
        store=store,
    )
    assert [h["stage"] for h in result.history].count("finetune") >= 1
    assert set(seen) == {"before finetune", "after finetune"}
    backbone = result.predictor.model.backbone
    for stats in (*seen.values(), _bn_stats(backbone)):
        assert stats.keys() == ref_stats.keys()
        for k, v in ref_stats.items():
            assert torch.equal(stats[k], v), k
    # ... while every unfrozen block's convolution did train
    final = _state(backbone)
    for i in range(3):
        key = f"stages.{i}.0.weight"
        assert not torch.allclose(final[key], ref_state[key]), key
    # and BatchNorm's affine parameters are trainable (only the statistics are fixed)
    assert not torch.allclose(final["stages.2.1.weight"], ref_state["stages.2.1.weight"])


def test_finetune_default_unfreeze_leaves_lower_blocks_untouched(tiny_images: Path, store) -> None:
    pretrained = _state(headstart.create_backbone("test_cnn.tiny"))
    result = headstart.fit(
        tiny_images,
        model="test_cnn.tiny",
        strategy="finetune",
        unfreeze=1,
        epochs=2,
        head_epochs=5,
        lr=1e-3,
        store=store,
    )
    final = _state(result.predictor.model.backbone)
    assert torch.equal(final["stages.0.0.weight"], pretrained["stages.0.0.weight"])
    assert torch.equal(final["stages.1.0.weight"], pretrained["stages.1.0.weight"])
    assert not torch.allclose(final["stages.2.0.weight"], pretrained["stages.2.0.weight"])
    assert (
        result.metrics["parameters"]["trainable_per_stage"]["finetune"]
        > (result.metrics["parameters"]["trainable_per_stage"]["head"])
    )


def test_scratch_updates_batchnorm_statistics(tiny_images: Path, store) -> None:
    init = _bn_stats(headstart.create_backbone("test_cnn.tiny", pretrained=False))
    result = headstart.fit(
        tiny_images, model="test_cnn.tiny", strategy="scratch", epochs=1, store=store
    )
    stats = _bn_stats(result.predictor.model.backbone)
    for name in ("stages.0.1", "stages.1.1", "stages.2.1"):
        assert int(stats[f"{name}.num_batches_tracked"]) > 0
        assert not torch.allclose(stats[f"{name}.running_mean"], init[f"{name}.running_mean"])
        assert not torch.allclose(stats[f"{name}.running_var"], init[f"{name}.running_var"])
