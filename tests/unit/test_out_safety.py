"""``--out`` never destroys what the user owns: the audit's data-loss repros, now refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import headstart
from headstart._io import (
    MARKER,
    OutputError,
    atomic_dir,
    check_out,
    clean_stale_temps,
    is_headstart_output,
    replace_dir,
)

FAST = {"model": "test_cnn.tiny", "head_epochs": 5}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_out_is_the_training_data_is_refused_and_the_data_kept(tiny_images: Path):
    before = _snapshot(tiny_images)
    with pytest.raises(OutputError, match="holds the input data"):
        headstart.fit(tiny_images, tiny_images, **FAST)
    assert _snapshot(tiny_images) == before


def test_out_containing_the_data_is_refused(tiny_images: Path):
    with pytest.raises(OutputError, match="holds the input data"):
        headstart.fit(tiny_images, tiny_images.parent, **FAST)
    assert tiny_images.is_dir()


def test_out_inside_the_data_folder_is_refused(tiny_images: Path):
    with pytest.raises(OutputError, match="inside the input data folder"):
        headstart.fit(tiny_images, tiny_images / "model", **FAST)
    assert not (tiny_images / "model").exists()


def test_out_holding_unrelated_files_is_refused_before_any_work(tiny_images: Path, tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    store = headstart.FeatureStore(tmp_path / "cache")
    with pytest.raises(OutputError, match="not written by headstart"):
        headstart.fit(tiny_images, mine, store=store, **FAST)
    assert (mine / "chapter1.tex").read_text() == "years of work"
    assert [p.name for p in mine.iterdir()] == ["chapter1.tex"]
    assert store.forward_passes == 0  # refused before training


def test_out_that_is_a_file_is_refused_and_kept(tiny_images: Path, tmp_path: Path):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    with pytest.raises(OutputError, match="a file is there"):
        headstart.fit(tiny_images, f, **FAST)
    assert f.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "notes.txt"]


def test_a_symlink_at_out_is_refused(tiny_images: Path, tmp_path: Path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OutputError):
        headstart.fit(tiny_images, tmp_path / "link", **FAST)
    assert target.is_dir() and (tmp_path / "link").is_symlink()


def test_an_earlier_bundle_is_replaced_with_no_leftovers(tiny_images: Path, tmp_path: Path):
    out = tmp_path / "model"
    first = headstart.fit(tiny_images, out, **FAST)
    assert (out / MARKER).is_file() and is_headstart_output(out)
    second = headstart.fit(tiny_images, out, seed=1, **FAST)
    assert second.out == out
    assert json.loads((out / "metrics.json").read_text())["seed"] == 1
    assert first.metrics["seed"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "model"]


def test_an_empty_existing_folder_is_used(tiny_images: Path, tmp_path: Path):
    out = tmp_path / "empty"
    out.mkdir()
    headstart.fit(tiny_images, out, **FAST)
    assert (out / "headstart.json").is_file()


def test_bundles_of_version_0_1_count_as_outputs(tmp_path: Path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "headstart.json").write_text(json.dumps({"format": 1, "headstart_version": "0.1.0"}))
    assert is_headstart_output(old)
    (old / "headstart.json").write_text(json.dumps({"name": "someone else's config"}))
    assert not is_headstart_output(old)
    with pytest.raises(OutputError):
        check_out(old)


def test_replace_dir_swaps_and_refuses_foreign_folders(tmp_path: Path):
    final = tmp_path / "out"
    final.mkdir()
    (final / MARKER).touch()
    (final / "old.txt").write_text("old")
    new = tmp_path / "new"
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_dir(new, final)
    assert sorted(p.name for p in final.iterdir()) == [MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("a,b")
    again = tmp_path / "again"
    again.mkdir()
    with pytest.raises(OutputError):
        replace_dir(again, foreign)
    assert (foreign / "data.csv").read_text() == "a,b"


def test_atomic_dir_leaves_nothing_when_the_block_fails(tmp_path: Path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_temp_folders_of_killed_runs_are_cleaned(tmp_path: Path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".model.headstart-tmp-{pid}-abc123"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    live = tmp_path / f".model.headstart-tmp-{os.getpid()}-xyz"
    live.mkdir()
    foreign = tmp_path / ".git"
    foreign.mkdir()
    assert clean_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and foreign.exists()


def test_cli_refuses_with_one_line_and_exit_2(tiny_images: Path, tmp_path: Path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("headstart")),
            "fit",
            str(tiny_images),
            "--out",
            str(mine),
            "--model",
            "test_cnn.tiny",
            "-q",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not written by headstart" in lines[0], proc.stderr
    assert (mine / "keep.txt").read_text() == "x"


def test_compare_refuses_a_foreign_folder(tiny_images: Path, tmp_path: Path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    with pytest.raises(OutputError):
        headstart.compare(tiny_images, mine, strategies="extract", seeds=1, **FAST)
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]


def test_predictor_save_refuses_a_foreign_folder(tiny_images: Path, tmp_path: Path):
    result = headstart.fit(tiny_images, **FAST)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    with pytest.raises(OutputError):
        result.predictor.save(mine)
    saved = result.predictor.save(tmp_path / "bundle")
    assert headstart.load(saved).predict([str(next(tiny_images.rglob("*.png")))])


def test_an_unwritable_cache_fails_before_any_work(tiny_images: Path, tmp_path: Path):
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"feature cache .* cannot be created"):
        headstart.fit(tiny_images, tmp_path / "out", cache_dir=str(blocker / "sub"), **FAST)
    assert not (tmp_path / "out").exists()
