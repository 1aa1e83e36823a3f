"""``headstart.fit`` end to end on tiny data, the bundle it writes, and loading it back."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import headstart
from headstart import _fit
from headstart.data import SPLITS

MODELS = {"image": "test_cnn.tiny", "text": "test_words.tiny"}
FAST = {"epochs": 2, "head_epochs": 10}
BUNDLE_FILES = {
    ".headstart-output",
    "model.safetensors",
    "headstart.json",
    "metrics.json",
    "history.json",
    "predictions.csv",
    "assets",
    "report.html",
    "MODEL_CARD.md",
}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib", ".npy", ".npz", ".ckpt"}


@pytest.fixture(params=["image", "text"])
def modality(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def source(modality: str, request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue("tiny_images" if modality == "image" else "tiny_texts")


def _assert_no_pickles(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            assert p.suffix not in PICKLE_SUFFIXES, p
            head = p.read_bytes()[:2]
            assert head not in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"), p
            assert head != b"PK", p  # torch.save's zip container


def _check_metrics(metrics: dict, data: headstart.LabeledData) -> None:
    assert metrics["classes"] == data.classes
    assert sum(metrics["samples"].values()) == len(data)
    for split in SPLITS:
        report = metrics["splits"][split]
        assert report["n"] == int((data.split == split).sum()) > 0
        assert 0.0 <= report["accuracy"] <= 1.0
        assert 0.0 <= report["macro_f1"] <= 1.0
        assert list(report["per_class"]) == data.classes
        assert sum(c["support"] for c in report["per_class"].values()) == report["n"]
        assert np.array(report["confusion"]).sum() == report["n"]


@pytest.mark.parametrize(
    ("strategy", "head"),
    [("extract", "logreg"), ("extract", "mlp"), ("finetune", "logreg"), ("scratch", "logreg")],
    ids=["extract-logreg", "extract-mlp", "finetune", "scratch"],
)
def test_fit_writes_a_bundle_that_loads_and_predicts_the_same(
    source: Path, modality: str, strategy: str, head: str, tmp_path: Path, store
) -> None:
    out = tmp_path / "out" / "model"
    result = headstart.fit(
        source, out=out, model=MODELS[modality], strategy=strategy, head=head, store=store, **FAST
    )
    data = result.data
    assert data.modality == modality
    assert result.out == out
    metrics = result.metrics
    assert metrics["strategy"] == strategy and metrics["model"] == MODELS[modality]
    _check_metrics(metrics, data)
    assert result.history and all(row["stage"] for row in result.history)

    # the folder: every output, no pickle, nothing temporary beside it
    assert {p.name for p in out.iterdir()} >= BUNDLE_FILES - {"assets"}
    assert {p.name for p in out.iterdir()} <= BUNDLE_FILES
    _assert_no_pickles(out)
    assert [p.name for p in out.parent.iterdir()] == ["model"]
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert any(n.startswith("backbone.") for n in names)
    assert any(n.startswith("head.") for n in names)
    assert not any("source_head" in n for n in names)
    config = json.loads((out / "headstart.json").read_text())
    assert config["classes"] == data.classes and config["strategy"] == strategy
    assert config["backbone"]["name"] == MODELS[modality]
    saved_metrics = json.loads((out / "metrics.json").read_text())
    assert saved_metrics["splits"] == json.loads(json.dumps(metrics["splits"]))
    assert saved_metrics["forward_passes"] == metrics["forward_passes"]
    assert len(json.loads((out / "history.json").read_text())) == len(result.history)

    # the loaded bundle predicts exactly what the fitted model predicts
    test_items, test_labels, _ = data.take("test")
    items = test_items + data.take("train")[0][:5]
    loaded = headstart.load(out)
    assert loaded.classes == data.classes
    np.testing.assert_allclose(
        loaded.predict_proba(items), result.predict_proba(items), rtol=1e-5, atol=1e-6
    )
    assert loaded.predict(items) == result.predict(items)
    predicted = loaded.predict(test_items)
    acc = np.mean([p == data.classes[y] for p, y in zip(predicted, test_labels, strict=True)])
    assert acc == pytest.approx(result.test_accuracy)

    with (out / "predictions.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["item"] for r in rows] == test_items
    assert [r["predicted"] for r in rows] == predicted
    assert [r["label"] for r in rows] == [data.classes[y] for y in test_labels]


def test_extract_reuses_cached_features_for_another_head(
    source: Path, modality: str, store
) -> None:
    first = headstart.fit(
        source, model=MODELS[modality], strategy="extract", head="logreg", store=store, **FAST
    )
    assert first.metrics["forward_passes"] == len(first.data)
    second = headstart.fit(
        source, model=MODELS[modality], strategy="extract", head="mlp", store=store, **FAST
    )
    assert second.metrics["forward_passes"] == 0
    assert second.metrics["splits"]["test"]["n"] == first.metrics["splits"]["test"]["n"]
    # the fine-tune strategy's head stage reuses them too
    third = headstart.fit(source, model=MODELS[modality], strategy="finetune", store=store, **FAST)
    assert third.metrics["forward_passes"] == 0
    # another cut point is another backbone: its features are extracted afresh
    if modality == "image":
        cut = headstart.fit(source, model="test_cnn.tiny", layer="block1", store=store, **FAST)
        assert cut.metrics["forward_passes"] == len(cut.data)
        assert cut.metrics["feature_dim"] == 16


def test_cache_dir_option_and_env(tiny_texts: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "env-cache"))
    headstart.fit(tiny_texts, model="test_words.tiny", **FAST)
    assert list((tmp_path / "env-cache").rglob("shard-*.npz"))
    headstart.fit(tiny_texts, model="test_words.tiny", cache_dir=str(tmp_path / "opt"), **FAST)
    assert list((tmp_path / "opt").rglob("shard-*.npz"))


@pytest.mark.parametrize("modality", ["image", "text"])
def test_extract_beats_chance_clearly(source: Path, modality: str, store) -> None:
    result = headstart.fit(source, model=MODELS[modality], strategy="extract", store=store)
    chance = 1 / len(result.data.classes)
    assert result.metrics["splits"]["val"]["accuracy"] >= 0.8 > chance + 0.4
    assert result.test_accuracy >= 0.8
    assert result.metrics["splits"]["test"]["macro_f1"] >= 0.75


@pytest.mark.parametrize("where", ["predictions", "weights"])
def test_failed_write_leaves_no_folder(
    tiny_texts: Path, tmp_path: Path, store, monkeypatch, where: str
) -> None:
    def boom(*args, **kwargs):
        raise OSError("disk full")

    if where == "predictions":
        monkeypatch.setattr(_fit, "atomic_write_text", boom)
    else:
        import safetensors.torch

        monkeypatch.setattr(safetensors.torch, "save_file", boom)
    parent = tmp_path / "outputs"
    with pytest.raises(OSError, match="disk full"):
        headstart.fit(
            tiny_texts, out=parent / "model", model="test_words.tiny", store=store, **FAST
        )
    assert not (parent / "model").exists()
    assert list(parent.iterdir()) == []  # no temporary folder left behind


def test_failed_write_keeps_the_previous_bundle(
    tiny_texts: Path, tmp_path: Path, store, monkeypatch
) -> None:
    out = tmp_path / "model"
    first = headstart.fit(tiny_texts, out=out, model="test_words.tiny", store=store, **FAST)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(_fit, "atomic_write_text", boom)
    with pytest.raises(OSError):
        headstart.fit(tiny_texts, out=out, model="test_words.tiny", head="mlp", store=store, **FAST)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    items = first.data.take("test")[0]
    assert headstart.load(out).predict(items) == first.predict(items)


def test_refit_replaces_an_existing_bundle(tiny_texts: Path, tmp_path: Path, store) -> None:
    out = tmp_path / "model"
    headstart.fit(tiny_texts, out=out, model="test_words.tiny", store=store, **FAST)
    second = headstart.fit(
        tiny_texts, out=out, model="test_words.tiny", strategy="scratch", store=store, **FAST
    )
    assert json.loads((out / "headstart.json").read_text())["strategy"] == "scratch"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    items = second.data.take("test")[0]
    assert headstart.load(out).predict(items) == second.predict(items)


def test_predictor_save_round_trip(tiny_images: Path, tmp_path: Path, store) -> None:
    result = headstart.fit(tiny_images, model="test_cnn.tiny", store=store, **FAST)
    assert result.out is None
    path = result.predictor.save(tmp_path / "saved")
    loaded = headstart.load(path)
    items = result.data.items[:8]
    np.testing.assert_allclose(loaded.predict_proba(items), result.predict_proba(items), atol=1e-6)
    assert loaded.predict_proba([]).shape == (0, 3)


def test_load_rejects_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a headstart bundle"):
        headstart.load(tmp_path)


def test_scratch_is_reproducible_with_a_seed(tiny_images: Path, store, seed: int) -> None:
    runs = []
    for global_seed in (1234, 99):
        torch.manual_seed(global_seed)  # whatever the global RNG state, the fit seed decides
        runs.append(
            headstart.fit(
                tiny_images,
                model="test_cnn.tiny",
                strategy="scratch",
                epochs=1,
                seed=seed,
                store=store,
            )
        )
    losses = [[row["train_loss"] for row in r.history] for r in runs]
    assert losses[0] == losses[1]
    items = runs[0].data.items[:6]
    np.testing.assert_array_equal(runs[0].predict_proba(items), runs[1].predict_proba(items))


def test_fit_accepts_labeled_data_and_checks_the_modality(tiny_texts: Path, store) -> None:
    data = headstart.read_data(tiny_texts, seed=5)
    result = headstart.fit(data, model="test_words.tiny", store=store, **FAST)
    assert result.data is data
    with pytest.raises(ValueError, match="image model"):
        headstart.fit(data, model="test_cnn.tiny", store=store)
    with pytest.raises(ValueError, match="strategy"):
        headstart.fit(data, model="test_words.tiny", strategy="magic", store=store)


def test_bundle_has_ordinary_permissions(tiny_texts: Path, tmp_path: Path, store) -> None:
    """Temporary files and folders are private (0600/0700); the bundle must not stay so."""
    old = os.umask(0o022)
    try:
        out = headstart.fit(
            tiny_texts, out=tmp_path / "model", model="test_words.tiny", store=store, **FAST
        ).out
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    for p in out.rglob("*"):
        assert stat.S_IMODE(p.stat().st_mode) == (0o755 if p.is_dir() else 0o644), p


def test_a_finetune_stage_that_only_hurts_is_undone(tiny_texts: Path, store, monkeypatch) -> None:
    """Stage 2 whose every step wrecks the weights: the model entering the stage is kept."""

    class Wrecking(torch.optim.AdamW):
        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    p.copy_(torch.randn_like(p) * 10)

    monkeypatch.setattr("headstart.train._loop.torch.optim.AdamW", Wrecking)
    result = headstart.fit(
        tiny_texts,
        model="test_words.tiny",
        strategy="finetune",
        unfreeze="all",
        epochs=2,
        store=store,
    )
    entry = next(r["val_acc"] for r in result.history if r["stage"] == "head" and r["chosen"])
    stage2 = [r for r in result.history if r["stage"] == "finetune"]
    assert stage2[0]["epoch"] == 0 and stage2[0]["val_acc"] == pytest.approx(entry)
    assert all(r["val_acc"] < entry for r in stage2[1:])  # training did hurt...
    assert [r["epoch"] for r in stage2 if r["best"]] == [0]  # ...so epoch 0 is kept
    assert result.metrics["splits"]["val"]["accuracy"] == pytest.approx(entry)


def test_bundle_records_the_head_type_and_loads_bundles_of_0_1(tiny_images: Path, tmp_path: Path):
    out = tmp_path / "model"
    headstart.fit(tiny_images, out, model="test_cnn.tiny", head="mlp", head_epochs=3)
    config = json.loads((out / "headstart.json").read_text())
    assert config["head"]["type"] == "mlp" and config["head"]["hidden"] == [256]
    image = str(next(tiny_images.rglob("*.png")))
    before = headstart.load(out).predict_proba([image])
    del config["head"]["type"]  # as 0.1 wrote it
    (out / "headstart.json").write_text(json.dumps(config))
    np.testing.assert_allclose(headstart.load(out).predict_proba([image]), before, atol=1e-6)
    config["head"]["type"] = "no_such_head"
    (out / "headstart.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no_such_head"):  # BundleError is a ValueError
        headstart.load(out)


def test_forward_features_and_head_compose_to_forward(tiny_images: Path):
    result = headstart.fit(tiny_images, model="test_cnn.tiny", head_epochs=3)
    model = result.predictor.model
    batch = model.backbone.collate(headstart.data.load_items(result.data.items[:4], "image"))
    with torch.inference_mode():
        feats = model.forward_features(batch)
        assert feats.shape == (4, model.backbone.feature_dim)
        assert torch.equal(model.forward_head(feats), model(batch))
