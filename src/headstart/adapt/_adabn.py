"""AdaBN (Li et al., 2016): the backbone's BatchNorm statistics recomputed on target data.

Every BatchNorm layer's running mean and variance are replaced by the cumulative average
of the target batches' statistics (``momentum=None``), in one forward pass without
gradients; no weight changes. The input backbone is left untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from headstart._progress import track
from headstart.data._loader import iter_batches
from headstart.zoo._backbone import Backbone


def batchnorm_layers(backbone: Backbone) -> list[_BatchNorm]:
    """The BatchNorm layers of ``backbone`` (none in a transformer or word-vector model)."""
    return [m for m in backbone.modules() if isinstance(m, _BatchNorm)]


def adabn_backbone(
    backbone: Backbone,
    items: Sequence[str],
    modality: str,
    batch_size: int = 64,
    seed: int = 0,
    max_items: int | None = 1000,
) -> Backbone:
    """A copy of ``backbone`` whose BatchNorm running statistics are those of ``items``.

    For each BatchNorm layer with per-batch means ``m_b`` and (unbiased) variances ``v_b``
    over the ``B`` target batches the new statistics are the cumulative averages
    ``mu = (1/B) sum_b m_b`` and ``sigma^2 = (1/B) sum_b v_b`` (PyTorch's ``momentum=None``).
    The items go through in a seeded random order (batches of one class, from a folder
    read in order, would understate the variance), at most ``max_items`` of them: the
    statistics of a few thousand images are as good as all, and a training-mode pass is
    slow.
    Raises ``ValueError`` when the backbone has no BatchNorm layer or ``items`` is empty.
    """
    if not items:
        raise ValueError("AdaBN needs target items")
    new = copy.deepcopy(backbone)
    layers = batchnorm_layers(new)
    if not layers:
        raise ValueError(f"{backbone.spec.name} has no BatchNorm layer: AdaBN does not apply")
    new.eval()
    saved = []
    for m in layers:
        saved.append(m.momentum)
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the target batches
        m.train()
    order = np.random.default_rng(seed).permutation(len(items))[:max_items].tolist()
    steps = (len(order) + batch_size - 1) // batch_size
    batches = iter_batches(new, list(items), modality, batch_size=batch_size, order=order)
    with torch.no_grad():
        for _, inputs in track(batches, steps, "AdaBN: target BatchNorm statistics"):
            new(inputs)
    for m, momentum in zip(layers, saved, strict=True):
        m.momentum = momentum
        m.eval()
    return new.eval()


__all__ = ["adabn_backbone", "batchnorm_layers"]
