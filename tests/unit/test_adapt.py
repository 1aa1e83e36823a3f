"""headstart.adapt end to end on tiny data: the target's labels never change a prediction,
outputs are a normal bundle, every method runs, bad input fails in one line."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import headstart
from headstart.adapt import SCORING_NOTE, adapt, list_adapt_methods, read_target
from headstart.data import DataError

CNN = "test_cnn.tiny"
WORDS = "test_words.tiny"


def _shifted_images(src: Path, dest: Path, flat: bool) -> Path:
    """Every source image with inverted colours (a domain shift with the same classes),
    in class folders or one flat folder."""
    for f in sorted(src.rglob("*.png")):
        out = dest / ("" if flat else f.parent.name) / f"{f.parent.name}_{f.stem}_inv.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        ImageOps.invert(Image.open(f).convert("RGB")).save(out)
    return dest


def _manifest(folder: Path, path: Path, labels: list[str] | None = None) -> Path:
    files = sorted(folder.rglob("*.png"))
    names = labels or [f.name.split("_")[0] for f in files]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows([[str(f), n] for f, n in zip(files, names, strict=True)])
    return path


@pytest.fixture
def target_dir(tiny_images: Path, tmp_path: Path) -> Path:
    return _shifted_images(tiny_images, tmp_path / "target", flat=False)


def test_permuted_target_labels_give_bit_identical_predictions(
    tiny_images: Path, target_dir: Path, tmp_path: Path, store: headstart.FeatureStore
) -> None:
    true = _manifest(target_dir, tmp_path / "target.csv")
    names = [r["label"] for r in csv.DictReader(true.open())]
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    assert shuffled != names
    permuted = _manifest(target_dir, tmp_path / "permuted.csv", shuffled)
    runs = [adapt(tiny_images, t, model=CNN, store=store) for t in (true, permuted)]
    a, b = runs
    assert a.target_items == b.target_items
    assert np.array_equal(a.target_proba, b.target_proba)  # bit-identical
    assert a.chosen == b.chosen
    assert a.report["choice"] == b.report["choice"]
    for ra, rb in zip(a.report["candidates"], b.report["candidates"], strict=True):
        assert ra["scores"] == rb["scores"]
        assert ra["target_accuracy"]["note"] == SCORING_NOTE
    # the labels did reach the scoring: shuffled labels score differently
    acc = [[r["target_accuracy"]["accuracy"] for r in x.report["candidates"]] for x in runs]
    assert acc[0] != acc[1]


def test_target_order_does_not_depend_on_label_or_file_names(
    target_dir: Path, tmp_path: Path
) -> None:
    renamed = tmp_path / "renamed"
    for i, d in enumerate(sorted(target_dir.iterdir())):  # the classes' folder names swapped
        shutil.copytree(d, renamed / f"zz{9 - i}")
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in sorted(target_dir.rglob("*.png")):  # the same bytes, one folder, other names
        shutil.copy(f, flat / f"x{f.stat().st_ino}.png")
    a, b, c = read_target(target_dir), read_target(renamed), read_target(flat)
    assert a.keys == b.keys == c.keys
    assert a.keys == sorted(a.keys)
    assert c.labels is None and a.labels is not None


def test_adapt_writes_a_normal_bundle_and_the_whole_choice(
    tiny_images: Path, target_dir: Path, tmp_path: Path, store: headstart.FeatureStore
) -> None:
    out = tmp_path / "adapted"
    result = adapt(tiny_images, target_dir, out, model=CNN, store=store)
    report = json.loads((out / "adapt.json").read_text())
    ran = {r["method"] for r in report["candidates"]}
    assert ran == {
        *("source_only", "mean_var", "coral", "kmm", "kliep", "self_training", "adabn"),
        *("dann", "cdan", "mcc"),
    }
    rows = {r["method"]: r for r in report["candidates"]}
    terms = (("dann", "train_domain"), ("cdan", "train_domain"), ("mcc", "train_mcc"))
    for name, term in terms:  # logged per epoch
        epochs = rows[name]["history"]
        assert epochs and all(term in e and "train_ce" in e for e in epochs)
    assert report["chosen"] in ran and report["chosen"] == result.chosen
    assert set(report["proxy_a_distance"]) == {"before", "after"}
    for row in report["candidates"]:
        assert set(row["scores"]) >= {"im", "snd", "entropy", "iwcv", "dev"}
        assert 0 <= row["target_accuracy"]["accuracy"] <= 1
    html = (out / "report.html").read_text()
    assert "Adaptation" in html and SCORING_NOTE in html
    predictor = headstart.load(out)
    proba = predictor.predict_proba(result.target_items[:5])
    np.testing.assert_allclose(proba, result.target_proba[:5], atol=1e-4)
    assert predictor.evaluate(target_dir)["n"] == len(result.target_items)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("not headstart's")
    with pytest.raises(ValueError, match="mine"):
        adapt(tiny_images, target_dir, mine, model=CNN, store=store)
    assert (mine / "thesis.tex").read_text() == "not headstart's"


def test_one_method_and_a_flat_unlabelled_target(
    tiny_images: Path, target_dir: Path, tmp_path: Path, store: headstart.FeatureStore
) -> None:
    flat = _shifted_images(tiny_images, tmp_path / "flat", flat=True)
    result = adapt(tiny_images, flat, method="coral", model=CNN, store=store)
    assert result.chosen == "coral"
    assert [r["method"] for r in result.report["candidates"]] == ["source_only", "coral"]
    assert "target_accuracy" not in result.report["candidates"][0]
    assert result.report["scoring_note"] == "the target has no labels"


def test_labelled_target_methods(
    tiny_images: Path, target_dir: Path, tmp_path: Path, store: headstart.FeatureStore
) -> None:
    few = tmp_path / "few"
    for d in sorted(target_dir.iterdir()):
        (few / d.name).mkdir(parents=True)
        for f in sorted(d.iterdir())[:2]:
            shutil.copy(f, few / d.name / f.name)
    result = adapt(
        tiny_images, target_dir, method="tradaboost", model=CNN, target_labelled=few, store=store
    )
    rows = {r["method"]: r for r in result.report["candidates"]}
    assert set(rows) == {"source_only", "tradaboost", "target_only"}
    assert (
        rows["tradaboost"]["uses_labelled_target"] and rows["target_only"]["uses_labelled_target"]
    )
    assert result.chosen == "tradaboost"


def test_text_target_from_a_table_with_only_a_text_column(
    tiny_texts: Path, tmp_path: Path, store: headstart.FeatureStore
) -> None:
    rows = list(csv.DictReader(tiny_texts.open()))
    target = tmp_path / "target.csv"
    with target.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text"])
        w.writerows([[r["text"].upper() + " indeed"] for r in rows])
    result = adapt(tiny_texts, target, model=WORDS, store=store)
    skipped = {s["method"] for s in result.report["not_applicable"]}
    assert skipped == {"adabn"}  # word vectors have no BatchNorm
    assert len(result.target_items) == len(rows)


def test_every_adapt_method_is_listed_by_headstart_methods() -> None:
    from typer.testing import CliRunner

    from headstart.cli._app import app

    shown = json.loads(CliRunner().invoke(app, ["methods", "--json"]).stdout)
    adapt_rows = {r["name"] for r in shown if r["kind"] == "adapt"}
    assert adapt_rows == {m.name for m in list_adapt_methods()}


def test_bad_input_is_one_clear_error(
    tiny_images: Path,
    tiny_texts: Path,
    target_dir: Path,
    tmp_path: Path,
    store: headstart.FeatureStore,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match="no target items"):
        adapt(tiny_images, empty, model=CNN, store=store)
    with pytest.raises(DataError, match="holds text data"):
        adapt(tiny_images, tiny_texts, model=CNN, store=store)
    one = tmp_path / "one"
    shutil.copytree(tiny_images / "circle", one / "circle")
    with pytest.raises(DataError, match="only one class"):
        adapt(one, target_dir, model=CNN, store=store)
    other = tmp_path / "other"
    shutil.copytree(target_dir / "circle", other / "disc")
    shutil.copytree(target_dir / "square", other / "square")
    with pytest.raises(DataError, match=r"label names differ.*'disc'"):
        adapt(tiny_images, target_dir, model=CNN, target_labelled=other, store=store)
    with pytest.raises(ValueError, match="--target-labelled"):
        adapt(tiny_images, target_dir, method="tradaboost", model=CNN, store=store)
    with pytest.raises(ValueError, match="unknown adaptation method 'dann2'"):
        adapt(tiny_images, target_dir, method="dann2", model=CNN, store=store)


def test_cli_adapt_then_predict(tiny_images: Path, target_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from headstart.cli import app

    out = tmp_path / "adapted"
    args = ["adapt", str(tiny_images), str(target_dir), "--out", str(out), "--model", CNN]
    res = CliRunner().invoke(app, [*args, "--method", "mean_var", "-q"])
    assert res.exit_code == 0, res.output
    assert "target accuracy (labels used for scoring only)" in res.output
    assert "(chosen)" in res.output
    assert json.loads((out / "adapt.json").read_text())["chosen"] == "mean_var"
    first = sorted(target_dir.rglob("*.png"))[0]
    res = CliRunner().invoke(app, ["predict", str(out), str(first), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["label"] in (
        "circle",
        "square",
        "stripes",
    )


def test_cli_bad_input_is_one_line_and_exit_2(
    tiny_images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from headstart.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["headstart", "adapt", str(tiny_images), str(empty), "--out", str(tmp_path / "o")]
    monkeypatch.setattr("sys.argv", [*argv, "--model", CNN])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "no target items" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_dann_bundle_logs_its_loss_terms(
    tiny_images: Path, target_dir: Path, tmp_path: Path, store: headstart.FeatureStore
) -> None:
    out = tmp_path / "dann"
    result = adapt(tiny_images, target_dir, out, method="dann", model=CNN, store=store)
    assert result.chosen == "dann"
    history = json.loads((out / "history.json").read_text())
    assert history and {"train_ce", "train_domain", "val_acc"} <= set(history[0])
    assert json.loads((out / "headstart.json").read_text())["head"]["hidden"] == [256]
    proba = headstart.load(out).predict_proba(result.target_items[:3])
    np.testing.assert_allclose(proba, result.target_proba[:3], atol=1e-4)


def test_cli_method_options_come_from_the_method_configs(
    tiny_images: Path, target_dir: Path, tmp_path: Path
) -> None:
    """`--epochs 2 --weight 0.5` set CDAN's config (at most 2 epochs in its history), are
    stored in adapt.json and in the reproduce command; a refused value names its flag."""
    from typer.testing import CliRunner

    from headstart.cli import app

    out = tmp_path / "cdan"
    args = ["adapt", str(tiny_images), str(target_dir), "--model", CNN, "-q"]
    opts = ["--method", "cdan", "--epochs", "2", "--weight", "0.5"]
    res = CliRunner().invoke(app, [*args, "--out", str(out), *opts])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "adapt.json").read_text())
    assert rep["configs"]["cdan"] == {"epochs": 2, "lr": 0.001, "weight": 0.5}
    assert "--epochs 2" in rep["command"] and "--weight 0.5" in rep["command"]
    cdan = next(r for r in rep["candidates"] if r["method"] == "cdan")
    assert 1 <= len(cdan["history"]) <= 2
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "bad"), "--epochs", "0"])
    assert res.exit_code == 2 and "--epochs" in res.output and "> 0" in res.output
    foreign = ["--out", str(tmp_path / "bad"), "--method", "coral", "--epochs", "5"]
    res = CliRunner().invoke(app, [*args, *foreign])
    assert res.exit_code == 2 and "does not apply to --method coral" in res.output
    assert not (tmp_path / "bad").exists()
