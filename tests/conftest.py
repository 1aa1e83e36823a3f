"""Shared fixtures: tiny synthetic datasets, a feature store, and an isolated cache."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import headstart

IMAGE_CLASSES = ("circle", "square", "stripes")
TEXT_VOCAB = {
    "sport": ["goal", "match", "team", "score", "player", "league", "coach", "referee"],
    "food": ["recipe", "bake", "sauce", "flavour", "oven", "garlic", "butter", "dessert"],
    "tech": ["software", "laptop", "code", "server", "chip", "network", "robot", "battery"],
}


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write to ~/.cache or the user's zoo, and never reach a hub."""
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path_factory.mktemp("headstart-cache")))
    monkeypatch.setenv("HEADSTART_ZOO", str(tmp_path_factory.mktemp("headstart-zoo")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def seed() -> int:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    return 0


def _shape_image(kind: str, rng: np.random.Generator, size: int = 40) -> Image.Image:
    """A noisy background with one class-specific shape in a class-specific colour."""
    noise = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    img = Image.fromarray(noise + 180)
    draw = ImageDraw.Draw(img)
    jitter = [int(v) for v in rng.integers(-4, 5, 4)]
    box = [8 + jitter[0], 8 + jitter[1], 31 + jitter[2], 31 + jitter[3]]
    if kind == "circle":
        draw.ellipse(box, fill=(200 + int(rng.integers(0, 50)), 20, 20))
    elif kind == "square":
        draw.rectangle(box, fill=(20, 170 + int(rng.integers(0, 60)), 30))
    else:
        offset = int(rng.integers(0, 6))
        for x in range(offset, size, 6):
            draw.line([(x, 0), (x, size)], fill=(30, 30, 200 + int(rng.integers(0, 50))), width=3)
    return img


@pytest.fixture
def tiny_images(tmp_path: Path) -> Path:
    """``images/<class>/<n>.png``: 3 classes x 12 distinct 40x40 images."""
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for kind in IMAGE_CLASSES:
        (root / kind).mkdir(parents=True)
        for i in range(12):
            _shape_image(kind, rng).save(root / kind / f"{kind}_{i:02d}.png")
    return root


@pytest.fixture
def tiny_texts(tmp_path: Path) -> Path:
    """``texts.csv`` (text,label): 3 classes x 15 rows with disjoint vocabularies."""
    path = tmp_path / "texts.csv"
    rng = random.Random(0)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(15):
            for label, words in TEXT_VOCAB.items():
                w.writerow([f"{' '.join(rng.choices(words, k=6))} {i}", label])
    return path


@pytest.fixture
def store(tmp_path: Path) -> headstart.FeatureStore:
    return headstart.FeatureStore(tmp_path / "cache")
