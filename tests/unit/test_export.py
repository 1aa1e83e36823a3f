"""ONNX export of tiny bundles: parity with PyTorch, the headstart.json entry, int8, and
predicting through ONNX Runtime (Python and ``predict --runtime onnx``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import headstart
from headstart.bundle._export import ExportError, export_onnx
from headstart.bundle._runtime import OnnxPredictor, load_predictor
from headstart.cli import app

MODELS = {"image": "test_cnn.tiny", "text": "test_words.tiny"}
FAST = {"epochs": 2, "head_epochs": 10}


@pytest.fixture(params=["image", "text"])
def bundle(request: pytest.FixtureRequest, tmp_path: Path, store) -> Path:
    modality = request.param
    data = request.getfixturevalue("tiny_images" if modality == "image" else "tiny_texts")
    out = tmp_path / "model"
    headstart.fit(data, out=out, model=MODELS[modality], store=store, **FAST)
    return out


def _items(bundle: Path) -> list[str]:
    predictor = headstart.load(bundle)
    if predictor.modality == "image":
        return sorted(str(p) for p in bundle.parent.rglob("*.png"))[:21]
    # an empty text, unknown words only, punctuation, and texts of many lengths
    return ["", "qqq zzz", "!", "goal match team score", *(f"recipe bake {i}" for i in range(17))]


def test_export_writes_a_graph_equal_to_pytorch(bundle: Path) -> None:
    before = {p.name for p in bundle.iterdir()}
    entry = export_onnx(bundle)
    assert {p.name for p in bundle.iterdir()} == before | {"model.onnx"}  # no temp files
    assert (bundle / "model.onnx").is_file()
    assert not (bundle / "model.int8.onnx").exists()
    assert json.loads((bundle / "headstart.json").read_text())["onnx"] == json.loads(
        json.dumps(entry)
    )
    assert entry["parity"]["source"] == "predictions.csv"
    assert entry["parity"]["max_abs_diff"] < 1e-4 == entry["parity"]["tolerance"]
    assert entry["opset"] >= 17 and entry["outputs"][0]["shape"] == ["batch", 3]
    shapes = {i["name"]: i["shape"] for i in entry["inputs"]}
    if headstart.load(bundle).modality == "image":
        assert shapes == {"pixel_values": ["batch", 3, 32, 32]}
        assert "centre-crop 32x32" in entry["preprocessing"]
    else:
        assert shapes == {"ids": ["tokens"], "offsets": ["batch"]}

    onnx = load_predictor(bundle, "onnx")
    torch_ = headstart.load(bundle)
    assert isinstance(onnx, OnnxPredictor) and onnx.classes == torch_.classes
    items = _items(bundle)
    for batch_size in (1, 5, 64):  # batch sizes (and text lengths) the export never saw
        np.testing.assert_allclose(
            onnx.predict_proba(items, batch_size), torch_.predict_proba(items), atol=1e-5
        )
    assert onnx.predict(items) == torch_.predict(items)
    assert onnx.predict_proba([]).shape == (0, 3)
    with pytest.raises(TypeError, match="copy the bundle"):
        onnx.save(bundle.parent / "copy")


def test_int8_copy_with_its_accuracy_change(bundle: Path) -> None:
    entry = export_onnx(bundle, quantize="int8")
    int8 = entry["int8"]
    assert (bundle / "model.int8.onnx").stat().st_size == int8["bytes"]
    test = int8["test"]
    n_test = len((bundle / "predictions.csv").read_text().splitlines()) - 1
    assert test["n"] == n_test
    assert test["accuracy_change"] == pytest.approx(test["accuracy_int8"] - test["accuracy_fp32"])
    assert 0 <= test["agreement"] <= 1
    proba = load_predictor(bundle, "onnx-int8").predict_proba(_items(bundle))
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    # exporting again without --quantize removes the int8 copy of (maybe) other weights
    export_onnx(bundle)
    assert not (bundle / "model.int8.onnx").exists()
    assert "int8" not in json.loads((bundle / "headstart.json").read_text())["onnx"]


def test_synthetic_parity_without_test_items(bundle: Path) -> None:
    (bundle / "predictions.csv").unlink()
    entry = export_onnx(bundle, quantize="int8")
    assert entry["parity"]["source"] == "synthetic" and entry["parity"]["max_abs_diff"] < 1e-4
    assert entry["int8"]["test"] is None


def test_parity_failure_writes_nothing(bundle: Path) -> None:
    before = (bundle / "headstart.json").read_bytes()
    with pytest.raises(ExportError, match="differ from PyTorch"):
        export_onnx(bundle, tolerance=0.0)
    assert not (bundle / "model.onnx").exists()
    assert (bundle / "headstart.json").read_bytes() == before


def test_runtime_errors_say_what_to_do(bundle: Path) -> None:
    with pytest.raises(FileNotFoundError, match="headstart export"):
        load_predictor(bundle, "onnx")
    with pytest.raises(ValueError, match="unknown runtime"):
        load_predictor(bundle, "tensorrt")
    with pytest.raises(ExportError, match="int8"):
        export_onnx(bundle, quantize="int4")
    export_onnx(bundle)
    config = json.loads((bundle / "headstart.json").read_text())
    config["onnx"]["weights_sha256"] = "0" * 64  # as if the bundle were refitted since
    (bundle / "headstart.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not exported from this bundle's weights"):
        load_predictor(bundle, "onnx")


def test_cli_export_and_predict_runtime_onnx(bundle: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(bundle), "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    assert "parity with PyTorch" in result.output and "model.int8.onnx" in result.output
    inputs = _items(bundle)[1:4]
    records = {}
    for runtime in ("torch", "onnx"):
        result = runner.invoke(
            app, ["predict", str(bundle), *inputs, "--json", "--runtime", runtime]
        )
        assert result.exit_code == 0, result.output
        records[runtime] = json.loads(result.output)
    assert [r["input"] for r in records["onnx"]] == [r["input"] for r in records["torch"]]
    assert [r["label"] for r in records["onnx"]] == [r["label"] for r in records["torch"]]
    for a, b in zip(records["onnx"], records["torch"], strict=True):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)
    result = runner.invoke(app, ["export", str(bundle), "--format", "tflite"])
    assert result.exit_code == 2 and "only format is onnx" in result.output


@pytest.mark.slow
def test_transformer_text_export(tiny_texts: Path, tmp_path: Path, store) -> None:
    out = tmp_path / "minilm"
    headstart.fit(tiny_texts, out=out, model="minilm_l6.sbert_all_v2", store=store, **FAST)
    entry = export_onnx(out)
    assert entry["parity"]["max_abs_diff"] < 1e-4
    assert {i["name"]: i["shape"] for i in entry["inputs"]}["input_ids"] == ["batch", "tokens"]
    texts = ["", "a much longer text than any in the training data " * 20, "goal"]
    np.testing.assert_allclose(
        load_predictor(out, "onnx").predict_proba(texts),
        headstart.load(out).predict_proba(texts),
        atol=1e-5,
    )
