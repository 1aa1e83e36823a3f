"""Image transfer on real data: EfficientNet-Lite0 on a small Fashion-MNIST sample.

The sample: 20 training images per class (17 train + 3 validation after the split) and
30 test images per class, from Fashion-MNIST's own train and test sets; 96 px inputs.
Chance is 0.10.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import headstart
from headstart.datasets import FASHION_CLASSES
from headstart.zoo import ImageBackbone, WeightsUnavailableError
from headstart.zoo import _image as zoo_image

from ._support import read_predictions

pytestmark = pytest.mark.slow

LITE0 = "efficientnet_lite0.in1k"
SIZE = 96
N_CHECK = 40  # test images re-predicted through a loaded bundle


@pytest.fixture(scope="module")
def extract(fashion_folder: Path) -> headstart.FitResult:
    return headstart.fit(fashion_folder, model=LITE0, strategy="extract", image_size=SIZE)


@pytest.fixture(scope="module")
def finetune(
    fashion_folder: Path, extract: headstart.FitResult, tmp_path_factory: pytest.TempPathFactory
) -> headstart.FitResult:
    """Runs after ``extract`` on purpose: its head stage must reuse the cached features."""
    out = tmp_path_factory.mktemp("lite0-finetune") / "bundle"
    return headstart.fit(
        fashion_folder,
        out,
        model=LITE0,
        strategy="finetune",
        image_size=SIZE,
        epochs=1,
        unfreeze=1,
    )


@pytest.fixture(scope="module")
def cut(fashion_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> headstart.FitResult:
    out = tmp_path_factory.mktemp("lite0-blocks4") / "bundle"
    return headstart.fit(
        fashion_folder, out, model=LITE0, strategy="extract", image_size=SIZE, layer="blocks.4"
    )


def _check_bundle_predictions(out: Path, n: int = N_CHECK) -> headstart.Predictor:
    """Load the bundle; it predicts what the fit predicted for the first ``n`` test items."""
    rows = read_predictions(out)[:n]
    predictor = headstart.load(out)
    assert predictor.predict([r["item"] for r in rows]) == [r["predicted"] for r in rows]
    return predictor


def test_extract_beats_chance(extract: headstart.FitResult, report_metric) -> None:
    m = extract.metrics
    report_metric("fashion_lite0_extract_test_accuracy", extract.test_accuracy)
    assert extract.test_accuracy > 0.6  # 0.74 measured
    assert m["classes"] == sorted(FASHION_CLASSES)
    assert m["samples"] == {"train": 170, "val": 30, "test": 300}
    assert m["model"] == LITE0 and m["strategy"] == "extract"
    assert m["layer"] == "head" and m["feature_dim"] == 1280
    assert m["forward_passes"] == len(set(extract.data.keys)) == 500  # each once, fresh cache
    assert extract.predictor.model.backbone.spec.preprocess.input_size == SIZE


def test_finetune_trains_the_top_block_only(finetune: headstart.FitResult, report_metric) -> None:
    report_metric("fashion_lite0_finetune_test_accuracy", finetune.test_accuracy)
    assert finetune.test_accuracy > 0.6  # 0.74 measured
    m = finetune.metrics
    assert m["strategy"] == "finetune"
    assert m["forward_passes"] == 0  # the head stage reused the features `extract` cached
    stage2 = [r for r in finetune.history if r["stage"] == "finetune"]
    assert [r["epoch"] for r in stage2] == [0, 1]  # epoch 0: the model entering the stage
    kept = [r["epoch"] for r in stage2 if r["best"]]
    assert any(r["stage"] == "head" for r in finetune.history)
    trainable = m["parameters"]["trainable_per_stage"]
    assert trainable["head"] == 1280 * 10 + 10
    tuned_backbone = finetune.predictor.model.backbone
    top = dict(tuned_backbone.blocks())["head"]
    assert trainable["finetune"] == trainable["head"] + sum(p.numel() for p in top.parameters())

    pretrained = headstart.create_backbone(LITE0).state_dict()
    tuned = tuned_backbone.state_dict()
    top_prefix = f"stages.{tuned_backbone.block_names.index('head')}."
    changed = sorted(k for k in tuned if not torch.equal(tuned[k], pretrained[k]))
    # The kept epoch decides: epoch 1 changed the top block; epoch 0 means it was undone.
    assert bool(changed) == (kept == [1]), (kept, changed[:3])
    assert all(k.startswith(top_prefix) for k in changed), changed  # frozen blocks untouched
    # BatchNorm stays in inference mode while fine-tuning: no running statistic moved.
    assert not [k for k in changed if "running_" in k or "num_batches" in k], changed


def test_finetune_bundle_predicts_like_the_result(finetune: headstart.FitResult) -> None:
    assert finetune.out is not None
    config = json.loads((finetune.out / "headstart.json").read_text())
    assert config["strategy"] == "finetune" and config["layer"] == "head"
    assert config["backbone"]["preprocess"]["input_size"] == SIZE
    rows = read_predictions(finetune.out)
    assert len(rows) == 300
    items = [r["item"] for r in rows[:N_CHECK]]
    predictor = headstart.load(finetune.out)
    assert predictor.classes == sorted(FASHION_CLASSES)
    np.testing.assert_allclose(
        predictor.predict_proba(items), finetune.predict_proba(items), atol=1e-5, rtol=0
    )
    assert predictor.predict(items) == [r["predicted"] for r in rows[:N_CHECK]]
    assert predictor.predict(items) == finetune.predict(items)


def test_finetune_bundle_loads_without_the_weights_package(
    finetune: headstart.FitResult, hide_package, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle carries every tensor: the weights package is never touched."""
    assert finetune.out is not None
    spec = headstart.get_spec(LITE0)
    hide_package(spec.weights.locator)

    def no_package(spec):  # pragma: no cover - must not be called
        raise AssertionError(f"loading the bundle reached for {spec.name}'s package weights")

    monkeypatch.setattr(zoo_image, "_packaged_weights_path", no_package)
    assert not spec.offline_available()
    with pytest.raises(WeightsUnavailableError, match=spec.weights.pip):
        headstart.create_backbone(LITE0)
    _check_bundle_predictions(finetune.out, n=20)


def test_cut_at_blocks_4(cut: headstart.FitResult, report_metric) -> None:
    report_metric("fashion_lite0_blocks4_extract_test_accuracy", cut.test_accuracy)
    assert cut.metrics["layer"] == "blocks.4"
    assert cut.metrics["feature_dim"] == 112
    assert cut.test_accuracy > 0.6  # 0.80 measured: mid-level features suit greyscale clothes
    assert cut.out is not None
    predictor = _check_bundle_predictions(cut.out, n=20)
    backbone = predictor.model.backbone
    assert isinstance(backbone, ImageBackbone)
    assert backbone.layer == "blocks.4" and backbone.feature_dim == 112
    assert backbone.block_names == ["stem", *(f"blocks.{i}" for i in range(5))]
