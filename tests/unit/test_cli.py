"""The CLI as a user drives it: each command over the tiny test backbones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headstart.cli import app, main

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_models_lists_offline_zoo_as_json():
    code, out = _run("models", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["efficientnet_lite0.in1k"]["offline"] is True
    assert rows["minilm_l6.sbert_all_v2"]["modality"] == "text"
    assert "test_cnn.tiny" not in rows
    code, out = _run("models", "--json", "--test")
    assert "test_cnn.tiny" in {r["name"] for r in json.loads(out)}


def test_fit_predict_evaluate_images(tiny_images: Path, tmp_path: Path):
    out_dir = tmp_path / "model"
    code, out = _run(
        "fit", str(tiny_images), "--out", str(out_dir), "--model", "test_cnn.tiny", "-q"
    )
    assert code == 0, out
    assert "test accuracy" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["strategy"] == "extract"

    some = sorted((tiny_images / "circle").glob("*.png"))[:2]
    code, out = _run("predict", str(out_dir), *map(str, some), "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert [r["input"] for r in rows] == [str(p) for p in some]
    assert all(
        r["label"] in ("circle", "square", "stripes") and 0 < r["probability"] <= 1 for r in rows
    )

    code, out = _run("predict", str(out_dir), str(tiny_images / "square"), "--json")
    assert len(json.loads(out)) == 12  # a folder expands to its images

    code, out = _run("evaluate", str(out_dir), str(tiny_images), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["n"] == 36 and 0 <= report["accuracy"] <= 1


def test_fit_and_predict_texts_from_csv(tiny_texts: Path, tmp_path: Path):
    out_dir = tmp_path / "text-model"
    code, out = _run(
        "fit",
        str(tiny_texts),
        "--out",
        str(out_dir),
        "--model",
        "test_words.tiny",
        "--strategy",
        "finetune",
        "--epochs",
        "1",
        "-q",
    )
    assert code == 0, out
    code, out = _run("predict", str(out_dir), "recipe bake sauce oven", "--json")
    assert json.loads(out)[0]["label"] == "food"
    code, out = _run("predict", str(out_dir), str(tiny_texts), "--json")
    assert len(json.loads(out)) == 45  # every row of the CSV


def test_errors_are_one_clear_line_and_exit_2(
    tiny_images: Path, tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.setattr(
        "sys.argv",
        [
            "headstart",
            "fit",
            str(tiny_images),
            "--out",
            str(tmp_path / "x"),
            "--model",
            "efficientnet_lite9",
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown model" in err and "efficientnet_lite0" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr("sys.argv", ["headstart", "fit", str(empty), "--out", str(tmp_path / "y")])
    with pytest.raises(SystemExit):
        main()
    assert str(empty) in capsys.readouterr().err


def test_predict_rejects_missing_image(
    tiny_images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    out_dir = tmp_path / "model"
    assert (
        _run("fit", str(tiny_images), "--out", str(out_dir), "--model", "test_cnn.tiny", "-q")[0]
        == 0
    )
    # through the real entry point: one line naming the file, however long its path
    missing = tmp_path / ("deep-" * 30) / "nope.png"
    monkeypatch.setattr("sys.argv", ["headstart", "predict", str(out_dir), str(missing)])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code != 0 and str(missing) in err and len(err.strip().splitlines()) == 1


def test_readme_options_table_is_generated_from_the_fields():
    from headstart.cli._options import options_markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- options:start -->\n", "<!-- options:end -->"
    table = readme[readme.index(start) + len(start) : readme.index(end)]
    assert table == options_markdown(), "run `headstart methods --markdown` into the README"
