"""The packaged text encoders: MiniLM matches sentence-transformers, GloVe is whole."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.functional import cosine_similarity, normalize

import headstart
from headstart.zoo import TransformerTextBackbone, WordVectorBackbone
from headstart.zoo._text import glove_files, hf_model_path

pytestmark = pytest.mark.slow

SENTENCES = [
    "The cat slept on the warm windowsill.",
    "A kitten was napping in the sunshine by the window.",
    "Stock prices fell sharply after the central bank raised interest rates.",
]


def _features(backbone: headstart.zoo.Backbone, texts: list[str]) -> torch.Tensor:
    with torch.inference_mode():
        return backbone(backbone.collate(texts))


def _assert_related_closer(feats: torch.Tensor) -> tuple[float, float, float]:
    """SENTENCES[0] and [1] (cats by a window) are closer than either is to [2] (stocks)."""
    cat_kitten = float(cosine_similarity(feats[0], feats[1], dim=0))
    cat_stocks = float(cosine_similarity(feats[0], feats[2], dim=0))
    kitten_stocks = float(cosine_similarity(feats[1], feats[2], dim=0))
    assert cat_kitten > max(cat_stocks, kitten_stocks), (cat_kitten, cat_stocks, kitten_stocks)
    return cat_kitten, cat_stocks, kitten_stocks


# -- MiniLM --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> TransformerTextBackbone:
    backbone = headstart.create_backbone("minilm_l6.sbert_all_v2")
    assert isinstance(backbone, TransformerTextBackbone)
    return backbone


def test_minilm_checkpoint_fills_every_tensor(minilm: TransformerTextBackbone) -> None:
    from transformers import AutoModel

    path = hf_model_path(minilm.spec)
    reference, info = AutoModel.from_pretrained(
        path, local_files_only=True, output_loading_info=True
    )
    assert not info["missing_keys"], info["missing_keys"]
    assert not info["unexpected_keys"], info["unexpected_keys"]
    assert not info["mismatched_keys"], info["mismatched_keys"]
    assert not info["error_msgs"], info["error_msgs"]
    # headstart's encoder holds the same tensors as transformers' own load.
    ours, theirs = minilm.model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert torch.equal(ours[k], theirs[k]), k
    assert minilm.block_names == ["embeddings", *(f"layer.{i}" for i in range(6))]
    assert minilm.feature_dim == 384
    assert 22e6 < minilm.num_parameters() < 23.5e6  # 22.7M
    assert not any(m.training for m in minilm.modules())


def test_minilm_matches_sentence_transformers(minilm: TransformerTextBackbone) -> None:
    from sentence_transformers import SentenceTransformer

    full = SentenceTransformer(hf_model_path(minilm.spec), device="cpu")
    # modules: Transformer, Pooling (mean), Normalize; headstart's features are the pooled ones
    assert full[1].get_config_dict()["pooling_mode"] == "mean"
    pooled = SentenceTransformer(modules=[full[0], full[1]], device="cpu")
    ours = _features(minilm, SENTENCES)
    ref_pooled = pooled.encode(SENTENCES, convert_to_tensor=True)
    ref_unit = full.encode(SENTENCES, convert_to_tensor=True)
    assert ours.shape == ref_pooled.shape == (3, 384)
    torch.testing.assert_close(ours, ref_pooled, atol=1e-5, rtol=0)
    torch.testing.assert_close(normalize(ours, dim=1), ref_unit, atol=1e-5, rtol=0)


def test_minilm_padding_does_not_change_features(minilm: TransformerTextBackbone) -> None:
    """Mean pooling over the attention mask: a sentence alone or padded in a batch with a
    longer one gets the same features."""
    alone = _features(minilm, SENTENCES[:1])
    batched = _features(minilm, [SENTENCES[0], " ".join(SENTENCES * 3)])
    torch.testing.assert_close(alone[0], batched[0], atol=1e-5, rtol=1e-5)


def test_minilm_related_sentences_are_closer(minilm: TransformerTextBackbone) -> None:
    cat_kitten, cat_stocks, _ = _assert_related_closer(_features(minilm, SENTENCES))
    assert cat_kitten - cat_stocks > 0.3  # 0.67 vs 0.01 measured


# -- GloVe ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glove() -> WordVectorBackbone:
    backbone = headstart.create_backbone("glove_6b.50d")
    assert isinstance(backbone, WordVectorBackbone)
    return backbone


def test_glove_vocabulary_and_vectors(glove: WordVectorBackbone) -> None:
    assert len(glove.vocab) == 400_000
    assert len(glove.index) == 400_000  # no duplicate words
    assert glove.embeddings.weight.shape == (400_000, 50)
    assert glove.feature_dim == 50
    matrix_path, _ = glove_files(glove.spec)
    matrix = np.load(matrix_path, mmap_mode="r")
    for word in ("the", "cat", "kitten", "espresso"):
        i = glove.index[word]
        np.testing.assert_array_equal(glove.embeddings.weight[i].detach().numpy(), matrix[i])


def test_glove_features_average_known_words(glove: WordVectorBackbone) -> None:
    """Lower-cased words, unknown words ignored, the mean of the remaining vectors."""
    feats = _features(glove, ["The Cat qwzxvbnmplk", "the cat", "qwzxvbnmplk"])
    weight = glove.embeddings.weight.detach()
    expected = (weight[glove.index["the"]] + weight[glove.index["cat"]]) / 2
    torch.testing.assert_close(feats[0], expected)
    torch.testing.assert_close(feats[1], expected)
    assert torch.count_nonzero(feats[2]) == 0  # nothing known: the zero vector


def test_glove_related_sentences_are_closer(glove: WordVectorBackbone) -> None:
    _assert_related_closer(_features(glove, SENTENCES))
