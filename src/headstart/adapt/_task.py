"""What an adaptation method receives (:class:`AdaptTask`) and returns (:class:`Candidate`).

The task holds features only: the labelled source (training and validation splits) and
the *unlabelled* target. Target labels, when the target has them, are not part of it:
no method can read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from headstart.zoo._backbone import Backbone


@dataclass(frozen=True)
class AdabnFeatures:
    """The AdaBN backbone (BatchNorm statistics of the target) and the target's
    features through it."""

    backbone: Backbone
    target: np.ndarray


@dataclass
class AdaptTask:
    """Source training / validation features and labels, unlabelled target features,
    the number of classes and the seed. ``val_weights``: density ratios
    ``p_T(x) / p_S(x)`` of the source validation rows (a domain classifier's).
    ``labelled``: a few labelled target examples ``(x, y)`` when the user gave them.
    ``adabn()``: features through the AdaBN backbone (computed once, on first call;
    ``None`` when the backbone has no BatchNorm layer)."""

    xs: np.ndarray
    ys: np.ndarray
    xv: np.ndarray
    yv: np.ndarray
    xt: np.ndarray
    n_classes: int
    seed: int = 0
    val_weights: np.ndarray | None = None
    labelled: tuple[np.ndarray, np.ndarray] | None = None
    adabn_fn: Callable[[], AdabnFeatures | None] | None = None
    _adabn: list[AdabnFeatures | None] = field(default_factory=list, repr=False)

    def adabn(self) -> AdabnFeatures | None:
        if not self._adabn:
            self._adabn.append(self.adabn_fn() if self.adabn_fn is not None else None)
        return self._adabn[0]


@dataclass
class Candidate:
    """One adapted model: a feature head, the backbone it reads (``"source"``, or
    ``"adabn"``), the source training rows as its linear layer saw them
    (``source_repr``, for the proxy A-distance after adaptation), its history and notes.

    The head is made for *target* rows. ``source_map`` maps source features (of the
    unadapted backbone) to what the head reads for source-domain data (per-domain
    statistics, CORAL's recolouring); ``None``: as they are. Source validation and test
    scores go through it, so they measure the method's model of the source domain."""

    name: str
    head: nn.Sequential
    backbone: str = "source"
    source_repr: np.ndarray | None = None
    source_map: Callable[[np.ndarray], np.ndarray] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    uses_labelled_target: bool = False


__all__ = ["AdabnFeatures", "AdaptTask", "Candidate"]
