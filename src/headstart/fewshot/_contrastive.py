"""Contrastive fine-tuning of a sentence encoder from a few labelled texts (the SetFit
recipe, Tunstall et al., 2022), on the one training loop.

From the labelled texts, pairs of the same class (target ``1``) and of different classes
(target ``0``) are drawn (:func:`sentence_pairs`: every distinct pair, balanced, as
SetFit does by default; or a number of rounds per text). The encoder ``f`` is trained
on them with the cosine-similarity loss

    ``L = mean_(a, b, t) (cos(f(a), f(b)) - t)^2``

through :func:`headstart.train.fit_stage` (a :class:`PairStream` and the
:class:`CosineSimilarityLoss` objective; every block trains), after which a logistic
head is fitted on the tuned embeddings of every labelled text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.surgery._model import TransferModel
from headstart.train._callbacks import History, ProgressBar
from headstart.train._engine import Batch, StepOutput, fit_stage
from headstart.train._schedule import Stage
from headstart.zoo._backbone import Backbone


def sentence_pairs(
    labels: np.ndarray, iterations: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, target)``: indices of each pair's two texts and ``1.0`` (same class) or
    ``0.0`` (different classes).

    ``iterations=0`` (SetFit's default, "oversampling"): every distinct pair of texts, the
    smaller of the positive and negative sets drawn again at random until both are the
    size of the larger. ``iterations=R``: ``R`` rounds, each giving every text one partner
    of its class (another text where there is one) and one of another class."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("contrastive pairs need examples of two or more classes")
    if iterations == 0:
        i, j = np.triu_indices(len(labels), k=1)
        pos = np.flatnonzero(labels[i] == labels[j])
        neg = np.flatnonzero(labels[i] != labels[j])
        if len(pos) == 0:  # one example per class: pair each text with itself
            i, j = (
                np.concatenate([i, np.arange(len(labels))]),
                np.concatenate([j, np.arange(len(labels))]),
            )
            pos = np.arange(len(i) - len(labels), len(i))
        m = max(len(pos), len(neg))
        grow = [np.concatenate([p, rng.choice(p, m - len(p))]) for p in (pos, neg)]
        pick = np.concatenate(grow)
        target = np.repeat(np.array([1.0, 0.0], dtype=np.float32), m)
        return i[pick], j[pick], target
    same = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    other = {c: np.flatnonzero(labels != c) for c in same}
    a, b, t = [], [], []
    for _ in range(iterations):
        for k in range(len(labels)):
            c = labels[k]
            mates = same[c][same[c] != k] if len(same[c]) > 1 else same[c]
            a += [k, k]
            b += [int(rng.choice(mates)), int(rng.choice(other[c]))]
            t += [1.0, 0.0]
    return np.array(a), np.array(b), np.array(t, dtype=np.float32)


@dataclass
class PairStream:
    """Batches of text pairs for :func:`fit_stage`: ``inputs = {"texts": ..., "a": ...,
    "b": ...}``, the batch's distinct texts collated once by ``backbone`` and, per pair,
    the positions of its two texts among them; ``target`` the pair's similarity target.
    With few examples most texts recur within a batch, so each is encoded once per step
    (about half the encoder passes of encoding both sides of every pair)."""

    backbone: Backbone
    texts: Sequence[str]
    a: np.ndarray
    b: np.ndarray
    target: np.ndarray
    batch_size: int = 16

    def __len__(self) -> int:
        return (len(self.a) + self.batch_size - 1) // self.batch_size

    def batches(self, rng: np.random.Generator) -> Iterator[Batch]:
        order = rng.permutation(len(self.a))
        for lo in range(0, len(order), self.batch_size):
            idx = order[lo : lo + self.batch_size]
            distinct, where = np.unique(
                np.concatenate([self.a[idx], self.b[idx]]), return_inverse=True
            )
            inputs = {
                "texts": self.backbone.collate([self.texts[j] for j in distinct]),
                "a": torch.from_numpy(where[: len(idx)]),
                "b": torch.from_numpy(where[len(idx) :]),
            }
            yield Batch(idx, inputs, torch.from_numpy(self.target[idx]))


@dataclass
class CosineSimilarityLoss:
    """``{"cosine": mean (cos(f(a), f(b)) - t)^2}`` on the pair stream ``stream``."""

    stream: str = "pairs"

    def __call__(self, model: nn.Module, batches: Mapping[str, Batch]) -> StepOutput:
        batch = batches[self.stream]
        assert batch.target is not None
        emb = model.forward_features(batch.inputs["texts"])
        u, v = emb[batch.inputs["a"]], emb[batch.inputs["b"]]
        cos = nn.functional.cosine_similarity(u, v, dim=1)
        return StepOutput({"cosine": nn.functional.mse_loss(cos, batch.target)})


def contrastive_stage(backbone: Backbone, lr: float, epochs: int) -> Stage:
    """Every block of ``backbone`` trains at ``lr`` for ``epochs`` (no early stopping:
    there is no validation split to stop on)."""
    return Stage(
        "contrastive",
        tuple(backbone.block_names),
        lr,
        (),
        epochs,
        epochs,
        weight_decay=0.01,
        augment=False,
    )


def fit_contrastive_inplace(
    backbone: Backbone,
    texts: Sequence[str],
    labels: np.ndarray,
    iterations: int = 0,
    epochs: int = 1,
    lr: float = 2e-5,
    batch_size: int = 16,
    seed: int = 0,
) -> tuple[Stage, list[dict[str, Any]]]:
    """Fine-tune ``backbone`` (in place) on sentence pairs from ``texts`` (see the
    module); returns the stage and the per-epoch history (loss term ``cosine``)."""
    a, b, t = sentence_pairs(labels, iterations, seed)
    stage = contrastive_stage(backbone, lr, epochs)
    model = TransferModel(backbone, nn.Identity(), freeze_bn=True)
    history = History()
    fit_stage(
        model,
        stage,
        {"pairs": PairStream(backbone, texts, a, b, t, batch_size)},
        CosineSimilarityLoss(),
        [history, ProgressBar(f"contrastive ({len(a)} pairs)", lines=False)],
        validate=None,
        seed=seed,
        evaluate_start=False,
    )
    backbone.eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    return stage, [{**row, "pairs": len(a)} for row in history.rows]


__all__ = [
    "CosineSimilarityLoss",
    "PairStream",
    "contrastive_stage",
    "fit_contrastive_inplace",
    "sentence_pairs",
]
