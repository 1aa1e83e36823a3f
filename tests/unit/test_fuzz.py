"""Property-based fuzzing (hypothesis): whatever the input, only a documented error escapes.

* readers (:func:`headstart.read_data`): random bytes as images, random CSV / JSONL tables
  and random bytes as tables give a :class:`LabeledData` or a :class:`DataError`;
* the label normaliser gives a class name or ``None`` (``TypeError`` for a list or object);
* the splitter gives a valid, reproducible split (``ValueError`` for impossible fractions);
* the bundle loader, on random edits of a tiny bundle's ``headstart.json``, loads or
  raises a :class:`BundleError`.

Examples are few and deadlines off, so the whole module runs in well under a minute;
``HEADSTART_FUZZ_EXAMPLES=2000`` hunts deeper.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import headstart
from headstart import DataError, LabeledData
from headstart._errors import BundleError
from headstart.bundle._bundle import load_bundle
from headstart.data import stratified_split
from headstart.data._clean import MISSING_LABELS, dedupe, normalize_label

FUZZ = settings(
    max_examples=int(os.environ.get("HEADSTART_FUZZ_EXAMPLES", "40")),  # more: a deeper hunt
    deadline=None,
    # CI runs the same examples every time (no flaky red); a deeper hunt draws new ones
    derandomize="HEADSTART_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
labels = st.sampled_from(["a", "b", "1", "1.0", " b ", "", "nan", "NaN", "NA"]) | st.text(
    max_size=6
)


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _check(data: LabeledData) -> None:
    """What every dataset read for training guarantees."""
    assert len(data.classes) >= 2
    assert not {c for c in data.classes if c in MISSING_LABELS or c != c.strip()}
    assert len(data.items) == len(data.keys) == len(data.labels) == len(data.split)
    assert set(data.split) <= {"train", "val", "test"}
    assert data.labels.min() >= 0 and data.labels.max() < len(data.classes)
    if data.modality == "image":  # no content in two splits
        owner: dict[str, str] = {}
        for k, s in zip(data.keys, data.split, strict=True):
            assert owner.setdefault(k, s) == s


def _read_or_data_error(path: Path) -> None:
    """Reading ``path`` gives a valid dataset, or a DataError naming the file."""
    try:
        data = headstart.read_data(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return
    _check(data)


# -- the label normaliser, the splitter, dedupe --------------------------------------------


@FUZZ
@given(json_values)
def test_normalize_label_gives_a_name_or_none(value: Any) -> None:
    try:
        out = normalize_label(value)
    except TypeError:
        assert isinstance(value, list | dict)
        return
    if out is None:
        return
    assert out and out == out.strip() and out not in MISSING_LABELS
    assert normalize_label(out) == out  # idempotent


@FUZZ
@given(st.integers(-(10**6), 10**6))
def test_an_integer_is_one_class_however_written(n: int) -> None:
    forms = [n, float(n), str(n), f"{n}.0", f" {n} ", f"{n}.00"]
    assert {normalize_label(f) for f in forms} == {str(n)}


@FUZZ
@given(
    st.lists(st.integers(0, 4), max_size=60),
    st.floats(-0.5, 1.2, allow_nan=False),
    st.floats(-0.5, 1.2, allow_nan=False),
    st.integers(0, 3),
)
def test_stratified_split_is_valid_and_reproducible(y: list[int], val: float, test: float, seed):
    labels_ = np.array(y, dtype=np.int64)
    try:
        split = stratified_split(labels_, val=val, test=test, seed=seed)
    except ValueError:
        assert not (0 <= val < 1 and 0 <= test < 1 and val + test < 1)
        return
    assert len(split) == len(y) and set(split) <= {"train", "val", "test"}
    assert np.array_equal(split, stratified_split(labels_, val=val, test=test, seed=seed))
    for c in set(y):
        assert (split[labels_ == c] == "train").sum() >= 1
    if test == 0:
        assert "test" not in set(split)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from("ab")), max_size=30))
def test_dedupe_keeps_one_copy_per_content(rows: list[tuple[int, str]]) -> None:
    groups = [str(g) for g, _ in rows]
    names = [lab for _, lab in rows]
    keep, dropped = dedupe(
        groups, names, [None] * len(rows), [f"row {i}" for i in range(len(rows))]
    )
    kept_groups = [groups[i] for i in keep]
    assert len(kept_groups) == len(set(kept_groups))
    assert len(keep) + len(dropped) == len(rows)
    for g in set(groups):  # a group is kept iff its copies agree on the label
        agree = len({names[i] for i in range(len(rows)) if groups[i] == g}) == 1
        assert (g in kept_groups) == agree


# -- the readers ---------------------------------------------------------------------------


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", ".hidden", "c"]), st.binary(max_size=64) | st.integers(0, 3)
        ),
        min_size=1,
        max_size=14,
    ),
    st.booleans(),
)
def test_random_bytes_as_images(files: list[tuple[str, Any]], strict: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (cls, content) in enumerate(files):
            (root / cls).mkdir(exist_ok=True)
            raw = _png(content) if isinstance(content, int) else content
            (root / cls / f"{i}.png").write_bytes(raw)
        try:
            data = headstart.read_data(root, strict=strict)
        except DataError:
            return
        _check(data)
        assert ".hidden" not in data.classes
        for item in data.items:
            headstart.data.load_image(item)


cells = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)


@FUZZ
@given(
    st.lists(
        st.tuples(cells, labels, st.sampled_from(["", "train", "val", "test", "x"])), max_size=25
    ),
    st.sampled_from([".csv", ".tsv"]),
    st.booleans(),
)
def test_random_csv_tables(rows: list[tuple[str, str, str]], suffix: str, with_split: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"t{suffix}"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t" if suffix == ".tsv" else ",")
            w.writerow(["text", "label", "split"] if with_split else ["text", "label"])
            w.writerows([r if with_split else r[:2] for r in rows])
        _read_or_data_error(path)


@FUZZ
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["text", "label", "split", "x"]), json_values), max_size=20
    )
)
def test_random_jsonl_tables(records: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        _read_or_data_error(path)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_random_bytes_as_tables(raw: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"t{suffix}"
        path.write_bytes(b"text,label\n" + raw if suffix == ".csv" else raw)
        _read_or_data_error(path)


# -- the bundle loader ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-bundle")
    path = root / "t.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([f"{lab} word {i}", lab] for lab in ("x", "y") for i in range(6))
    headstart.fit(path, root / "model", model="test_words.tiny", cache_dir=str(root / "cache"))
    return root / "model"


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in a JSON tree."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


small_values = (
    st.none()
    | st.booleans()
    | st.integers(-3, 40)
    | st.floats(allow_nan=True, allow_infinity=True, width=32)
    | st.text(max_size=8)
    | st.lists(st.integers(-2, 40) | st.text(max_size=3), max_size=3)
    | st.just({})
)


@FUZZ
@given(st.data())
def test_random_edits_of_headstart_json(bundle: Path, data: st.DataObject) -> None:
    config = json.loads((bundle / "headstart.json").read_text(encoding="utf-8"))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(config)
        path = data.draw(st.sampled_from(paths))
        parent = config
        for p in path[:-1]:
            parent = parent[p]
        action = data.draw(st.sampled_from(["delete", "replace", "append"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "append" and isinstance(parent[path[-1]], list):
            parent[path[-1]].append(data.draw(small_values))
        else:
            parent[path[-1]] = data.draw(small_values)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "b"
        shutil.copytree(bundle, copy)
        text = json.dumps(config, allow_nan=True)
        (copy / "headstart.json").write_text(text, encoding="utf-8")
        try:
            predictor = load_bundle(copy)
        except BundleError as exc:
            assert str(copy / "headstart.json") in str(exc) or "model.safetensors" in str(exc)
            assert "\n" not in str(exc)
            return
        proba = predictor.predict_proba(["x word 1", "y word 2"])
        assert proba.shape == (2, len(predictor.classes))
        assert all(math.isfinite(v) for v in proba.ravel())
