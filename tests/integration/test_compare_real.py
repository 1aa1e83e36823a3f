"""``headstart.compare`` on real data with the packaged models: the transfer gain is real,
measured against the classical baselines, and extraction is paid for once.

Fashion-MNIST: 20 training images per class (3 of them validation, re-drawn per seed),
30 test images per class, Lite0 at 96 px. Rotten Tomatoes: 300 training and 300 test
snippets, MiniLM sentence features against TF-IDF word + character n-grams.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import headstart

from ._support import require_offline_weights

pytestmark = pytest.mark.slow


def _check_consistent(rep: dict) -> None:
    """The verdict follows from the numbers it quotes."""
    for g in rep["gains"]:
        assert g["verdict"] == ("positive" if g["gain"]["lo"] > 0 else "negative")
    at_all = [g for g in rep["gains"] if g["shots"] == rep["shots"][-1]]
    assert rep["verdict"]["status"] == max(at_all, key=lambda g: g["gain"]["mean"])["verdict"]


def test_lite0_features_beat_raw_pixels_at_every_shot_count(
    fashion_folder: Path,
    tmp_path: Path,
    report_metric: Callable[[str, float], None],
):
    require_offline_weights("efficientnet_lite0.in1k")
    store = headstart.FeatureStore(tmp_path / "cache")
    result = headstart.compare(
        fashion_folder,
        tmp_path / "cmp",
        model="efficientnet_lite0.in1k",
        strategies="pixels,extract",
        seeds=3,
        shots="5,all",
        image_size=96,
        store=store,
    )
    rep = result.report
    _check_consistent(rep)
    assert store.forward_passes == 10 * (20 + 30)  # one pass per image for 3 seeds x 2 shots
    for shots in (5, "all"):
        ext, pix = result.summary("extract", shots), result.summary("pixels", shots)
        report_metric(f"fashion extract {shots}-shot", ext["accuracy"]["mean"])
        report_metric(f"fashion pixels {shots}-shot", pix["accuracy"]["mean"])
        assert ext["accuracy"]["mean"] > pix["accuracy"]["mean"] + 0.05
    assert result.summary("extract", 5)["n_train"] == 50
    assert result.verdict["status"] == "positive" and not result.negative
    assert result.verdict["versus"] == "pixels"
    assert (tmp_path / "cmp" / "report.html").is_file()
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert saved["verdict"] == json.loads(json.dumps(result.verdict))


def test_minilm_against_tfidf_on_rotten_tomatoes(
    rt_csv: Path, tmp_path: Path, report_metric: Callable[[str, float], None]
):
    require_offline_weights("minilm_l6.sbert_all_v2")
    result = headstart.compare(
        rt_csv,
        tmp_path / "cmp",
        model="minilm_l6.sbert_all_v2",
        strategies="baseline,extract",
        seeds=3,
        store=headstart.FeatureStore(tmp_path / "cache"),
    )
    rep = result.report
    _check_consistent(rep)
    ext, tfidf = result.summary("extract"), result.summary("tfidf")
    report_metric("rotten tomatoes minilm extract", ext["accuracy"]["mean"])
    report_metric("rotten tomatoes tfidf", tfidf["accuracy"]["mean"])
    assert tfidf["accuracy"]["mean"] > 0.55  # a real baseline, well above chance
    assert ext["accuracy"]["mean"] > 0.65
    (gain,) = rep["gains"]
    assert gain["versus"] == "tfidf"
    assert gain["gain"]["mean"] == pytest.approx(
        ext["accuracy"]["mean"] - tfidf["accuracy"]["mean"], abs=1e-9
    )
