"""Few-shot and zero-shot on the packaged models and small real data, offline.

Rotten Tomatoes (fresh / rotten, chance 0.50) with MiniLM; Fashion-MNIST (10 classes,
chance 0.10) with EfficientNet-Lite0 at 112 px.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

import headstart
from headstart.compare._compare import take_shots
from headstart.data import read_data

pytestmark = pytest.mark.slow

MINILM = "minilm_l6.sbert_all_v2"


def test_zeroshot_minilm_beats_chance_on_sentiment(rt_csv: Path, tmp_path: Path, report_metric):
    labels = {"fresh": "a good movie", "rotten": "a bad movie"}
    r = headstart.zeroshot(rt_csv, labels, out=tmp_path / "zs")
    report_metric("rt zero-shot accuracy (MiniLM, 600 snippets)", r.metrics["accuracy"])
    assert r.metrics["n"] == 600 and r.metrics["accuracy"] > 0.6
    assert abs(np.log(r.metrics["fitted_temperature"] / r.temperature)) < np.log(3)
    p = headstart.load(tmp_path / "zs")
    assert p.predict(["A wonderful, moving film.", "Dull, lifeless and far too long."]) == [
        "fresh",
        "rotten",
    ]


def test_label_prior_and_setfit_on_eight_snippets_per_class(rt_csv: Path, report_metric):
    # eight labelled snippets per class in all: the validation split joins the pool first
    full = read_data(rt_csv)
    full = dataclasses.replace(full, split=np.where(full.split == "val", "train", full.split))
    data = take_shots(full, 8, seed=1)
    assert (data.split == "train").sum() == 16 and not (data.split == "val").any()
    proto = headstart.fit(data, model=MINILM, strategy="prototype")
    prior = headstart.fit(data, model=MINILM, strategy="zeroshot_prior")
    setfit = headstart.fit(data, model=MINILM, strategy="setfit")
    for name, r in (("prototype", proto), ("zeroshot_prior", prior), ("setfit", setfit)):
        report_metric(f"rt 8-shot {name}", r.test_accuracy)
    assert setfit.test_accuracy > 0.58 and prior.test_accuracy > 0.5
    # pairs come from every labelled non-test example (train + validation): every distinct
    # pair, the fewer kind (same-class or other-class) drawn again to match the other
    used = np.isin(setfit.data.split, ["train", "val"])
    counts = np.bincount(setfit.data.labels[used])
    same = int(sum(c * (c - 1) // 2 for c in counts))
    other = int(counts.sum() * (counts.sum() - 1) // 2) - same
    assert setfit.history[0]["stage"] == "contrastive"
    assert setfit.history[0]["pairs"] == 2 * max(same, other)


def test_prototype_and_add_class_on_fashion(fashion_folder: Path, tmp_path: Path, report_metric):
    r = headstart.fit(
        fashion_folder, out=tmp_path / "all", strategy="prototype", image_size=112, val=0.0
    )
    report_metric("fashion 20-shot prototype", r.test_accuracy)
    assert r.test_accuracy > 0.6
    nine = tmp_path / "nine"  # the same data without bags; bags come back from 5 images
    for split in ("train", "test"):
        for c in (fashion_folder / split).iterdir():
            if c.name != "bag":
                shutil.copytree(c, nine / split / c.name)
    headstart.fit(nine, out=tmp_path / "nine-model", strategy="prototype", image_size=112, val=0.0)
    bags = sorted((fashion_folder / "train" / "bag").glob("*.png"))
    out = headstart.add_class(tmp_path / "nine-model", "bag", [str(b) for b in bags[:5]])
    test_bags = sorted((fashion_folder / "test" / "bag").glob("*.png"))
    recall = headstart.load(out).predict([str(b) for b in test_bags]).count("bag") / len(test_bags)
    report_metric("fashion bag recall after add-class from 5 images", recall)
    assert recall > 0.6
    rep = headstart.fewshot_eval(fashion_folder, ways=5, shots="1,5", episodes=100, image_size=112)
    one, five = (row["accuracy"]["mean"] for row in rep["rows"])
    report_metric("fashion 5-way 1-shot episodes", one)
    assert 0.3 < one < five
