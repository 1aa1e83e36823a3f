"""Ranking and dataset shift with the packaged ImageNet models on small real data.

Fashion-MNIST: 15 training and 5 test images per class; scikit-learn's digits (8 x 8,
upscaled to 28 px like Fashion-MNIST) as a clearly different domain. 96 px inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import headstart
from headstart.datasets import DatasetUnavailableError, fashion_mnist_folder
from headstart.select import domain_shift, rank

from ._support import require_offline_weights

pytestmark = pytest.mark.slow

LITE0 = "efficientnet_lite0.in1k"
MOBILENET = "mobilenetv2_100.tv_in1k"
SIZE = 96


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a small machine already busy, a second thread mostly spins
    (ranking here measured ~15x slower with two threads on two loaded cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fashion(tmp_path_factory: pytest.TempPathFactory, seed: int) -> Path:
    try:
        return fashion_mnist_folder(
            tmp_path_factory.mktemp(f"fashion{seed}"),
            train_per_class=15,
            test_per_class=5,
            seed=seed,
        )
    except DatasetUnavailableError as exc:
        pytest.skip(f"optional dataset absent: {exc}")


@pytest.fixture(scope="module")
def fashion(offline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fashion(tmp_path_factory, seed=0)


@pytest.fixture(scope="module")
def fashion_again(offline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another seeded Fashion-MNIST sample (shared images are left out by the shift)."""
    return _fashion(tmp_path_factory, seed=1)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's digits as ``<digit>/<n>.png``: 20 per class, 8 px upscaled to 28 px."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("digits")
    bunch = load_digits()
    for digit in range(10):
        (root / str(digit)).mkdir()
        for i in np.flatnonzero(bunch.target == digit)[:20]:
            pixels = (bunch.images[i] * (255 / 16)).round().astype(np.uint8)
            img = Image.fromarray(pixels).resize((28, 28), Image.Resampling.BILINEAR)
            img.save(root / str(digit) / f"{i:04d}.png")
    return root


def test_rank_lite0_against_mobilenetv2(fashion: Path, report_metric) -> None:
    require_offline_weights(MOBILENET)
    store = headstart.FeatureStore()
    ranking = rank(fashion, models=[LITE0, MOBILENET], store=store, image_size=SIZE)
    assert {(r.model, r.layer) for r in ranking.rows} == {
        (m, layer) for m in (LITE0, MOBILENET) for layer in ("blocks.3", "blocks.5", "head")
    }
    assert all(math.isfinite(r.score) and math.isfinite(r.score_se) for r in ranking.rows)
    assert all(r.ms_per_input > 0 and r.params > 0 for r in ranking.rows)
    assert ranking.recommended in ranking.rows
    for r in ranking.rows:
        report_metric(f"logme {r.model} @ {r.layer}", r.score)

    passes = store.forward_passes
    again = rank(fashion, models=[LITE0, MOBILENET], store=store, image_size=SIZE)
    assert store.forward_passes == passes  # every feature from the cache
    assert [r.score for r in again.rows] == [r.score for r in ranking.rows]


def test_digits_lie_further_from_fashion_than_fashion_does(
    fashion: Path, fashion_again: Path, digits: Path, report_metric
) -> None:
    store = headstart.FeatureStore()
    near = domain_shift(fashion, fashion_again, LITE0, store, image_size=SIZE)
    far = domain_shift(fashion, digits, LITE0, store, image_size=SIZE)
    report_metric("proxy A-distance fashion vs fashion", near["proxy_a_distance"])
    report_metric("proxy A-distance fashion vs digits", far["proxy_a_distance"])
    assert far["proxy_a_distance"] > near["proxy_a_distance"] + 0.5
    assert len(near["per_class"]) == 10 and not far["per_class"]  # no class names shared
    assert len(far["only_in_target"]) == 10
