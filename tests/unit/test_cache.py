"""The content-addressed feature store."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import headstart
from headstart.cache import FeatureStore, default_cache_dir, fingerprint
from headstart.cache import _store as store_module


@pytest.fixture
def cnn() -> headstart.zoo.Backbone:
    return headstart.create_backbone("test_cnn.tiny")


def _entry_files(store: FeatureStore) -> list[Path]:
    return sorted(p for p in store.root.rglob("*") if p.is_file())


def test_default_cache_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    assert FeatureStore().root == tmp_path / "here"


def test_second_call_is_served_from_the_cache(tiny_images: Path, store: FeatureStore, cnn) -> None:
    data = headstart.read_data(tiny_images)
    first = store.features(cnn, data.items, data.keys, "image")
    assert first.shape == (36, 32) and first.dtype == np.float32
    assert store.forward_passes == 36
    second = store.features(cnn, data.items, data.keys, "image")
    assert store.forward_passes == 36
    np.testing.assert_array_equal(first, second)
    # a new store on the same folder (another process) also reuses it
    again = FeatureStore(store.root)
    np.testing.assert_array_equal(again.features(cnn, data.items, data.keys, "image"), first)
    assert again.forward_passes == 0


def test_cached_features_equal_a_direct_forward_pass(tiny_images: Path, store, cnn) -> None:
    data = headstart.read_data(tiny_images)
    items, keys = data.items[:5], data.keys[:5]
    feats = store.features(cnn, items, keys, "image")
    batch = cnn.collate([headstart.data.load_image(p) for p in items])
    cnn.eval()
    with torch.no_grad():
        direct = cnn(batch).numpy()
    np.testing.assert_allclose(feats, direct, rtol=1e-5, atol=1e-6)


def test_only_missing_items_are_extracted(tiny_images: Path, store, cnn) -> None:
    data = headstart.read_data(tiny_images)
    store.features(cnn, data.items[:10], data.keys[:10], "image")
    assert store.forward_passes == 10
    store.features(cnn, data.items, data.keys, "image")
    assert store.forward_passes == 36
    # duplicates within one call are extracted once
    store2 = FeatureStore(store.root / "other")
    out = store2.features(cnn, [data.items[0]] * 3, [data.keys[0]] * 3, "image")
    assert store2.forward_passes == 1
    assert out.shape == (3, 32)
    assert store2.features(cnn, [], [], "image").shape == (0, 32)


def test_same_bytes_under_another_path_reuse_the_cache(
    tiny_images: Path, tmp_path: Path, store, cnn
) -> None:
    data = headstart.read_data(tiny_images)
    original = store.features(cnn, data.items, data.keys, "image")
    copies = tmp_path / "copies"
    picked = {}
    for cls in ("x", "y"):
        (copies / cls).mkdir(parents=True)
    for n, i in enumerate([0, 5, 13, 30]):
        dest = copies / ("x" if n < 2 else "y") / f"renamed_{n}.png"
        shutil.copy(data.items[i], dest)
        picked[str(dest.resolve())] = i
    moved = headstart.read_data(copies, val=0.0, test=0.0)  # 2 per class: no held-out splits
    feats = store.features(cnn, moved.items, moved.keys, "image")
    assert store.forward_passes == 36
    for row, item in zip(feats, moved.items, strict=True):
        np.testing.assert_array_equal(row, original[picked[item]])


def test_fingerprint_tracks_layer_and_weights(cnn) -> None:
    fp, desc = fingerprint(cnn)
    assert fingerprint(headstart.create_backbone("test_cnn.tiny"))[0] == fp  # stable
    assert desc["model"] == "test_cnn.tiny" and desc["layer"] == "block2"
    cut = headstart.create_backbone("test_cnn.tiny", layer="block1")
    assert fingerprint(cut)[0] != fp
    changed = headstart.create_backbone("test_cnn.tiny")
    with torch.no_grad():
        changed.stages[0][0].weight[0, 0, 0, 0] += 1e-3
    assert fingerprint(changed)[0] != fp
    bn = headstart.create_backbone("test_cnn.tiny")
    bn.stages[1][1].running_mean += 0.5  # buffers count too
    assert fingerprint(bn)[0] != fp


def test_different_fingerprints_use_different_entries(tiny_images: Path, store, cnn) -> None:
    data = headstart.read_data(tiny_images)
    store.features(cnn, data.items, data.keys, "image")
    cut = headstart.create_backbone("test_cnn.tiny", layer="block1")
    feats = store.features(cut, data.items, data.keys, "image")
    assert feats.shape == (36, 16)
    assert store.forward_passes == 72
    assert store.entry_dir(cnn) != store.entry_dir(cut)
    assert store.entry_dir(cnn).is_dir() and store.entry_dir(cut).is_dir()


def test_shards_on_disk_are_whole_npz_files(tiny_images: Path, tmp_path: Path, cnn) -> None:
    store = FeatureStore(tmp_path / "sharded", shard_size=10)
    data = headstart.read_data(tiny_images)
    feats = store.features(cnn, data.items, data.keys, "image")
    entry = store.entry_dir(cnn)
    files = _entry_files(store)
    assert all(p.parent == entry for p in files)
    assert not [p for p in files if p.name.startswith(".")]  # no temporary files left
    shards = sorted(entry.glob("shard-*.npz"))
    assert len(shards) == 4
    assert {p.name for p in files} == {"meta.json"} | {p.name for p in shards}
    keys: list[str] = []
    for shard in shards:
        with np.load(shard, allow_pickle=False) as z:
            assert set(z.files) == {"keys", "features"}
            assert z["features"].dtype == np.float32
            assert len(z["keys"]) == len(z["features"]) <= 10
            keys += z["keys"].tolist()
            for k, row in zip(z["keys"].tolist(), z["features"], strict=True):
                np.testing.assert_array_equal(row, feats[data.keys.index(k)])
    assert sorted(keys) == sorted(data.keys)


def test_crash_mid_write_leaves_no_shard_and_no_temp_file(
    tiny_images: Path, store, cnn, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = headstart.read_data(tiny_images)

    def crash(path, **arrays):
        Path(path).write_bytes(b"half a shard")  # partial bytes, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(store_module.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        store.features(cnn, data.items, data.keys, "image")
    leftovers = [p for p in _entry_files(store) if p.name != "meta.json"]
    assert leftovers == []
    monkeypatch.undo()
    # the next run recomputes and completes
    again = FeatureStore(store.root)
    feats = again.features(cnn, data.items, data.keys, "image")
    assert again.forward_passes == 36
    assert feats.shape == (36, 32)
    assert len(list(store.entry_dir(cnn).glob("shard-*.npz"))) == 1


def test_damaged_shard_is_ignored_and_recomputed(tiny_images: Path, store, cnn) -> None:
    data = headstart.read_data(tiny_images)
    first = store.features(cnn, data.items, data.keys, "image")
    (shard,) = store.entry_dir(cnn).glob("shard-*.npz")
    shard.write_bytes(b"garbage")
    fresh = FeatureStore(store.root)
    np.testing.assert_allclose(
        fresh.features(cnn, data.items, data.keys, "image"), first, atol=1e-6
    )
    assert fresh.forward_passes == 36


def test_text_features_are_cached_by_text(tiny_texts: Path, store) -> None:
    words = headstart.create_backbone("test_words.tiny")
    data = headstart.read_data(tiny_texts)
    a = store.features(words, data.items, data.keys, "text")
    assert a.shape == (45, 16)
    b = store.features(words, data.items[::-1], data.keys[::-1], "text")
    assert store.forward_passes == 45
    np.testing.assert_array_equal(a[::-1], b)
