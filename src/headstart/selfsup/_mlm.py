"""Masked-language-model continued pre-training of a text transformer: ``--objective mlm``.

Task-adaptive pre-training (TAPT, Gururangan et al., ACL 2020): the encoder keeps
training with BERT's own objective on the task's unlabelled text. Each batch masks 15%
of the real tokens (never ``[CLS]`` / ``[SEP]`` / padding or another special token): of
those, 80% become ``[MASK]``, 10% a random token, 10% stay as they are; the loss is the
cross-entropy of the original token at the masked positions only (every other label is
``-100``, as in Hugging Face's ``DataCollatorForLanguageModeling``).

**The MLM head.** The packaged sentence-transformers MiniLM ships the encoder alone (no
``cls.predictions`` weights), so the head is BERT's standard one built fresh: ``dense``
(``d -> d``), GELU, ``LayerNorm``, then a decoder whose weight is *tied* to the encoder's
word embeddings, with a fresh zero output bias. A Hugging Face folder that holds a
pre-trained BERT MLM head (``cls.predictions.*``) starts from it instead. The fresh
parts train at their own, higher rate (``head_lr``). The head is dropped afterwards:
the zoo entry holds the encoder only (its tied embeddings are the encoder's own).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from headstart._fields import option, positive
from headstart.selfsup._objectives import ObjectiveInfo, register_pretrain_objective
from headstart.train._engine import Batch, StepOutput


def _probability(x: float) -> bool:
    return 0 < x < 1


@dataclass(frozen=True)
class MLMConfig:
    epochs: int = option("mlm: epochs over the unlabelled texts.", default=1, check=positive)
    batch_size: int = option("mlm: texts per batch.", default=32, check=positive)
    lr: float = option("mlm: AdamW rate of the encoder.", default=5e-5, check=positive)
    head_lr: float = option(
        "mlm: AdamW rate of the fresh MLM head (dense, LayerNorm, output bias).",
        default=1e-3,
        check=positive,
    )
    mask_prob: float = option(
        "mlm: fraction of real tokens masked (80% [MASK], 10% random, 10% kept).",
        default=0.15,
        check=_probability,
    )
    max_length: int = option(
        "mlm: tokens per text kept for training (CPU-sized; longer texts are cut).",
        default=64,
        check=positive,
    )


def mask_tokens(
    input_ids: torch.Tensor,
    special: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    prob: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of ``input_ids`` ``(B, T)``; ``special`` ``(B, T)`` is true at the
    positions never masked (special tokens, padding). Each other position is chosen with
    probability ``prob``; a chosen one becomes ``mask_id`` (p 0.8), a uniform random id
    in ``[0, vocab_size)`` (p 0.1) or stays (p 0.1). Returns ``(masked_ids, labels)``,
    ``labels`` the original id at the chosen positions and ``-100`` elsewhere."""
    shape, dev = input_ids.shape, input_ids.device

    def draw(p: float) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=dev) < p

    chosen = draw(prob) & ~special
    labels = input_ids.masked_fill(~chosen, -100)
    ids = input_ids.clone()
    to_mask = chosen & draw(0.8)
    to_random = chosen & ~to_mask & draw(0.5)
    ids[to_mask] = mask_id
    random_ids = torch.randint(vocab_size, shape, generator=generator, device=dev)
    ids[to_random] = random_ids[to_random]
    return ids, labels


class MLMHead(nn.Module):
    """BERT's prediction head: ``LayerNorm(gelu(dense(h))) @ E^T + bias`` with ``E`` the
    encoder's word-embedding matrix (tied: read, not copied, so not a parameter here)."""

    def __init__(self, embeddings: nn.Embedding, eps: float = 1e-12) -> None:
        super().__init__()
        d = embeddings.embedding_dim
        self.dense = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=eps)
        self.bias = nn.Parameter(torch.zeros(embeddings.num_embeddings))
        self._tied = (embeddings,)  # a tuple: not registered, so not in this head's state

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        h = self.norm(nn.functional.gelu(self.dense(hidden)))
        return nn.functional.linear(h, self._tied[0].weight, self.bias)

    def load_bert_head_inplace(self, folder: str | Path) -> bool:
        """Start from a pre-trained BERT MLM head (``cls.predictions.*`` in the folder's
        safetensors), when there is one; returns whether it was found."""
        path = Path(folder) / "model.safetensors"
        if not path.is_file():
            return False
        from safetensors import safe_open

        names = {
            "dense.weight": "transform.dense.weight",
            "dense.bias": "transform.dense.bias",
            "norm.weight": "transform.LayerNorm.weight",
            "norm.bias": "transform.LayerNorm.bias",
            "bias": "bias",
        }
        with safe_open(str(path), "pt") as f:
            keys = set(f.keys())
            full = {k: f"cls.predictions.{v}" for k, v in names.items()}
            if not set(full.values()) <= keys:
                return False
            state = {k: f.get_tensor(v) for k, v in full.items()}
        self.load_state_dict(state, strict=True)
        return True


class MaskedLM(nn.Module):
    """``backbone`` (the text encoder) and ``head`` (:class:`MLMHead`), named so the loop
    trains the encoder's blocks at their rate and the head at its own."""

    def __init__(self, backbone: Any, head: MLMHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The last layer's token states ``(B, T, d)``."""
        return self.backbone.model(**inputs).last_hidden_state


@dataclass
class MLM:
    """``{"mlm": cross-entropy at the masked positions}``; masking is drawn per step
    from torch's global generator (seeded by the run)."""

    special_ids: tuple[int, ...]
    mask_id: int
    vocab_size: int
    mask_prob: float = 0.15
    max_length: int = 64
    stream: str = "unlabelled"

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> MLM:
        if tokenizer.mask_token_id is None:
            raise ValueError("--objective mlm: this tokenizer has no [MASK] token")
        special = tuple(tokenizer.all_special_ids)
        return cls(special, tokenizer.mask_token_id, len(tokenizer), **kwargs)

    def __call__(self, model: nn.Module, batches: Mapping[str, Batch]) -> StepOutput:
        inputs = {k: v[:, : self.max_length] for k, v in batches[self.stream].inputs.items()}
        ids = inputs["input_ids"]
        special = torch.isin(ids, torch.tensor(self.special_ids, device=ids.device))
        special |= inputs["attention_mask"] == 0
        masked, labels = mask_tokens(ids, special, self.mask_id, self.vocab_size, self.mask_prob)
        hidden = model({**inputs, "input_ids": masked})
        chosen = labels != -100
        if not chosen.any():  # a batch of very short texts: nothing to predict this step
            return StepOutput({"mlm": hidden.sum() * 0.0})
        logits = model.head(hidden[chosen])
        return StepOutput({"mlm": nn.functional.cross_entropy(logits, labels[chosen])})


register_pretrain_objective(
    ObjectiveInfo(
        "mlm",
        "text",
        MLMConfig,
        "pretrain --objective mlm: task-adaptive masked-language-model training of a "
        "transformer on unlabelled texts (BERT masking; a fresh tied MLM head, dropped after)",
    )
)

__all__ = ["MLM", "MLMConfig", "MLMHead", "MaskedLM", "mask_tokens"]
