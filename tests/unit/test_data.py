"""Reading datasets: layouts, manifests, splits, image modes, bad inputs."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import headstart
from headstart import DataError
from headstart.data import load_image, stratified_split


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _images_of(root: Path) -> list[Path]:
    return sorted(root.rglob("*.png"))


# -- layouts ------------------------------------------------------------------------------


def test_class_folder_layout(tiny_images: Path) -> None:
    data = headstart.read_data(tiny_images)
    assert data.modality == "image"
    assert data.classes == ["circle", "square", "stripes"]
    assert len(data) == 36
    assert not data.split_given
    assert data.skipped == []
    assert data.source == str(tiny_images)
    for item, label in zip(data.items, data.labels, strict=True):
        p = Path(item)
        assert p.is_absolute() and p.is_file()
        assert p.parent.name == data.classes[label]
    assert len(set(data.keys)) == 36  # content hashes of distinct images
    counts = data.counts()
    assert set(counts) == {"train", "val", "test"}
    assert sum(sum(c.values()) for c in counts.values()) == 36


def test_split_is_stratified_seeded_and_reproducible(tiny_images: Path) -> None:
    a = headstart.read_data(tiny_images, seed=0)
    b = headstart.read_data(tiny_images, seed=0)
    c = headstart.read_data(tiny_images, seed=1)
    assert list(a.split) == list(b.split)
    assert list(a.split) != list(c.split)
    for data in (a, c):
        counts = data.counts()
        for cls in data.classes:  # 12 per class: round(1.8) = 2 val, 2 test, 8 train
            assert counts["train"][cls] == 8
            assert counts["val"][cls] == 2
            assert counts["test"][cls] == 2


def test_stratified_split_small_classes() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    split = stratified_split(labels, val=0.15, test=0.15, seed=3)
    assert np.array_equal(split, stratified_split(labels, val=0.15, test=0.15, seed=3))
    for c in np.unique(labels):
        assert (split[labels == c] == "train").sum() >= 1
    assert set(split[labels == 0]) == {"train"}  # 2 items: both kept for training
    assert sorted(split[labels == 1]) == ["test", "train", "val"]  # 3 items: one each
    with pytest.raises(ValueError, match="fractions"):
        stratified_split(labels, val=0.6, test=0.5)


def _split_layout(tiny_images: Path, root: Path, splits: dict[str, slice]) -> Path:
    for cls_dir in sorted(p for p in tiny_images.iterdir() if p.is_dir()):
        files = sorted(cls_dir.glob("*.png"))
        for split, sl in splits.items():
            dest = root / split / cls_dir.name
            dest.mkdir(parents=True, exist_ok=True)
            for f in files[sl]:
                shutil.copy(f, dest / f.name)
    return root


def test_train_val_test_folders_used_as_given(tiny_images: Path, tmp_path: Path) -> None:
    root = _split_layout(
        tiny_images,
        tmp_path / "given",
        {"train": slice(0, 6), "Validation": slice(6, 9), "test": slice(9, 12)},
    )
    data = headstart.read_data(root)
    assert data.split_given
    assert len(data) == 36
    for item, split in zip(data.items, data.split, strict=True):
        folder = Path(item).parent.parent.name.lower()
        assert {"train": "train", "validation": "val", "test": "test"}[folder] == split
    assert data.counts()["val"] == {"circle": 3, "square": 3, "stripes": 3}


def test_val_carved_from_train_when_only_train_and_test(tiny_images: Path, tmp_path: Path) -> None:
    root = _split_layout(
        tiny_images, tmp_path / "given", {"train": slice(0, 9), "test": slice(9, 12)}
    )
    data = headstart.read_data(root, val=0.25)
    assert data.split_given
    for item, split in zip(data.items, data.split, strict=True):
        folder = Path(item).parent.parent.name
        if folder == "test":
            assert split == "test"
        else:
            assert split in ("train", "val")
    counts = data.counts()
    for cls in data.classes:
        assert counts["test"][cls] == 3
        assert counts["val"][cls] >= 1
        assert counts["train"][cls] + counts["val"][cls] == 9
    again = headstart.read_data(root, val=0.25)
    assert list(again.split) == list(data.split)


# -- manifests ----------------------------------------------------------------------------


def test_csv_manifest_of_images_with_relative_paths(tiny_images: Path) -> None:
    rows = [[str(p.relative_to(tiny_images)), p.parent.name] for p in _images_of(tiny_images)]
    manifest = _write_csv(tiny_images / "manifest.csv", ["path", "label"], rows)
    data = headstart.read_data(manifest)
    assert data.modality == "image"
    assert len(data) == 36
    assert data.classes == ["circle", "square", "stripes"]
    by_folder = headstart.read_data(tiny_images)
    assert sorted(data.keys) == sorted(by_folder.keys)
    for item, label in zip(data.items, data.labels, strict=True):
        assert Path(item).is_absolute() and Path(item).parent.name == data.classes[label]


def test_image_manifest_with_custom_columns_and_split(tiny_images: Path, tmp_path: Path) -> None:
    rows = []
    for i, p in enumerate(_images_of(tiny_images)):
        rows.append(
            [
                str(Path("..") / "images" / p.relative_to(tiny_images)),
                p.parent.name,
                "test" if i % 4 == 0 else "train",
            ]
        )
    sub = tmp_path / "manifests"
    sub.mkdir()
    manifest = _write_csv(sub / "m.csv", ["picture", "kind", "split"], rows)
    data = headstart.read_data(manifest, path_column="picture", label_column="kind")
    assert data.modality == "image"
    assert data.split_given
    assert len(data) == 36
    expected = ["test" if i % 4 == 0 else "train" for i in range(36)]
    assert [s if s != "val" else "train" for s in data.split] == expected
    assert (data.split == "val").sum() > 0  # carved out of train


def test_jsonl_manifest_of_images(tiny_images: Path) -> None:
    path = tiny_images / "m.jsonl"
    lines = [
        json.dumps({"image": str(p.relative_to(tiny_images)), "label": p.parent.name})
        for p in _images_of(tiny_images)
    ]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    data = headstart.read_data(path)
    assert data.modality == "image"
    assert len(data) == 36


def test_missing_image_in_manifest_is_skipped_with_line(tiny_images: Path) -> None:
    rows = [[str(p.relative_to(tiny_images)), p.parent.name] for p in _images_of(tiny_images)]
    rows.insert(2, ["circle/ghost.png", "circle"])
    manifest = _write_csv(tiny_images / "m.csv", ["file", "label"], rows)
    data = headstart.read_data(manifest)
    assert len(data) == 36
    assert len(data.skipped) == 1
    assert data.skipped[0].where == f"{manifest}:4"
    assert "ghost.png" in data.skipped[0].reason


def test_csv_of_texts(tiny_texts: Path) -> None:
    data = headstart.read_data(tiny_texts)
    assert data.modality == "text"
    assert data.classes == ["food", "sport", "tech"]
    assert len(data) == 45
    assert not data.split_given
    with tiny_texts.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert data.items == [r["text"] for r in rows]
    assert [data.classes[y] for y in data.labels] == [r["label"] for r in rows]


def test_text_table_with_custom_columns_tsv_and_split(tmp_path: Path) -> None:
    path = tmp_path / "reviews.tsv"
    rows = [
        ["great fun", "pos", "train"],
        ["loved it", "pos", "train"],
        ["superb", "pos", "test"],
        ["awful", "neg", "train"],
        ["boring, slow", "neg", "train"],
        ["bad", "neg", "val"],
        ["dull", "neg", ""],
        ["fine film", "pos", "valid"],
    ]
    path.write_text(
        "review\tsentiment\tsplit\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8"
    )
    data = headstart.read_data(path, text_column="review", label_column="sentiment")
    assert data.modality == "text"
    assert data.split_given
    assert data.items[4] == "boring, slow"
    assert list(data.split) == ["train", "train", "test", "train", "train", "val", "train", "val"]


def test_jsonl_of_texts_with_custom_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    # distinct texts: exact duplicates would be kept once
    recs = [
        {"body": f"word{i % 2} thing" + (f" {i}" if i > 1 else ""), "y": i % 2} for i in range(8)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    data = headstart.read_data(path, text_column="body", label_column="y")
    assert data.modality == "text"
    assert data.classes == ["0", "1"]
    assert data.items[1] == "word1 thing"
    assert list(data.labels) == [0, 1] * 4


def test_rows_with_empty_labels_are_skipped(tmp_path: Path) -> None:
    rows = [["a b", "x"], ["c d", "x"], ["e f", ""], ["g h", "y"], ["i j", "y"]]
    rows += [["k l", "x"], ["m n", "y"]]  # 3 per class: enough for a test split
    path = _write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    data = headstart.read_data(path)
    assert len(data) == 6
    assert [s.where for s in data.skipped] == [f"{path}:4"]


# -- image modes --------------------------------------------------------------------------


def _save_and_load(img: Image.Image, path: Path) -> np.ndarray:
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB"
    assert out.size == img.size
    return np.asarray(out).astype(int)


def test_load_greyscale(tmp_path: Path) -> None:
    arr = _save_and_load(Image.new("L", (6, 5), 100), tmp_path / "l.png")
    assert (arr == 100).all()


def test_load_rgba_composites_on_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (4, 1))
    img.putdata([(255, 0, 0, 255), (0, 0, 255, 0), (0, 0, 0, 128), (0, 200, 0, 255)])
    arr = _save_and_load(img, tmp_path / "rgba.png")
    assert arr[0, 0].tolist() == [255, 0, 0]
    assert arr[0, 1].tolist() == [255, 255, 255]  # fully transparent: background
    assert np.all(np.abs(arr[0, 2] - 127) <= 2)  # half transparent black over white
    assert arr[0, 3].tolist() == [0, 200, 0]


def test_load_palette_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([255, 0, 0, 0, 0, 0] + [0] * (256 * 3 - 6))  # 0: red, 1: black
    for x in range(2):
        for y in range(4):
            img.putpixel((x, y), 1)
    path = tmp_path / "p.png"
    img.save(path, transparency=1)
    arr = np.asarray(load_image(path)).astype(int)
    assert (arr[:, :2] == 255).all()  # transparent index: white, not black
    assert (arr[:, 2:] == [255, 0, 0]).all()


def test_load_cmyk(tmp_path: Path) -> None:
    arr = _save_and_load(Image.new("CMYK", (5, 5), (0, 255, 255, 0)), tmp_path / "c.tiff")
    assert np.all(np.abs(arr - [255, 0, 0]) <= 2)


def test_load_16_bit_is_rescaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 64 * 8).reshape(8, 64).astype(np.uint16)
    img = Image.fromarray(ramp)
    assert img.mode.startswith("I")
    arr = _save_and_load(img, tmp_path / "i16.png")
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    grey = arr[..., 0].ravel()
    assert grey.min() == 0 and grey.max() >= 254
    assert np.all(np.diff(grey) >= 0)  # order preserved
    assert len(np.unique(grey)) > 200  # clipping at 255 would leave almost one value
    assert abs(int(np.median(grey)) - 127) <= 3


def test_exif_orientation_is_respected(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (10, 120, 200))
    img.paste((250, 250, 0), (0, 0, 10, 20))  # a yellow band on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)
    with Image.open(path) as raw:
        assert raw.size == (40, 20)
    out = load_image(path)
    assert out.size == (20, 40)
    arr = np.asarray(out).astype(int)
    assert arr[2, 10, 2] < 100 and arr[2, 10, 0] > 200  # the yellow band is now on top
    assert arr[-2, 10, 2] > 150


# -- unreadable images --------------------------------------------------------------------


def _add_bad_images(root: Path) -> tuple[Path, Path]:
    junk = root / "circle" / "junk.png"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    good = next((root / "square").glob("*.png")).read_bytes()
    truncated = root / "square" / "truncated.png"
    truncated.write_bytes(good[: len(good) // 2])
    return junk, truncated


def test_corrupt_images_are_skipped_and_listed(tiny_images: Path) -> None:
    junk, truncated = _add_bad_images(tiny_images)
    (tiny_images / "stripes" / "notes.txt").write_text("not an image")
    data = headstart.read_data(tiny_images)
    assert len(data) == 36
    assert str(junk) not in data.items and str(truncated) not in data.items
    skipped = {Path(s.where).name: s.reason for s in data.skipped}
    assert set(skipped) == {"junk.png", "truncated.png", "notes.txt"}
    assert "unreadable image" in skipped["junk.png"]
    assert "unreadable image" in skipped["truncated.png"]


@pytest.mark.parametrize("kind", ["junk", "truncated"])
def test_corrupt_image_strict_raises_naming_the_file(tiny_images: Path, kind: str) -> None:
    bad = dict(zip(("junk", "truncated"), _add_bad_images(tiny_images), strict=True))
    for other, p in bad.items():
        if other != kind:
            p.unlink()
    with pytest.raises(DataError, match="unreadable image") as info:
        headstart.read_data(tiny_images, strict=True)
    assert str(bad[kind]) in str(info.value)


# -- errors -------------------------------------------------------------------------------


def test_single_class_is_an_error(tiny_images: Path) -> None:
    for cls in ("square", "stripes"):
        shutil.rmtree(tiny_images / cls)
    with pytest.raises(DataError, match="only one class") as info:
        headstart.read_data(tiny_images)
    assert str(tiny_images) in str(info.value)
    assert "circle" in str(info.value)


def test_class_with_one_example_is_an_error(tiny_images: Path) -> None:
    for p in sorted((tiny_images / "stripes").glob("*.png"))[1:]:
        p.unlink()
    with pytest.raises(DataError, match="'stripes'") as info:
        headstart.read_data(tiny_images)
    assert str(tiny_images) in str(info.value)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=re.escape(str(empty))):
        headstart.read_data(empty)


def test_class_folders_without_images_are_an_error(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        (tmp_path / "d" / cls).mkdir(parents=True)
    with pytest.raises(DataError, match="no usable examples"):
        headstart.read_data(tmp_path / "d")


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothing-here"):
        headstart.read_data(tmp_path / "nothing-here")


def test_missing_label_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", ["text", "category"], [["a", "x"], ["b", "y"]])
    with pytest.raises(DataError, match="label") as info:
        headstart.read_data(path)
    assert f"{path}:1:" in str(info.value)
    assert "category" in str(info.value)  # the columns it does have
    data = headstart.read_data(
        _write_csv(
            tmp_path / "u.csv",
            ["text", "category"],
            [["a", "x"], ["b", "x"], ["c", "y"], ["d", "y"], ["e", "x"], ["f", "y"]],
        ),
        label_column="category",
    )
    assert data.classes == ["x", "y"]


def test_missing_text_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", ["body", "label"], [["a", "x"], ["b", "y"]])
    with pytest.raises(DataError, match="no text column 'text'") as info:
        headstart.read_data(path)
    assert str(path) in str(info.value)
    with pytest.raises(DataError, match="no text column 'content'"):
        headstart.read_data(path, text_column="content")


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,label\nfine,a\nalso fine,b\nbad \xff\xfe byte,a\nok,b\n")
    with pytest.raises(DataError, match="UTF-8") as info:
        headstart.read_data(path)
    assert f"{path}:4:" in str(info.value)


def test_invalid_json_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'
        '{"text": "c", "label": \n{"text": "d", "label": "y"}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match="invalid JSON") as info:
        headstart.read_data(path)
    assert f"{path}:3:" in str(info.value)


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(DataError, match=r"data\.xlsx"):
        headstart.read_data(path)
