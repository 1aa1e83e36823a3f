"""BitFit, the plug-in that proves the method seam: only bias terms (and the head) train."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.methods import get_method, list_methods
from headstart.train import matching_parameters, param_groups, prepare_stage_inplace


def test_bitfit_is_registered_as_a_transfer_method():
    info = get_method("bitfit")
    assert info.kind == "transfer" and info.applies_to("image") and info.applies_to("text")
    assert "bitfit" in [m.name for m in list_methods(kind="transfer")]
    result = CliRunner().invoke(app, ["methods", "--json"])
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["bitfit"]["kind"] == "transfer" and "bias_pattern" in rows["bitfit"]["options"]
    assert {"extract", "finetune", "scratch", "tfidf", "pixels", "small_cnn"} <= set(rows)


def test_bitfit_trains_only_biases_and_the_head(tiny_images: Path, tmp_path: Path, store):
    out = tmp_path / "model"
    result = headstart.fit(
        tiny_images,
        out,
        model="test_cnn.tiny",
        strategy="bitfit",
        epochs=3,
        lr=0.05,
        head_epochs=5,
        store=store,
    )
    model = result.predictor.model
    biases = matching_parameters(model.backbone, ["*bias"])
    assert biases, "the tiny CNN has BatchNorm shifts"
    n_bias = sum(p.numel() for _, p in biases)
    n_head = sum(p.numel() for p in model.head.parameters())
    assert result.metrics["parameters"]["trainable_per_stage"]["bitfit"] == n_bias + n_head
    assert n_bias < 0.1 * sum(p.numel() for p in model.backbone.parameters())
    stage = [r for r in result.history if r["stage"] == "bitfit"]
    assert stage[0]["epoch"] == 0 and len(stage) >= 2
    kept = [r["epoch"] for r in stage if r["best"]]
    pretrained = headstart.create_backbone("test_cnn.tiny").state_dict()
    tuned = model.backbone.state_dict()
    changed = {k for k, v in tuned.items() if not torch.equal(v, pretrained[k])}
    assert changed <= {n for n, _ in biases}, changed  # BatchNorm running stats never move
    assert bool(changed) == (kept != [0]), (kept, changed)
    loaded = headstart.load(out)  # a normal bundle
    image = str(next(tiny_images.rglob("*.png")))
    assert torch.allclose(
        torch.from_numpy(loaded.predict_proba([image])),
        torch.from_numpy(result.predict_proba([image])),
        atol=1e-5,
    )


def test_bitfit_optimizer_groups_hold_only_biases_and_the_head():
    from headstart.surgery import TransferModel, make_head
    from headstart.train import Stage

    bb = headstart.create_backbone("test_cnn.tiny")
    model = TransferModel(bb, make_head(bb.feature_dim, 3))
    stage = Stage("bitfit", (), 1e-3, (("*bias", 0.5),), 2, 2, params=("*bias",))
    prepare_stage_inplace(model, stage)
    groups = {g["name"]: g for g in param_groups(model, stage)}
    assert set(groups) == {"head", "*bias"}
    assert groups["*bias"]["lr"] == 5e-4 and groups["head"]["lr"] == 1e-3
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in matching_parameters(bb, ["*bias"])}


def test_compare_and_cli_take_bitfit(tiny_images: Path, tmp_path: Path, store):
    cmp = headstart.compare(
        tiny_images,
        tmp_path / "cmp",
        strategies="baseline,extract,bitfit",
        seeds=1,
        model="test_cnn.tiny",
        epochs=1,
        head_epochs=3,
        cnn_epochs=1,
        store=store,
    )
    assert {r["strategy"] for r in cmp.report["summary"]} == {
        "pixels",
        "small_cnn",
        "extract",
        "bitfit",
    }
    assert cmp.report["kinds"]["bitfit"] == "transfer"
    assert {g["strategy"] for g in cmp.report["gains"]} == {"extract", "bitfit"}
    result = CliRunner().invoke(
        app,
        [
            "fit",
            str(tiny_images),
            "--out",
            str(tmp_path / "cli"),
            "--model",
            "test_cnn.tiny",
            "--strategy",
            "bitfit",
            "--epochs",
            "1",
            "--head-epochs",
            "3",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["strategy"] == "bitfit"
    refused = CliRunner().invoke(
        app, ["fit", str(tiny_images), "--out", str(tmp_path / "x"), "--unfreeze", "2"]
    )
    assert refused.exit_code == 2 and "does not apply to --strategy extract" in refused.output
