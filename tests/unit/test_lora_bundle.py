"""LoRA adapter bundles: the adapters and the head over a referenced base, rebuilt from the
zoo at load; much smaller than the merged bundle; export merges them (a plain ONNX graph);
a different base is refused in one line naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import headstart
from headstart._errors import BundleError
from headstart.bundle._adapter import has_adapters, state_digest
from headstart.bundle._export import export_onnx
from headstart.bundle._runtime import load_predictor

CNN = "test_cnn.tiny"
FAST = {"epochs": 3, "lr": 0.05, "head_epochs": 5, "keep_extract": False, "lora_blocks": 1}


def _fit(data: Path, out: Path, store, **kw) -> headstart.FitResult:
    return headstart.fit(data, out, model=CNN, strategy="lora", store=store, **FAST, **kw)


def _weights_keys(bundle: Path) -> set[str]:
    with safe_open(str(bundle / "model.safetensors"), framework="pt") as f:
        return set(f.keys())


@pytest.fixture
def images(tiny_images: Path) -> list[str]:
    return sorted(str(p) for p in tiny_images.rglob("*.png"))[:12]


def test_adapter_bundle_round_trips_and_is_small(
    tiny_images: Path, tmp_path: Path, store, images: list[str]
) -> None:
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    fitted = _fit(tiny_images, adapter, store, image_size=24)  # preprocessing travels too
    first = fitted.predict_proba(images)
    with torch.no_grad():  # a step away from B = 0, so the round trip is not the base's
        for name, p in fitted.predictor.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    fitted.predictor.save(tmp_path / "saved")
    before = fitted.predictor.predict_proba(images)
    loaded = headstart.load(tmp_path / "saved")
    assert has_adapters(loaded.model)
    assert loaded.model.backbone.spec.preprocess.input_size == 24
    np.testing.assert_allclose(loaded.predict_proba(images), before, atol=1e-5)

    config = json.loads((adapter / "headstart.json").read_text())
    entry = config["adapter"]
    assert entry["save"] == "adapter" and entry["base"]["model"] == CNN
    base = headstart.create_backbone(CNN)
    base.pop_source_head_inplace()
    assert entry["base"]["sha256"] == state_digest(base.state_dict())
    assert entry["peft"]["target_modules"] == ["stages.2.0"]
    keys = _weights_keys(adapter)
    assert keys and all("lora_" in k or k.startswith("head.") for k in keys)
    assert not (adapter / "assets").exists() or not any((adapter / "assets").iterdir())
    metrics = json.loads((adapter / "metrics.json").read_text())
    assert metrics["bundle"]["stores"] == "adapter"
    assert any("the bundle stores them and the head" in n for n in metrics["notes"])
    np.testing.assert_allclose(headstart.load(adapter).predict_proba(images), first, atol=1e-5)

    _fit(tiny_images, merged, store, lora_save="merged")
    assert json.loads((merged / "headstart.json").read_text())["adapter"]["save"] == "merged"
    assert not any("lora_" in k or "base_layer" in k for k in _weights_keys(merged))
    small = json.loads((adapter / "metrics.json").read_text())["bundle"]["bytes"]
    full = json.loads((merged / "metrics.json").read_text())["bundle"]["bytes"]
    assert small < full / 2, (small, full)


def test_export_merges_the_adapters(
    tiny_images: Path, tmp_path: Path, store, images: list[str]
) -> None:
    out = tmp_path / "model"
    fitted = _fit(tiny_images, out, store)
    with torch.no_grad():
        for name, p in fitted.predictor.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    fitted.predictor.save(tmp_path / "tuned")
    entry = export_onnx(tmp_path / "tuned")
    assert entry["merged_adapters"] == 1 and entry["parity"]["max_abs_diff"] < 1e-4
    import onnx

    graph = onnx.load(str(tmp_path / "tuned" / "model.onnx"))
    assert not any("lora" in i.name for i in graph.graph.initializer)  # a plain network
    np.testing.assert_allclose(
        load_predictor(tmp_path / "tuned", "onnx").predict_proba(images),
        headstart.load(tmp_path / "tuned").predict_proba(images),
        atol=1e-5,
    )


def test_a_different_base_is_refused_in_one_line(tiny_images: Path, tmp_path: Path, store):
    out = tmp_path / "model"
    _fit(tiny_images, out, store)
    cfg = out / "headstart.json"
    config = json.loads(cfg.read_text())
    config["adapter"]["base"]["sha256"] = "0" * 64
    cfg.write_text(json.dumps(config))
    with pytest.raises(BundleError) as exc:
        headstart.load(out)
    message = str(exc.value)
    assert "\n" not in message and str(cfg) in message and "adapter.base.sha256" in message
    del config["adapter"]["peft"]
    cfg.write_text(json.dumps(config))
    with pytest.raises(BundleError, match="key 'adapter'"):
        headstart.load(out)


def test_a_base_from_a_file_is_saved_merged(tiny_images: Path, tmp_path: Path, store) -> None:
    from safetensors.torch import save_file

    base = headstart.create_backbone(CNN)
    weights = tmp_path / "base.safetensors"
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, str(weights))
    out = tmp_path / "model"
    result = _fit(tiny_images, out, store, weights=str(weights))
    assert json.loads((out / "headstart.json").read_text())["adapter"]["save"] == "merged"
    assert any("--weights FILE" in n for n in result.metrics["notes"])
    assert not any("lora_" in k for k in _weights_keys(out))
    assert headstart.load(out).predict([str(next(tiny_images.rglob("*.png")))])


def test_only_a_base_the_zoo_rebuilds_alike_is_referenced() -> None:
    from headstart.bundle._adapter import base_reference
    from headstart.zoo._registry import get_spec

    for name, referenced in (("test_cnn.tiny", True), ("small_cnn.untrained", False)):
        backbone = headstart.create_backbone(name)
        backbone.pop_source_head_inplace()
        state = torch.random.get_rng_state()
        ref, why = base_reference(get_spec(name), backbone, None)
        assert torch.equal(state, torch.random.get_rng_state())  # the run's RNG untouched
        assert (ref is not None) == referenced and bool(why) != referenced, (name, why)
    assert base_reference(get_spec(CNN), backbone, "w.safetensors")[0] is None
