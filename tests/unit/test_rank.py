"""Model and layer ranking, ``fit(model="auto")`` and dataset shift, on the tiny backbones."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.select import (
    Candidate,
    auto_layers,
    class_mean_shift,
    domain_shift,
    proxy_a_distance,
    rank,
    recommend,
)
from headstart.select._common import balanced_subset
from headstart.zoo import _registry
from headstart.zoo._testing import TEST_CNN

CNN = "test_cnn.tiny"
ALL_BLOCKS = ["stem", "block1", "block2"]
WIDTH = {"stem": 8, "block1": 16, "block2": 32}


@pytest.fixture
def second_cnn(monkeypatch: pytest.MonkeyPatch) -> str:
    """A second tiny image backbone (other seeded weights), registered for this test only."""
    spec = dataclasses.replace(TEST_CNN, name="test_cnn.seed1", extra={"test": True, "seed": 1})
    monkeypatch.setitem(_registry._REGISTRY, spec.name, spec)
    return spec.name


@pytest.fixture
def tiny_zoo(monkeypatch: pytest.MonkeyPatch, second_cnn: str) -> list[str]:
    """Make ``models="all-offline"`` (and so ``fit(model="auto")``) mean the two tiny CNNs."""
    names = [CNN, second_cnn]
    monkeypatch.setattr("headstart.select._rank.offline_models", lambda modality: names)
    return names


def _train_size(data: Path) -> int:
    return int((headstart.read_data(data).split == "train").sum())


def _copy_halves(src: Path, dest: Path, invert_second: bool = False) -> tuple[Path, Path]:
    """Two folders holding the even and the odd images of each class of ``src``; with
    ``invert_second`` the odd ones are colour-inverted (a clearly different domain)."""
    halves = (dest / "even", dest / "odd")
    for cls in sorted(p for p in src.iterdir() if p.is_dir()):
        for i, img in enumerate(sorted(cls.glob("*.png"))):
            folder = halves[i % 2] / cls.name
            folder.mkdir(parents=True, exist_ok=True)
            if i % 2 and invert_second:
                ImageOps.invert(Image.open(img).convert("RGB")).save(folder / img.name)
            else:
                shutil.copy(img, folder / img.name)
    return halves


# ------------------------------------------------------------------------------- rank


def test_rank_rows_for_every_model_and_layer_sorted_by_score(
    tiny_images: Path, store: headstart.FeatureStore, second_cnn: str
) -> None:
    ranking = rank(tiny_images, models=[CNN, second_cnn], layers=ALL_BLOCKS, store=store)
    assert {(r.model, r.layer) for r in ranking.rows} == set(product([CNN, second_cnn], ALL_BLOCKS))
    scores = [r.score for r in ranking.rows]
    assert scores == sorted(scores, reverse=True)
    assert all(math.isfinite(s) for s in scores)
    assert all(r.feature_dim == WIDTH[r.layer] for r in ranking.rows)
    assert all(r.ms_per_input > 0 and r.score_se >= 0 for r in ranking.rows)
    params = {r.layer: r.params for r in ranking.rows if r.model == CNN}
    assert 0 < params["stem"] < params["block1"] < params["block2"]
    assert ranking.recommended in ranking.rows
    assert ranking.n_items == _train_size(tiny_images)

    d = json.loads(json.dumps(ranking.to_dict(), allow_nan=False))
    assert [r["rank"] for r in d["rows"]] == list(range(1, 7))
    assert sum(r["recommended"] for r in d["rows"]) == 1
    assert d["recommended"]["model"] in (CNN, second_cnn) and "standard error" in d["rule"]


def test_second_rank_costs_no_forward_pass(
    tiny_images: Path, store: headstart.FeatureStore
) -> None:
    first = rank(tiny_images, models=CNN, layers=ALL_BLOCKS, store=store)
    assert store.forward_passes == len(ALL_BLOCKS) * first.n_items
    again = rank(tiny_images, models=CNN, layers=ALL_BLOCKS, store=store)
    assert store.forward_passes == len(ALL_BLOCKS) * first.n_items
    assert [(r.layer, r.score) for r in again.rows] == [(r.layer, r.score) for r in first.rows]


def test_auto_layers_are_late_and_evenly_spaced(
    tiny_images: Path, store: headstart.FeatureStore
) -> None:
    lite = ("stem", *(f"blocks.{i}" for i in range(7)), "head")
    assert auto_layers(lite) == ["blocks.3", "blocks.5", "head"]
    assert auto_layers(ALL_BLOCKS) == ["block1", "block2"]
    assert auto_layers(["embeddings"]) == ["embeddings"]
    ranking = rank(tiny_images, models=CNN, store=store)
    assert sorted(r.layer for r in ranking.rows) == ["block1", "block2"]


def test_max_items_ranks_a_class_balanced_subsample(
    tiny_images: Path, store: headstart.FeatureStore
) -> None:
    ranking = rank(tiny_images, models=CNN, layers=["block2"], store=store, max_items=9)
    assert ranking.n_items == 9 and store.forward_passes == 9
    labels = np.repeat(["a", "b", "c"], [20, 5, 40])
    picked = balanced_subset(labels, 12, seed=3)
    assert sorted(np.unique(labels[picked], return_counts=True)[1]) == [4, 4, 4]
    assert len(balanced_subset(labels, 30)) == 30 and len(balanced_subset(labels, None)) == 65


def test_text_backbone_ranks_its_one_block(tiny_texts: Path, store: headstart.FeatureStore) -> None:
    ranking = rank(tiny_texts, models="test_words.tiny", store=store)
    assert [(r.model, r.layer, r.feature_dim) for r in ranking.rows] == [
        ("test_words.tiny", "embeddings", 16)
    ]


def test_source_scores_rank_whole_image_backbones_only(
    tiny_images: Path, tiny_texts: Path, store: headstart.FeatureStore
) -> None:
    ranking = rank(tiny_images, models=CNN, layers=["block1", "block2"], score="leep", store=store)
    assert [r.layer for r in ranking.rows] == ["block2"]
    assert ranking.rows[0].score <= 0  # LEEP is a mean log-likelihood
    assert any("block1" in n and "source classifier" in n for n in ranking.notes)
    assert [r.layer for r in rank(tiny_images, models=CNN, score="nce", store=store).rows] == [
        "block2"
    ]
    with pytest.raises(ValueError, match="nothing to rank"):
        rank(tiny_texts, models="test_words.tiny", score="leep", store=store)


def test_bad_requests_fail_clearly(
    tiny_images: Path, tiny_texts: Path, store: headstart.FeatureStore
) -> None:
    with pytest.raises(ValueError, match="unknown score"):
        rank(tiny_images, models=CNN, score="accuracy", store=store)
    with pytest.raises(ValueError, match="text model"):
        rank(tiny_images, models="test_words.tiny", store=store)
    with pytest.raises(ValueError, match="no such block"):
        rank(tiny_images, models=CNN, layers=["blocks.9"], store=store)


def _candidate(layer: str, score: float, se: float, ms: float) -> Candidate:
    return Candidate("m", layer, score, se, 8, 100, ms)


def test_recommend_takes_the_cheapest_within_one_standard_error() -> None:
    best = _candidate("best", 1.0, 0.10, 10.0)
    close_cheap = _candidate("close", 0.95, 0.10, 2.0)
    far_cheaper = _candidate("far", 0.70, 0.10, 1.0)
    assert recommend([best, close_cheap, far_cheaper]) is close_cheap
    assert recommend([best, far_cheaper]) is best
    # costs within 10% of the cheapest tie: the higher score wins among them
    near_cost = _candidate("near", 0.99, 0.10, 2.1)
    assert recommend([best, close_cheap, near_cost]) is near_cost
    # an unknown standard error means no tolerance: the best score
    unsure = _candidate("best", 1.0, math.nan, 10.0)
    assert recommend([unsure, close_cheap]) is unsure
    with pytest.raises(ValueError):
        recommend([])


# ------------------------------------------------------------------------ fit(auto)


def test_fit_auto_uses_and_records_the_recommendation(
    tiny_images: Path, store: headstart.FeatureStore, tiny_zoo: list[str], tmp_path: Path
) -> None:
    result = headstart.fit(tiny_images, tmp_path / "auto", model="auto", store=store)
    metrics = json.loads((tmp_path / "auto" / "metrics.json").read_text())
    ranking = metrics["ranking"]
    assert {(r["model"], r["layer"]) for r in ranking["rows"]} == set(
        product(tiny_zoo, ["block1", "block2"])
    )
    assert ranking["score"] == "knn_loo_accuracy"  # the default (bench/rank.py)
    best = ranking["recommended"]
    assert (metrics["model"], metrics["layer"]) == (best["model"], best["layer"])
    assert result.predictor.model.backbone.layer == best["layer"]
    # the recommended candidate's training features come from the ranking's cache
    n = metrics["samples"]
    assert metrics["forward_passes"] == 4 * n["train"] + n["val"] + n["test"]
    assert "rank" in metrics["seconds"]


def test_fit_auto_needs_a_named_model_for_a_weights_file(tiny_images: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="--weights"):
        headstart.fit(tiny_images, model="auto", weights=str(tmp_path / "w.safetensors"))


# ----------------------------------------------------------------------------- shift


def test_proxy_a_distance_separates_shifted_gaussians() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 10)), rng.normal(size=(150, 10))
    assert abs(proxy_a_distance(a, b)) < 0.5
    assert proxy_a_distance(a, b + 3.0) > 1.8
    with pytest.raises(ValueError, match="widths differ"):
        proxy_a_distance(a, b[:, :5])


def test_class_mean_shift_is_distance_over_spread() -> None:
    rng = np.random.default_rng(0)
    d = 4
    a, b = rng.normal(size=(4000, d)), rng.normal(size=(3000, d))
    assert class_mean_shift(a, b) < 0.05  # one distribution: about 0, not sqrt(1/n + 1/m)
    moved = b + np.array([2.0, 0, 0, 0])  # moved by 2, spread sqrt(tr I) = 2
    assert class_mean_shift(a, moved) == pytest.approx(1.0, abs=0.05)
    rotation = np.linalg.qr(rng.normal(size=(d, d)))[0]
    assert class_mean_shift(3 * a @ rotation + 1, 3 * moved @ rotation + 1) == pytest.approx(
        class_mean_shift(a, moved)
    )


def test_domain_shift_is_larger_for_a_different_domain(
    tiny_images: Path, store: headstart.FeatureStore, tmp_path: Path
) -> None:
    same = domain_shift(*_copy_halves(tiny_images, tmp_path / "same"), CNN, store)
    other = domain_shift(*_copy_halves(tiny_images, tmp_path / "other", True), CNN, store)
    assert other["proxy_a_distance"] > same["proxy_a_distance"] + 0.5
    assert other["proxy_a_distance"] > 1.5
    assert same["source"]["examples"] == same["target"]["examples"] == 18
    assert [r["class"] for r in other["per_class"]] and not other["only_in_source"]
    moved = {r["class"]: r["mean_shift"] for r in other["per_class"]}
    still = {r["class"]: r["mean_shift"] for r in same["per_class"]}
    assert all(moved[c] > still[c] for c in moved)
    assert json.loads(json.dumps(other, allow_nan=False)) == other


def test_domain_shift_leaves_out_shared_examples(
    tiny_images: Path, store: headstart.FeatureStore, tmp_path: Path
) -> None:
    even, _ = _copy_halves(tiny_images, tmp_path / "halves")
    report = domain_shift(even, tiny_images, CNN, store)
    assert report["shared_examples"] == 18 and report["target"]["examples"] == 18
    with pytest.raises(ValueError, match="nothing to compare"):
        domain_shift(tiny_images, even, CNN, store)


# ------------------------------------------------------------------------------- CLI

runner = CliRunner()


def test_cli_rank_json_and_table(tiny_images: Path) -> None:
    args = ["rank", str(tiny_images), "--models", CNN, "--layers", "stem,block2"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    assert sorted(r["layer"] for r in d["rows"]) == ["block2", "stem"]
    assert d["recommended"]["layer"] in ("stem", "block2")
    result = runner.invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output
    assert CNN in result.output and "pick" in result.output and "--layer" in result.output


def test_cli_shift_json(tiny_images: Path, tmp_path: Path) -> None:
    even, odd = _copy_halves(tiny_images, tmp_path / "halves", invert_second=True)
    result = runner.invoke(app, ["shift", str(even), str(odd), "--model", CNN, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["proxy_a_distance"] > 1.5 and len(report["per_class"]) == 3
    result = runner.invoke(app, ["shift", str(even), str(odd), "--model", CNN, "-q"])
    assert result.exit_code == 0 and "proxy A-distance" in result.output


def test_cli_fit_model_auto(tiny_images: Path, tiny_zoo: list[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "auto"
    result = runner.invoke(app, ["fit", str(tiny_images), "--out", str(out_dir), "--model", "auto"])
    assert result.exit_code == 0, result.output
    assert "auto: ranked 4 candidates" in result.output
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["model"] == metrics["ranking"]["recommended"]["model"] in tiny_zoo
