"""Text backbones: Hugging Face transformer encoders and averaged word vectors."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from headstart.zoo._backbone import Backbone
from headstart.zoo._spec import BackboneSpec, TextPreprocess

_WORD = re.compile(r"[\w]+(?:'[\w]+)?|[^\w\s]")


def word_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split text into words and punctuation marks (GloVe-style tokens)."""
    return _WORD.findall(text.lower() if lowercase else text)


class TransformerTextBackbone(Backbone):
    """A BERT-style encoder: ``embeddings`` then ``layer.0 .. layer.{L-1}``; features are
    the mean of the last kept layer's token states over the attention mask."""

    def __init__(self, spec: BackboneSpec, model: nn.Module, tokenizer: object) -> None:
        names = ["embeddings"] + [f"layer.{i}" for i in range(len(model.encoder.layer))]
        super().__init__(spec, names)
        self.model = model
        self.tokenizer = tokenizer

    def blocks(self) -> list[tuple[str, nn.Module]]:
        mods = [self.model.embeddings, *self.model.encoder.layer]
        return list(zip(self.block_names, mods, strict=True))

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.hidden_size)

    def _truncate(self, keep: int) -> None:
        layers = list(self.model.encoder.layer)[: keep - 1]
        self.model.encoder.layer = nn.ModuleList(layers)
        self.model.config.num_hidden_layers = len(layers)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = inputs["attention_mask"]
        out = self.model(**inputs)
        hidden = out.last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    def collate(self, items: Sequence[str], train: bool = False, augment: object = None):
        pre = self.spec.preprocess
        assert isinstance(pre, TextPreprocess)
        enc = self.tokenizer(
            list(items),
            padding=True,
            truncation=True,
            max_length=pre.max_length,
            return_tensors="pt",
        )
        return {
            k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")
        }


class WordVectorBackbone(Backbone):
    """Averaged word vectors (an ``EmbeddingBag`` in mean mode); one block, ``embeddings``.

    Frozen it is the classic mean-of-GloVe sentence feature; unfrozen it is a trainable
    embedding-bag model initialised from the vectors. Words not in the vocabulary are
    ignored; a text with none gives the zero vector.
    """

    def __init__(self, spec: BackboneSpec, vectors: torch.Tensor, vocab: Sequence[str]) -> None:
        super().__init__(spec, ["embeddings"])
        self.embeddings = nn.EmbeddingBag.from_pretrained(vectors, freeze=False, mode="mean")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}

    def blocks(self) -> list[tuple[str, nn.Module]]:
        return [("embeddings", self.embeddings)]

    @property
    def feature_dim(self) -> int:
        return int(self.embeddings.embedding_dim)

    def _truncate(self, keep: int) -> None:  # a single block: nothing to drop
        return None

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embeddings(inputs["ids"], inputs["offsets"])

    def token_ids(self, text: str) -> list[int]:
        pre = self.spec.preprocess
        assert isinstance(pre, TextPreprocess)
        ids = [self.index[w] for w in word_tokenize(text, pre.lowercase) if w in self.index]
        return ids[: pre.max_length] if pre.max_length > 0 else ids

    def collate(self, items: Sequence[str], train: bool = False, augment: object = None):
        ids = [self.token_ids(t) for t in items]
        offsets = np.cumsum([0] + [len(i) for i in ids[:-1]])
        flat = [i for row in ids for i in row]
        return {
            "ids": torch.tensor(flat, dtype=torch.long),
            "offsets": torch.tensor(offsets, dtype=torch.long),
        }

    @staticmethod
    def batch_size(inputs: dict[str, torch.Tensor]) -> int:  # type: ignore[override]
        return int(inputs["offsets"].shape[0])

    def export_state(
        self, items: Sequence[str] = ()
    ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """The vectors of the words seen in ``items`` (every word when none are given)
        and that vocabulary, in row order, as JSON metadata (``vocab``): the rows of a
        word never seen in training are their random initialisation, noise to drop."""
        table = self.embeddings.weight.detach()
        if not self.vocab:  # hashed buckets (no vocabulary): keep the whole table
            return {"embeddings.weight": table.contiguous()}, {}
        rows = sorted({i for t in items for i in self.token_ids(t)}) if items else None
        rows = rows if rows is not None else list(range(len(self.vocab)))
        words = [self.vocab[i] for i in rows]
        kept = table[torch.tensor(rows, dtype=torch.long)].contiguous()
        return {"embeddings.weight": kept}, {"vocab": json.dumps(words)}


def hf_model_path(spec: BackboneSpec) -> str:
    """A local folder (packaged model, or ``--weights`` folder) or a hub id."""
    if spec.weights.kind == "package":
        module = importlib.import_module(spec.weights.locator)
        return str(module.get_model_path())
    return spec.weights.locator


def build_hf_text(spec: BackboneSpec, pretrained: bool = True) -> TransformerTextBackbone:
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = hf_model_path(spec)
    local = Path(path).is_dir()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
    if pretrained:
        model = AutoModel.from_pretrained(path, local_files_only=local)
    else:
        model = AutoModel.from_config(AutoConfig.from_pretrained(path, local_files_only=local))
    return TransformerTextBackbone(spec, model, tokenizer).eval()  # the wrapper too (see _image)


def glove_files(spec: BackboneSpec) -> tuple[Path, Path]:
    module = importlib.import_module(spec.weights.locator)
    root = Path(module.ROOT)
    return root / spec.extra["matrix"], root / spec.extra["words"]


def read_word_vectors(path: str | Path) -> tuple[torch.Tensor, list[str]]:
    """The table and vocabulary of a word-vector file written from
    :meth:`WordVectorBackbone.export_state` (safetensors, ``vocab`` in its metadata)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file() or p.suffix != ".safetensors":
        raise FileNotFoundError(f"{p}: word vectors need a .safetensors file (with a vocab)")
    with safe_open(str(p), "pt") as f:
        meta = f.metadata() or {}
        if "vocab" not in meta or "embeddings.weight" not in f.keys():  # noqa: SIM118
            raise ValueError(f"{p}: no vocabulary or embeddings.weight in this file")
        table = f.get_tensor("embeddings.weight")
    vocab = [str(w) for w in json.loads(meta["vocab"])]
    if len(vocab) != table.shape[0]:
        raise ValueError(f"{p}: {len(vocab)} words but {table.shape[0]} vectors")
    return table, vocab


def build_glove(spec: BackboneSpec, pretrained: bool = True) -> WordVectorBackbone:
    """GloVe's vocabulary and vectors (or, with ``pretrained=False``, random vectors of
    the same scale); a ``"file"`` source (a ``local/`` entry) reads its own vocabulary."""
    import pyarrow.parquet as pq

    if pretrained and spec.weights.kind == "file":
        table, vocab = read_word_vectors(spec.weights.locator)
        return WordVectorBackbone(spec, table, vocab)

    matrix, words = glove_files(spec)
    vocab = pq.read_table(words, columns=["index"]).column("index").to_pylist()
    vectors = np.load(matrix, mmap_mode="r")
    if len(vocab) != vectors.shape[0]:
        raise ValueError(f"{words}: {len(vocab)} words but {matrix} has {vectors.shape[0]} rows")
    if pretrained:
        table = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    else:
        gen = torch.Generator().manual_seed(0)
        table = torch.randn(vectors.shape, generator=gen) * float(np.std(vectors[:10000]))
    return WordVectorBackbone(spec, table, [str(w) for w in vocab])
