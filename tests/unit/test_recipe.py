"""The recipe: every label counts (selection + refit), and fine-tuning that earns its cost
(warm-up, gradual unfreezing, the range test, keep-extract)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch

import headstart
from headstart.methods._base import gained
from headstart.train._lr_finder import suggest_lr
from headstart.train._schedule import Stage, finetune_schedule

BLOCKS = ("stem", "b1", "b2", "b3")


def test_warmup_then_cosine_factor() -> None:
    s = Stage("s", warmup=0.2)
    total = 10
    factors = [s.lr_factor(i, total) for i in range(total)]
    assert factors[:2] == [0.5, 1.0]  # 2 warm-up steps rise linearly
    assert factors[2] == 1.0  # the cosine starts at the full rate ...
    assert all(a >= b for a, b in itertools.pairwise(factors[2:]))  # ... and falls
    t = (6 - 2) / 8
    assert math.isclose(factors[6], 0.5 * (1 + math.cos(math.pi * t)))
    assert Stage("s").lr_factor(0, 5) == 1.0  # no warm-up: full rate at step 0


def test_gradual_unfreezing_adds_one_block_per_stage() -> None:
    sched = finetune_schedule(BLOCKS, unfreeze=3, epochs=6, gradual=True, warmup=0.1)
    names = [s.name for s in sched.stages]
    assert names == ["head", "unfreeze1", "unfreeze2", "finetune"]
    assert [s.trainable for s in sched.stages[1:]] == [("b3",), ("b3", "b2"), ("b3", "b2", "b1")]
    assert [s.max_epochs for s in sched.stages[1:]] == [1, 1, 4]
    assert dict(sched.stages[-1].lr_mult) == {"b3": 1.0, "b2": 0.5, "b1": 0.25}
    assert all(s.warmup == 0.1 for s in sched.stages[1:])
    # the schedule is data: it round-trips through its dict
    assert type(sched).from_dict(json.loads(json.dumps(sched.to_dict()))) == sched
    plain = finetune_schedule(BLOCKS, unfreeze=3, epochs=6)
    assert [s.name for s in plain.stages] == ["head", "finetune"]


def test_suggest_lr_is_the_minimum_over_ten() -> None:
    lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    assert suggest_lr(lrs, [2.0, 1.5, 0.9, 1.2, 5.0], 7.0) == pytest.approx(1e-4)
    assert suggest_lr(lrs, [2.0, 2.1, 2.2, 3.0, 5.0], 7.0) == 7.0  # never fell: fallback
    assert suggest_lr(lrs[:2], [2.0, 1.0], 7.0) == 7.0  # too few points


def test_gained_compares_the_last_best_epoch_with_the_head_alone() -> None:
    rows = [
        {"stage": "finetune", "epoch": 0, "val_acc": 0.8, "val_loss": 0.5},
        {"stage": "finetune", "epoch": 1, "val_acc": 0.8, "val_loss": 0.4, "best": True},
    ]
    assert gained(rows, ["finetune"])  # same accuracy, lower loss
    rows[1]["val_loss"] = 0.5
    assert not gained(rows, ["finetune"])  # a tie keeps extract: cheaper, as good


def test_extract_reports_its_cross_validated_selection(tiny_images: Path, tmp_path: Path, store):
    out = tmp_path / "model"
    result = headstart.fit(tiny_images, out, model="test_cnn.tiny", store=store)
    sel = result.metrics["selection"]
    assert sel["by"] == "cross-validation" and sel["refit"]
    assert sel["label"].endswith("cross-validated accuracy")
    n = result.metrics["samples"]
    assert sel["n_fit"] == n["train"] + n["val"]  # every labelled non-test example
    assert result.metrics["splits"]["val"]["trained_on"] is True
    report = (out / "report.html").read_text()
    assert "cross-validated accuracy" in report
    assert "refit on train + validation" in (out / "MODEL_CARD.md").read_text()
    again = headstart.fit(tiny_images, model="test_cnn.tiny", store=store, refit=False)
    assert not again.metrics["selection"]["refit"]
    assert "trained_on" not in again.metrics["splits"]["val"]


def test_finetune_that_does_not_help_keeps_the_extract_model(tiny_images: Path, store):
    # a rate this large wrecks the network on its first epoch: epoch 0 (the head alone) wins
    result = headstart.fit(
        tiny_images,
        model="test_cnn.tiny",
        strategy="finetune",
        lr=50.0,
        epochs=2,
        patience=2,
        head_epochs=5,
        store=store,
    )
    notes = result.metrics["notes"]
    assert any("extract model was kept" in n for n in notes), notes
    assert result.metrics["selection"]["refit"]
    assert any(r["stage"] == "extract" for r in result.history)
    pretrained = headstart.create_backbone("test_cnn.tiny").state_dict()
    tuned = result.predictor.model.backbone.state_dict()
    assert all(torch.equal(v, pretrained[k]) for k, v in tuned.items())
    kept = headstart.fit(
        tiny_images,
        model="test_cnn.tiny",
        strategy="finetune",
        lr=50.0,
        epochs=2,
        patience=2,
        head_epochs=5,
        keep_extract=False,
        store=store,
    )
    assert kept.metrics["selection"] is None
    assert not any("extract model was kept" in n for n in kept.metrics["notes"])


def test_lr_auto_runs_a_range_test_and_restores_the_weights(tiny_images: Path, store):
    result = headstart.fit(
        tiny_images,
        model="test_cnn.tiny",
        strategy="finetune",
        lr="auto",
        epochs=1,
        head_epochs=3,
        keep_extract=False,
        store=store,
    )
    notes = " ".join(result.metrics["notes"])
    assert "range test" in notes
    stage = next(s for s in result.metrics["schedule"]["stages"] if s["name"] == "finetune")
    assert 1e-7 <= stage["lr"] <= 1.0001e-2  # within the sweep (1e-6..1e-1) / 10
    assert f"{stage['lr']:.2g}" in notes
    assert "lr_range_test" in result.metrics["seconds"]


def test_range_test_leaves_the_model_as_it_was(tiny_images: Path) -> None:
    from headstart.data import read_data
    from headstart.surgery._model import TransferModel, make_head
    from headstart.train._loop import find_lr

    data = read_data(tiny_images, val=0.0, test=0.0)
    backbone = headstart.create_backbone("test_cnn.tiny")
    model = TransferModel(backbone, make_head(backbone.feature_dim, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    stage = finetune_schedule(backbone.block_names, unfreeze=2).stages[1]
    test = find_lr(model, stage, data.take("train")[:2], "image", batch_size=8)
    assert len(test.lrs) == len(test.losses) >= 3
    assert all(b > a for a, b in itertools.pairwise(test.lrs))  # geometric sweep
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_small_images_are_enlarged_bilinearly_large_ones_reduced_with_the_spec() -> None:
    import numpy as np
    from PIL import Image
    from torchvision import transforms as T

    from headstart.data._transforms import image_transform
    from headstart.zoo._spec import BackboneSpec, ImagePreprocess

    pre = ImagePreprocess(input_size=64, crop_pct=1.0, interpolation="bicubic")
    tf = image_transform(pre)
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    large = Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))

    def by(img: Image.Image, mode: T.InterpolationMode) -> torch.Tensor:
        ref = T.Compose([T.Resize(64, interpolation=mode, antialias=True), T.CenterCrop(64),
                         T.ToTensor(), T.Normalize(pre.mean, pre.std)])  # fmt: skip
        return ref(img)

    assert torch.equal(tf(small), by(small, T.InterpolationMode.BILINEAR))
    assert not torch.equal(tf(small), by(small, T.InterpolationMode.BICUBIC))
    assert torch.equal(tf(large), by(large, T.InterpolationMode.BICUBIC))
    # a spec saved before the rule keeps one interpolation for both directions
    spec = headstart.get_spec("test_cnn.tiny")
    d = spec.to_dict()
    d["preprocess"]["interpolation"] = "bicubic"
    del d["preprocess"]["upscale"]
    assert BackboneSpec.from_dict(d).preprocess.upscale == "bicubic"
