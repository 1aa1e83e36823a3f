"""LoRA through peft: only the adapters and the head train; with ``lora_save="merged"`` the
adapters are merged into the weights and the bundle is a plain network (adapter bundles:
``test_lora_bundle.py``); the bad target option is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.methods import get_method
from headstart.methods.lora.config import LoraConfig
from headstart.methods.lora.method import (
    LoraTargetError,
    inject_inplace,
    merge_inplace,
    target_modules,
)

CNN = "test_cnn.tiny"


def test_lora_targets_the_top_blocks_never_depthwise() -> None:
    backbone = headstart.create_backbone("efficientnet_lite0.in1k")
    top = target_modules(backbone, 1, "auto")  # the last block: Lite0's 1x1 head conv
    assert top == ["stages.8.0"]
    two = target_modules(backbone, 2, "auto")
    convs = dict(backbone.named_modules())
    assert "stages.7.0.conv_pw" in two and "stages.7.0.conv_pwl" in two
    assert all(convs[n].groups == 1 for n in two)  # the depthwise conv_dw is left out
    assert target_modules(backbone, 2, "conv_pwl") == ["stages.7.0.conv_pwl"]
    with pytest.raises(LoraTargetError, match="--lora-targets 'query'"):
        target_modules(backbone, 2, "query")


def test_merge_gives_the_same_function_as_the_adapted_network() -> None:
    """B is zero at injection (the extract model); after a step away from zero the merged
    plain network computes what the adapted one did."""
    backbone = headstart.create_backbone(CNN)
    x = torch.randn(2, 3, 32, 32)
    before = backbone.eval()(x)
    n = inject_inplace(backbone, target_modules(backbone, "all", "auto"), LoraConfig())
    assert n > 0 and torch.allclose(backbone(x), before, atol=1e-6)
    with torch.no_grad():
        for name, p in backbone.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    adapted = backbone(x)
    assert not torch.allclose(adapted, before, atol=1e-3)
    assert merge_inplace(backbone) == 3
    assert not any("lora_" in k or "base_layer" in k for k in backbone.state_dict())
    assert torch.allclose(backbone(x), adapted, atol=1e-5)


def test_lora_trains_only_the_adapters_and_the_head(tiny_images: Path, tmp_path: Path, store):
    headstart.fit(tiny_images, model=CNN, strategy="extract", store=store)
    passes = store.forward_passes
    out = tmp_path / "model"
    result = headstart.fit(
        tiny_images,
        out,
        model=CNN,
        strategy="lora",
        lora_blocks="all",
        epochs=3,
        lr=0.05,
        head_epochs=5,
        keep_extract=False,
        lora_save="merged",
        store=store,
    )
    model = result.predictor.model
    trained = result.metrics["parameters"]["trainable_per_stage"]["lora"]
    n_head = sum(p.numel() for p in model.head.parameters())
    # 3 convs (3->8, 8->16, 16->32, 3x3) with r=8: A is r x in*9, B is out x r
    adapters = sum(8 * cin * 9 + cout * 8 for cin, cout in ((3, 8), (8, 16), (16, 32)))
    assert trained == n_head + adapters
    # the head stage read the extract model's cached features: no new forward pass
    assert store.forward_passes == passes
    assert any("LoRA (peft, r=8" in n for n in result.metrics["notes"])
    source = headstart.create_backbone(CNN)
    source.pop_source_head_inplace()
    pretrained = source.state_dict()
    tuned = model.backbone.state_dict()
    assert set(tuned) == set(pretrained)  # merged: a plain network of the source architecture
    changed = {k for k, v in tuned.items() if not torch.equal(v, pretrained[k])}
    stage = [r for r in result.history if r["stage"] == "lora"]
    if [r["epoch"] for r in stage if r["best"]] != [0]:
        assert changed and all(k.endswith(".weight") for k in changed), changed
        assert not any("running" in k for k in changed)  # BatchNorm statistics never move
    else:  # epoch 0 kept: B is still zero, the merge changed nothing
        assert not changed, changed
    loaded = headstart.load(out)
    image = str(next(tiny_images.rglob("*.png")))
    assert torch.allclose(
        torch.from_numpy(loaded.predict_proba([image])),
        torch.from_numpy(result.predict_proba([image])),
        atol=1e-5,
    )


def test_lora_is_listed_and_its_options_are_flags(
    tiny_images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from headstart.cli import main

    assert get_method("lora").kind == "transfer"
    rows = {r["name"]: r for r in json.loads(CliRunner().invoke(app, ["methods", "--json"]).output)}
    assert {"lora_rank", "lora_alpha", "lora_targets"} <= set(rows["lora"]["options"])
    args = ["headstart", "fit", str(tiny_images), "--model", CNN, "--strategy", "lora", "-q"]
    for bad, says in (
        ("--lora-targets=nothing", "--lora-targets 'nothing'"),
        ("--lora-rank=0", "--lora-rank"),
    ):
        out = tmp_path / bad.split("=")[0].strip("-")
        monkeypatch.setattr("sys.argv", [*args, bad, "--out", str(out)])
        with pytest.raises(SystemExit) as exc:
            main()
        err = capsys.readouterr().err
        assert exc.value.code == 2 and says in err and "Traceback" not in err, err
        assert not out.exists()
