"""The runtime form of a zoo entry: a pre-trained network reduced to a feature extractor.

Every backbone, whatever its modality, exposes the same surgery surface:

* ``block_names``: the named stages, ordered from input to output (cut and freeze points);
* ``blocks()``: ``(name, module)`` pairs in that order;
* ``layer``: the last block kept (the cut point), ``feature_dim``: width of the features;
* ``forward(inputs)``: pooled features, shape ``(N, feature_dim)``;
* ``collate(items, train=...)``: raw items (PIL images or strings) to model inputs;
* ``truncate_inplace(layer)``: drop every block after ``layer`` (see
  :func:`headstart.surgery.cut` for the copying version).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from headstart.zoo._spec import BackboneSpec


class Backbone(nn.Module):
    """Base class: ordered named blocks plus pooling to a feature vector."""

    spec: BackboneSpec

    def __init__(self, spec: BackboneSpec, block_names: Sequence[str]) -> None:
        super().__init__()
        self.spec = spec
        self.block_names: list[str] = list(block_names)

    # -- surgery surface -------------------------------------------------------------
    @property
    def layer(self) -> str:
        return self.block_names[-1]

    @property
    def is_cut(self) -> bool:
        return self.block_names != list(self.spec.blocks)

    def blocks(self) -> list[tuple[str, nn.Module]]:
        raise NotImplementedError

    @property
    def feature_dim(self) -> int:
        raise NotImplementedError

    def pop_source_head_inplace(self) -> nn.Module | None:
        """Remove the source task's classifier (kept while the backbone is whole, for
        source-class scores) and return it; ``None`` when there is none. In place."""
        return None

    def truncate_inplace(self, layer: str) -> Backbone:
        """Keep the blocks up to and including ``layer``; drop the rest (in place)."""
        index = self.block_index(layer)
        self._truncate(index + 1)
        self.block_names = self.block_names[: index + 1]
        return self

    def block_index(self, layer: str) -> int:
        if layer not in self.block_names:
            raise ValueError(
                f"{self.spec.name} has no block {layer!r}; its blocks are: "
                + ", ".join(self.block_names)
            )
        return self.block_names.index(layer)

    def _truncate(self, keep: int) -> None:
        raise NotImplementedError

    # -- data ------------------------------------------------------------------------
    def collate(self, items: Sequence[Any], train: bool = False) -> Any:
        """Turn raw items (PIL images, or strings) into one batch of model inputs."""
        raise NotImplementedError

    @staticmethod
    def batch_size(inputs: Any) -> int:
        if isinstance(inputs, torch.Tensor):
            return int(inputs.shape[0])
        if isinstance(inputs, dict):
            return int(next(iter(inputs.values())).shape[0])
        raise TypeError(f"unsupported batch type {type(inputs).__name__}")

    def export_state(
        self, items: Sequence[Any] = ()
    ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """What a ``local/`` zoo entry (``headstart pretrain``) stores to rebuild this
        backbone offline: its tensors and string metadata (a vocabulary, say), for one
        safetensors file. ``items`` are the training items (a word-vector model keeps
        only the words seen in them)."""
        return {k: v.detach().contiguous() for k, v in self.state_dict().items()}, {}

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
