"""The packaged ImageNet backbones: every tensor loaded, and they still see a cat."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from skimage import data as skimage_data

import headstart
from headstart.zoo import ImageBackbone
from headstart.zoo._image import _packaged_weights_path
from headstart.zoo._weights import load_by_order, read_state_dict

from ._support import CAT_CLASSES, ESPRESSO, require_offline_weights

pytestmark = pytest.mark.slow


NBT = "num_batches_tracked"
# Tensors in the packaged file: (all of them, not counting BatchNorm's num_batches_tracked).
PACKAGED_TENSORS = {
    "efficientnet_lite0.in1k": (296, 247),
    "efficientnet_lite1.in1k": (386, 322),
    "efficientnet_lite2.in1k": (386, 322),
    "mobilenetv2_100.tv_in1k": (314, 262),
}


@dataclass
class Packaged:
    backbone: ImageBackbone
    file_state: dict[str, torch.Tensor]  # read straight from the package's file
    probs: dict[str, torch.Tensor]  # ImageNet probabilities of two skimage photos


@pytest.fixture(scope="module", params=list(PACKAGED_TENSORS))
def packaged(request: pytest.FixtureRequest) -> Packaged:
    """A whole packaged backbone, its weights file, and its view of chelsea and coffee."""
    spec = require_offline_weights(request.param)
    backbone = headstart.create_backbone(spec)
    assert isinstance(backbone, ImageBackbone)
    names = ("chelsea", "coffee")
    with torch.inference_mode():
        probs = backbone.source_logits(backbone.collate([_photo(n) for n in names])).softmax(1)
    return Packaged(
        backbone,
        read_state_dict(_packaged_weights_path(spec)),
        dict(zip(names, probs, strict=True)),
    )


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage_data, name)())


def test_every_packaged_tensor_is_loaded(packaged: Packaged) -> None:
    backbone, file_state = packaged.backbone, packaged.file_state
    total, without_nbt = PACKAGED_TENSORS[backbone.spec.name]
    state = backbone.state_dict()
    assert len(file_state) == total
    assert len(state) == total
    src = [k for k in file_state if not k.endswith(NBT)]
    dst = [k for k in state if not k.endswith(NBT)]
    assert len(src) == len(dst) == without_nbt
    for s, d in zip(src, dst, strict=True):
        # Paired by position: the kinds must agree (weight/bias/running_mean/running_var) ...
        assert s.rsplit(".", 1)[-1] == d.rsplit(".", 1)[-1], (s, d)
        # ... and the model holds exactly the file's tensor, nothing left at its init.
        assert torch.equal(state[d], file_state[s].to(state[d].dtype)), (s, d)
    assert backbone.block_names == list(backbone.spec.blocks)
    assert backbone.feature_dim == backbone.spec.feature_dim == 1280
    assert backbone.source_head is not None
    assert backbone.source_head.out_features == 1000
    # Regression: reading feature_dim used to switch a fresh backbone's BatchNorm layers
    # to training mode (a training-mode wrapper around eval-mode layers).
    assert not any(m.training for m in backbone.modules())


def test_strict_load_into_fresh_timm_model(packaged: Packaged) -> None:
    """The loader is strict: no missing, unexpected or mis-shaped tensor, and a truncated
    file is refused rather than half-loaded."""
    spec, file_state = packaged.backbone.spec, packaged.file_state
    drop = tuple(spec.extra.get("drop", ()))
    model = timm.create_model(spec.arch, pretrained=False, num_classes=1000)
    load_by_order(model, file_state, drop=drop)
    result = model.load_state_dict(model.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    truncated = dict(list(file_state.items())[:-2])  # the classifier left out
    with pytest.raises(ValueError, match="tensors"):
        load_by_order(timm.create_model(spec.arch, pretrained=False), truncated, drop=drop)


def test_chelsea_is_a_cat(packaged: Packaged) -> None:
    name = packaged.backbone.spec.name
    top5 = packaged.probs["chelsea"].topk(5).indices.tolist()
    assert CAT_CLASSES & set(top5), f"{name}: top-5 {top5} has no cat class"
    assert top5[0] in CAT_CLASSES, f"{name}: top-1 is {top5[0]}, top-5 {top5}"


def test_coffee_is_espresso(packaged: Packaged) -> None:
    probs = packaged.probs["coffee"]
    assert int(probs.argmax()) == ESPRESSO, probs.topk(5).indices.tolist()
    if packaged.backbone.spec.name == "efficientnet_lite0.in1k":
        assert float(probs[ESPRESSO]) > 0.9  # 0.95 measured


@pytest.fixture(scope="module")
def lite0() -> ImageBackbone:
    backbone = headstart.create_backbone("efficientnet_lite0.in1k")
    assert isinstance(backbone, ImageBackbone)
    return backbone


def test_greyscale_and_rgb_inputs_agree(lite0: ImageBackbone) -> None:
    """A greyscale photo goes through ``to_rgb``: the same prediction as its RGB copy."""
    grey = Image.fromarray(skimage_data.camera())
    rgb = Image.fromarray(np.stack([np.asarray(grey)] * 3, axis=-1))
    with torch.inference_mode():
        logits = lite0.source_logits(lite0.collate([grey, rgb]))
    torch.testing.assert_close(logits[0], logits[1])


def test_extracting_features_keeps_inference_mode(lite0: ImageBackbone, tmp_path: Path) -> None:
    """Regression: extracting features restored a fresh backbone to *training* mode, after
    which the chelsea photo came out as ImageNet class 463 (BatchNorm on batch statistics)."""
    chelsea = _photo("chelsea")
    feats = headstart.FeatureStore(tmp_path).features(
        lite0, [chelsea], ["chelsea"], "image", description="chelsea"
    )
    assert feats.shape == (1, 1280)
    assert not any(m.training for m in lite0.modules())
    with torch.inference_mode():
        torch.testing.assert_close(lite0(lite0.collate([chelsea])).numpy(), feats)
        top1 = int(lite0.source_logits(lite0.collate([chelsea])).argmax())
    assert top1 in CAT_CLASSES


def test_lite0_cut_at_blocks_4() -> None:
    backbone = headstart.create_backbone("efficientnet_lite0.in1k", layer="blocks.4")
    assert isinstance(backbone, ImageBackbone)
    assert backbone.layer == "blocks.4"
    assert backbone.block_names[-1] == "blocks.4" and "head" not in backbone.block_names
    assert backbone.is_cut
    assert backbone.feature_dim == 112
    chelsea = backbone.collate([_photo("chelsea")])
    with torch.inference_mode():
        feats = backbone(chelsea)
    assert feats.shape == (1, 112)
    assert torch.isfinite(feats).all()
    with pytest.raises(ValueError, match="source classifier"):
        backbone.source_logits(chelsea)
