"""Options of ``setfit``: how many pairs, and how the encoder trains on them."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import non_negative, option, positive


@dataclass(frozen=True)
class SetfitConfig:
    pair_iterations: int = option(
        "setfit: 0: every distinct pair of examples, the fewer of same-class and "
        "other-class pairs drawn again to balance them (SetFit's default); R: R rounds, "
        "each pairing every example with one of its class and one of another.",
        default=0,
        check=non_negative,
    )
    pair_epochs: int = option("setfit: epochs over the pairs.", default=1, check=positive)
    pair_lr: float = option(
        "setfit: learning rate of the encoder on the pairs.", default=2e-5, check=positive
    )
    pair_batch_size: int = option("setfit: pairs per batch.", default=16, check=positive)
