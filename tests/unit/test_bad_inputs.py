"""Hand-made bad inputs, as a new user or a careless script would make them, each with the
one-line message (or the clean-up) it must get: duplicates, hidden files, labels written
two ways, splits too small to exist, huge fields, edited bundles, corrupt cache shards,
unescaped class names, bad options, and the CLI's one line and exit code 2."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import headstart
from headstart import DataError
from headstart._errors import BundleError, UserError
from headstart.bundle._bundle import load_bundle
from headstart.cache import CacheWarning, FeatureStore
from headstart.cli import main
from headstart.evaluate._card import render_model_card


def _csv(path: Path, rows: list[list[object]], header: tuple[str, ...] = ("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _texts(n: int = 4, labels: tuple[str, ...] = ("a", "b")) -> list[list[object]]:
    return [[f"text {lab} number {i}", lab] for lab in labels for i in range(n)]


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str):
    monkeypatch.setattr(sys, "argv", ["headstart", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny text bundle (hashed word vectors), fitted once for the module."""
    root = tmp_path_factory.mktemp("bundle")
    data = _csv(root / "t.csv", _texts(6, ("sport", "food")))
    headstart.fit(data, root / "model", model="test_words.tiny", cache_dir=str(root / "cache"))
    return root / "model"


def _edited(bundle: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "edited"
    shutil.copytree(bundle, copy)
    cfg = copy / "headstart.json"
    config = json.loads(cfg.read_text(encoding="utf-8"))
    edit(config)
    cfg.write_text(json.dumps(config), encoding="utf-8")
    return copy


# -- duplicates ---------------------------------------------------------------------------


def test_duplicate_images_are_kept_once_and_reported(tiny_images: Path) -> None:
    first = sorted((tiny_images / "circle").glob("*.png"))[0]
    shutil.copy(first, tiny_images / "circle" / "copy.png")
    shutil.copy(first, tiny_images / "circle" / "again.png")
    data = headstart.read_data(tiny_images)
    assert len(data) == 36
    assert len(data.duplicates) == 2
    assert len(set(data.keys)) == len(data.keys)
    copies = {"again.png", "circle_00.png", "copy.png"}  # the first in path order is kept
    assert {Path(d.where).name for d in data.duplicates} < copies
    assert all(d.reason.startswith("exact duplicate of ") for d in data.duplicates)


def test_a_duplicate_in_a_given_test_split_leaves_train(tiny_images: Path, tmp_path: Path) -> None:
    root = tmp_path / "split"
    for cls in ("circle", "square"):
        files = sorted((tiny_images / cls).glob("*.png"))
        for split, part in (("train", files[:8]), ("test", files[8:])):
            (root / split / cls).mkdir(parents=True)
            for f in part:
                shutil.copy(f, root / split / cls / f.name)
    leak = sorted((root / "test" / "circle").glob("*.png"))[0]
    shutil.copy(leak, root / "train" / "circle" / "leak.png")
    data = headstart.read_data(root)
    (dup,) = data.duplicates
    assert Path(dup.where).name == "leak.png" and "test" in dup.same_as
    test_keys = {data.keys[i] for i in data.indices("test")}
    other = {data.keys[i] for i in np.flatnonzero(data.split != "test")}
    assert not test_keys & other


def test_duplicate_texts_up_to_whitespace_are_one(tmp_path: Path) -> None:
    rows = [*_texts(), ["text a number 0  ", "a"], ["text  a number 0", "a"]]
    data = headstart.read_data(_csv(tmp_path / "t.csv", rows))
    assert len(data) == 8
    assert [d.where for d in data.duplicates] == [f"{tmp_path / 't.csv'}:{n}" for n in (10, 11)]


def test_copies_with_different_labels_are_all_left_out(tmp_path: Path) -> None:
    rows = [*_texts(), ["ambiguous", "a"], ["ambiguous", "b"]]
    data = headstart.read_data(_csv(tmp_path / "t.csv", rows))
    assert "ambiguous" not in data.items
    assert len(data.duplicates) == 2
    assert all("different labels ('a', 'b')" in d.reason for d in data.duplicates)


# -- hidden files, labels -----------------------------------------------------------------


def test_hidden_files_and_folders_are_ignored_everywhere(tiny_images: Path) -> None:
    img = sorted((tiny_images / "circle").glob("*.png"))[0]
    (tiny_images / "circle" / ".thumbs").mkdir()
    shutil.copy(img, tiny_images / "circle" / ".thumbs" / "small.png")
    shutil.copy(img, tiny_images / "circle" / "._circle_00.png")  # macOS resource fork
    (tiny_images / "circle" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tiny_images / "__MACOSX" / "circle").mkdir(parents=True)
    (tiny_images / ".trash" / "x").mkdir(parents=True)
    data = headstart.read_data(tiny_images)
    assert data.classes == ["circle", "square", "stripes"]
    assert len(data) == 36 and data.skipped == [] and data.duplicates == []


def test_labels_written_two_ways_are_one_class(tmp_path: Path) -> None:
    rows = [["t1", "1"], ["t2", "1.0"], ["t3", " 1 "], ["t4", 2], ["t5", "2.0"], ["t6", "2"]]
    data = headstart.read_data(_csv(tmp_path / "t.csv", rows))
    assert data.classes == ["1", "2"]
    path = tmp_path / "t.jsonl"
    recs = [{"text": f"t{i}", "label": v} for i, v in enumerate([1, 1.0, "1", 2, 2.0, " 2"])]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    assert headstart.read_data(path).classes == ["1", "2"]


def test_missing_labels_are_skipped_with_the_line_never_a_nan_class(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    labels = ["a", "a", "a", None, float("nan"), "b", "b", "b", ["a"], "NaN", "  "]
    lines = [json.dumps({"text": f"t{i}", "label": v}) for i, v in enumerate(labels)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = headstart.read_data(path)
    assert data.classes == ["a", "b"]
    reasons = {s.where: s.reason for s in data.skipped}
    assert set(reasons) == {f"{path}:{n}" for n in (4, 5, 9, 10, 11)}
    assert reasons[f"{path}:4"] == "missing label (None)"
    assert reasons[f"{path}:9"] == "a label must be a text or a number, not list"


def test_unknown_split_value_names_the_line(tmp_path: Path) -> None:
    rows = [[*r, "train"] for r in _texts()] + [["held out", "a", "tset"]]
    path = _csv(tmp_path / "t.csv", rows, ("text", "label", "split"))
    with pytest.raises(DataError, match=r"t\.csv:10: unknown split 'tset'"):
        headstart.read_data(path)


# -- empty splits -------------------------------------------------------------------------


def test_too_few_for_a_test_split_says_what_to_do(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", _texts(2))
    with pytest.raises(DataError) as info:
        headstart.read_data(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: too few examples for a test split")
    assert "--test 0" in msg and "add data" in msg and "test/" in msg
    assert "\n" not in msg
    with pytest.raises(DataError, match=r"validation split.*--val 0"):
        headstart.read_data(path, test=0.0)
    assert len(headstart.read_data(path, val=0.0, test=0.0)) == 4


def test_given_train_split_too_small_to_carve_validation(tmp_path: Path) -> None:
    rows = [[f"train {c}{i}", c, "train"] for c in "ab" for i in range(2)]
    rows += [[f"test {c}{i}", c, "test"] for c in "ab" for i in range(2)]
    path = _csv(tmp_path / "t.csv", rows, ("text", "label", "split"))
    with pytest.raises(DataError, match="--val 0"):
        headstart.read_data(path)
    assert len(headstart.read_data(path, val=0.0).indices("test")) == 4


# -- odd tables ---------------------------------------------------------------------------


def test_a_text_longer_than_the_csv_field_limit_reads(tmp_path: Path) -> None:
    huge = "word " * (csv.field_size_limit() // 4)
    data = headstart.read_data(_csv(tmp_path / "t.csv", [*_texts(), [huge, "a"]]))
    assert huge in data.items


def test_deeply_nested_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n' + "[" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"t\.jsonl:2: "):
        headstart.read_data(path)


def test_a_json_array_is_not_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('[{"text": "a", "label": "x"}]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"t\.jsonl:1: expected one JSON object per line"):
        headstart.read_data(path)


def test_an_impossible_image_path_is_skipped(tmp_path: Path, tiny_images: Path) -> None:
    rows = [[str(p), p.parent.name] for p in sorted(tiny_images.rglob("*.png"))]
    rows.append(["x" * 5000 + ".png", "circle"])
    data = headstart.read_data(_csv(tmp_path / "m.csv", rows, ("path", "label")))
    assert len(data) == 36
    (s,) = data.skipped
    assert s.where == f"{tmp_path / 'm.csv'}:38"


# -- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "flag"),
    [
        ("batch_size", 0, "--batch-size"),
        ("image_size", -3, "--image-size"),
        ("lr", -1e-3, "--lr"),
        ("epochs", 0, "--epochs"),
        ("head_lr", 0.0, "--head-lr"),
        ("val", 1.0, "--val"),
        ("test", -0.1, "--test"),
    ],
)
def test_a_bad_option_value_names_the_option(option: str, value: float, flag: str) -> None:
    with pytest.raises(ValueError, match=f"^option {flag}: .* is invalid; it must be (>|in) "):
        headstart.FitOptions(**{option: value})


# -- the feature cache --------------------------------------------------------------------


def _filled_store(tiny_texts: Path, tmp_path: Path):
    words = headstart.create_backbone("test_words.tiny")
    data = headstart.read_data(tiny_texts)
    store = FeatureStore(tmp_path / "cache")
    feats = store.features(words, data.items, data.keys, "text")
    (shard,) = store.entry_dir(words).glob("shard-*.npz")
    return words, data, feats, shard


def test_a_corrupt_shard_is_reported_deleted_and_recomputed(tiny_texts: Path, tmp_path: Path):
    words, data, feats, shard = _filled_store(tiny_texts, tmp_path)
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte: still a zip, wrong numbers
    shard.write_bytes(bytes(raw))
    fresh = FeatureStore(shard.parents[2])
    with pytest.warns(CacheWarning, match="checksum mismatch"):
        again = fresh.features(words, data.items, data.keys, "text")
    assert not shard.exists()
    assert fresh.forward_passes == len(data)
    np.testing.assert_array_equal(again, feats)


def test_shards_of_another_version_or_width_are_recomputed_quietly(
    tiny_texts: Path, tmp_path: Path
) -> None:
    words, data, feats, shard = _filled_store(tiny_texts, tmp_path)
    old = shard.with_name("shard-1-2.npz")  # an unchecked shard, as version 0.1 wrote
    shutil.copy(shard, old)
    shard.unlink()
    fresh = FeatureStore(shard.parents[2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(fresh.features(words, data.items, data.keys, "text"), feats)
    assert not old.exists() and fresh.forward_passes == len(data)
    # a well-formed shard of another width (another model's features filed here)
    (current,) = fresh.entry_dir(words).glob("shard-*.npz")
    current.unlink()
    fresh._write_shard(fresh.entry_dir(words), {}, list(data.keys), np.zeros((len(data), 3)))
    third = FeatureStore(shard.parents[2])
    np.testing.assert_array_equal(third.features(words, data.items, data.keys, "text"), feats)
    assert third.forward_passes == len(data)


# -- the model card -----------------------------------------------------------------------


def test_model_card_escapes_class_names_and_paths() -> None:
    evil = ["<script>alert(1)</script>", "a|b", "[click](http://x)", "`tick`"]
    per = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    metrics = {
        "classes": evil,
        "model": "m<i>",
        "strategy": "extract",
        "layer": "x",
        "splits": {
            "test": {
                "n": 4,
                "accuracy": 1.0,
                "macro_f1": 1.0,
                "per_class": dict.fromkeys(evil, per),
            }
        },
        "counts": {"test": dict.fromkeys(evil, 1)},
        "command": "headstart fit ```evil``` --out x",
    }
    card = render_model_card(metrics, {"modality": "text", "fit": {"source": "d/<b>.csv"}})
    assert "<script>" not in card and "<b>" not in card and "<i>" not in card
    assert "&lt;script&gt;" in card
    assert "| a\\|b |" in card  # one cell, not two
    assert "\\[click\\]" in card
    lines = card.splitlines()
    at = lines.index("````sh")  # a fence longer than any backtick run in the command
    assert lines[at : at + 3] == ["````sh", "headstart fit ```evil``` --out x", "````"]


# -- edited bundles -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["classes"].append("phantom"), "key 'classes': 3 names, but the head has 2"),
        (lambda c: c.pop("head"), "key 'head': missing"),
        (lambda c: c.update(layer=3), "key 'layer': expected a block name, found int"),
        (lambda c: c.update(layer="block9"), "key 'layer': 'block9' is not a block of"),
        (lambda c: c.update(classes="ab"), "key 'classes': expected a list of class names"),
        (lambda c: c.update(classes=["a", "a"]), "key 'classes': expected two or more distinct"),
        (lambda c: c["head"].update(n_classes="2"), "key 'head.n_classes': expected a positive"),
        (lambda c: c["backbone"].pop("blocks"), "key 'backbone.blocks': missing"),
        (lambda c: c.update(format=7), "key 'format': unsupported bundle format 7"),
        (lambda c: c.update(modality="video"), "key 'modality': 'video' is not one of"),
    ],
)
def test_an_edited_bundle_is_one_line_naming_file_and_key(
    text_bundle: Path, tmp_path: Path, edit, message: str
) -> None:
    bundle = _edited(text_bundle, tmp_path, edit)
    with pytest.raises(BundleError) as info:
        load_bundle(bundle)
    assert str(info.value).startswith(f"{bundle / 'headstart.json'}: ")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_label_map_edited_with_the_head_still_disagrees_with_the_weights(
    text_bundle: Path, tmp_path: Path
) -> None:
    def edit(c: dict) -> None:
        c["classes"].append("phantom")
        c["head"]["n_classes"] = 3

    with pytest.raises(BundleError, match=r"3 names, but the head in model\.safetensors"):
        load_bundle(_edited(text_bundle, tmp_path, edit))


def test_broken_json_and_weights_name_the_file(text_bundle: Path, tmp_path: Path) -> None:
    bundle = _edited(text_bundle, tmp_path, lambda c: None)
    (bundle / "headstart.json").write_text('{"format": 1,\n  "classes": [}', encoding="utf-8")
    with pytest.raises(BundleError, match=r"headstart\.json:2:\d+: invalid JSON"):
        load_bundle(bundle)
    shutil.copy(text_bundle / "headstart.json", bundle / "headstart.json")
    (bundle / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(BundleError, match=r"model\.safetensors: not a readable safetensors"):
        load_bundle(bundle)


# -- the CLI ------------------------------------------------------------------------------


def test_cli_user_errors_are_one_line_and_exit_2(
    text_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    bundle = _edited(text_bundle, tmp_path, lambda c: c["classes"].append("phantom"))
    code, _, err = _cli(monkeypatch, capsys, "predict", bundle, "some text")
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {bundle / 'headstart.json'}: key 'classes': 3 names, but the head has 2 outputs"
    ]
    small = _csv(tmp_path / "small.csv", _texts(2))
    code, _, err = _cli(monkeypatch, capsys, "fit", small, "--out", tmp_path / "o")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--test 0" in err
    code, _, err = _cli(monkeypatch, capsys, "evaluate", text_bundle, tmp_path / "nope.csv")
    assert code == 2 and "nope.csv: no such file or folder" in err and "Traceback" not in err


def test_cli_markup_in_a_message_is_printed_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    path = tmp_path / "[bold]x.csv"
    path.write_text("text,label\n", encoding="utf-8")
    code, _, err = _cli(monkeypatch, capsys, "fit", path, "--out", tmp_path / "o")
    assert code == 2 and "[bold]x.csv: no rows" in err


def test_cli_bug_shows_the_traceback_and_asks_for_a_report(
    text_bundle: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("headstart.bundle._runtime.load_predictor", broken)
    code, _, err = _cli(monkeypatch, capsys, "predict", text_bundle, "x")
    assert code == 1
    assert "Traceback" in err and "ZeroDivisionError: a bug" in err
    assert "unexpected error" in err and "report it" in err


def test_user_errors_share_one_base() -> None:
    from headstart.zoo import UnknownModelError, WeightsUnavailableError

    for cls in (DataError, BundleError, UnknownModelError, WeightsUnavailableError):
        assert issubclass(cls, UserError)


def test_predict_and_evaluate_skip_unreadable_images_and_list_them(
    tiny_images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out = tmp_path / "model"
    headstart.fit(tiny_images, out, model="test_cnn.tiny")
    bad = tiny_images / "circle" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tiny_images / "circle" / ".hidden.png").write_bytes(b"junk")
    good = sorted((tiny_images / "square").glob("*.png"))[0]
    code, stdout, err = _cli(monkeypatch, capsys, "predict", out, good, bad, "--json")
    assert code in (0, None)
    assert [r["input"] for r in json.loads(stdout)] == [str(good)]
    assert f"skipped {bad}: unreadable image" in err
    code, stdout, err = _cli(monkeypatch, capsys, "predict", out, tiny_images / "circle", "--json")
    assert len(json.loads(stdout)) == 12 and "1 input(s) skipped" in err
    code, stdout, err = _cli(monkeypatch, capsys, "predict", out, bad)
    assert code == 2 and "no readable input" in err
    code, stdout, err = _cli(monkeypatch, capsys, "evaluate", out, tiny_images)
    assert code in (0, None) and "broken.png" in err and "36 examples" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "DATA", "--out", "OUT", "--epochs", "abc"], "Invalid value for '--epochs'"),
        (["fit", "DATA", "--out", "OUT", "--unfreeze", "2"], "--unfreeze does not apply"),
        (["fit", "DATA", "--bogus"], "No such option: --bogus"),
        (["fit", "DATA"], "Missing option '--out'"),
        (["nope"], "No such command 'nope'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args, message, tiny_texts, tmp_path):
    import subprocess
    import sys

    exe = str(Path(sys.executable).with_name("headstart"))
    words = [
        str(tiny_texts) if a == "DATA" else str(tmp_path / "o") if a == "OUT" else a for a in args
    ]
    proc = subprocess.run(
        [exe, *words], capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"}
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
