"""SetFit-style contrastive fine-tuning: the pairs, the loss on the one loop, the method."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import headstart
from headstart.fewshot._contrastive import (
    CosineSimilarityLoss,
    PairStream,
    fit_contrastive_inplace,
    sentence_pairs,
)
from headstart.zoo import create_backbone


def test_default_pairs_are_every_distinct_pair_balanced():
    y = np.repeat([0, 1], 4)  # 12 same-class and 16 other-class distinct pairs
    a, b, t = sentence_pairs(y)
    assert len(a) == 32 and t.sum() == 16
    assert ((y[a] == y[b]) == (t == 1)).all() and (a != b).all()
    neg = {(int(i), int(j)) for i, j, s in zip(a, b, t, strict=True) if s == 0}
    assert len(neg) == 16  # every negative once; the positives were drawn again to balance
    pos = {(int(i), int(j)) for i, j, s in zip(a, b, t, strict=True) if s == 1}
    assert len(pos) == 12


def test_rounds_give_each_text_one_partner_of_each_kind():
    y = np.array([0, 0, 1, 1, 2, 2])
    a, b, t = sentence_pairs(y, iterations=3, seed=1)
    assert len(a) == 2 * 3 * 6
    assert np.bincount(a).tolist() == [6] * 6
    assert ((y[a] == y[b]) == (t == 1)).all()


def test_pair_stream_encodes_each_text_once_per_batch():
    backbone = create_backbone("test_words.tiny")
    texts = ["goal match", "team score", "oven bake", "sauce garlic"]
    a, b, t = sentence_pairs(np.array([0, 0, 1, 1]))
    stream = PairStream(backbone, texts, a, b, t, batch_size=4)
    batches = list(stream.batches(np.random.default_rng(0)))
    assert sum(len(x.index) for x in batches) == len(a) and len(stream) == len(batches)
    first = batches[0]
    n_distinct = len(np.unique(np.concatenate([a[first.index], b[first.index]])))
    assert int(first.inputs["texts"]["offsets"].shape[0]) == n_distinct
    model = headstart.surgery.TransferModel(backbone, torch.nn.Identity())
    out = CosineSimilarityLoss()(model, {"pairs": first})
    emb = backbone(backbone.collate([texts[i] for i in a[first.index]]))
    emb_b = backbone(backbone.collate([texts[i] for i in b[first.index]]))
    cos = torch.nn.functional.cosine_similarity(emb, emb_b)
    want = torch.nn.functional.mse_loss(cos, first.target)
    torch.testing.assert_close(out.losses["cosine"], want)


def test_contrastive_tuning_pulls_classes_apart(seed):
    backbone = create_backbone("test_words.tiny")
    texts = [
        "goal match team",
        "team score goal",
        "match player",
        "oven bake sauce",
        "garlic sauce oven",
        "bake recipe",
    ]
    y = np.array([0, 0, 0, 1, 1, 1])

    def loss() -> float:
        with torch.no_grad():
            e = torch.nn.functional.normalize(backbone(backbone.collate(texts)), dim=1)
        cos = e @ e.T
        target = torch.from_numpy((y[:, None] == y[None]).astype(np.float32))
        return float(((cos - target) ** 2).mean())

    before = loss()
    stage, history = fit_contrastive_inplace(backbone, texts, y, epochs=30, lr=0.05, seed=0)
    assert loss() < 0.5 * before
    assert stage.trainable == ("embeddings",) and len(history) == 30
    assert history[-1]["train_cosine"] < history[0]["train_cosine"]
    assert not any(p.requires_grad for p in backbone.parameters())


def test_setfit_method_fits_bundles_and_predicts(tiny_texts: Path, tmp_path: Path):
    out = tmp_path / "setfit"
    r = headstart.fit(
        tiny_texts, out=out, model="test_words.tiny", strategy="setfit", pair_lr=0.01, val=0.0
    )
    stages = [row["stage"] for row in r.history]
    assert stages[0] == "contrastive" and "head" in stages
    assert r.test_accuracy >= 0.8
    assert r.metrics["schedule"]["stages"][0]["name"] == "contrastive"
    p = headstart.load(out)
    assert p.predict(["recipe bake sauce oven"]) == ["food"]
    tuned = p.model.backbone.embeddings.weight
    fresh = create_backbone("test_words.tiny").embeddings.weight
    assert not torch.equal(tuned, fresh)  # the encoder itself was tuned, and saved
    methods = json.loads((out / "metrics.json").read_text())["method"]
    assert methods["name"] == "setfit" and methods["config"]["pair_iterations"] == 0
