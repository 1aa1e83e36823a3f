"""``headstart pretrain --objective mlm``: BERT's masking rule on a seeded batch, the loss
falling on tiny real text, the continued encoder in the zoo (without the MLM head) and
back through ``fit``, ``--from``, a pre-trained MLM head read from a folder, and the
one-line refusal of images."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

import headstart
from headstart._pretrain import PretrainError
from headstart.cli import app
from headstart.selfsup import MLMHead, mask_tokens
from headstart.zoo import create_backbone, get_spec
from headstart.zoo._local import register_local

transformers = pytest.importorskip("transformers")

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _tiny_bert_folder(folder: Path, words: list[str], masked_lm: bool = False) -> Path:
    """A 2-layer, 32-wide BERT with a word-level vocabulary: a Hugging Face folder."""
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + words) + "\n", encoding="utf-8")
    tok = transformers.BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True)
    config = transformers.BertConfig(
        vocab_size=len(SPECIAL) + len(words), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    cls = transformers.BertForMaskedLM if masked_lm else transformers.BertModel
    cls(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _words(tiny_texts: Path) -> list[str]:
    with tiny_texts.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return sorted({w for r in rows for w in r["text"].split()})


@pytest.fixture
def tiny_bert(tiny_texts: Path, tmp_path: Path) -> str:
    """``local/tiny-bert``: the tiny BERT folder as a zoo entry (MiniLM's spec, resized)."""
    folder = _tiny_bert_folder(tmp_path / "tiny-bert", _words(tiny_texts))
    spec = dataclasses.replace(
        get_spec("minilm_l6.sbert_all_v2"),
        feature_dim=32,
        blocks=("embeddings", "layer.0", "layer.1"),
        params_m=0.03,
        description="tiny test BERT",
    )
    return register_local("tiny-bert", spec, folder, {}).name


def test_mask_tokens_follows_berts_rule() -> None:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (200, 50), generator=g)
    lengths = torch.randint(3, 51, (200,), generator=g)
    pos = torch.arange(50).unsqueeze(0)
    pad = pos >= lengths.unsqueeze(1)
    ids[:, 0] = 2  # [CLS]
    ids[torch.arange(200), lengths - 1] = 3  # [SEP]
    ids[pad] = 0
    special = pad | (ids == 2) | (ids == 3)
    masked, labels = mask_tokens(ids, special, 4, 1000, 0.15, torch.Generator().manual_seed(1))
    chosen = labels != -100
    assert not (chosen & special).any()  # special tokens and padding never masked
    assert torch.equal(masked[special], ids[special])
    assert torch.equal(labels[chosen], ids[chosen])  # the label is the original token
    rate = chosen.sum().item() / (~special).sum().item()
    assert 0.13 < rate < 0.17  # ~15% of the real tokens (about 7,000 of them here)
    to_mask = (masked == 4) & chosen
    assert 0.75 < to_mask.sum().item() / chosen.sum().item() < 0.85  # 80% [MASK]
    kept = (masked == ids) & chosen
    assert 0.06 < kept.sum().item() / chosen.sum().item() < 0.14  # 10% (+ random hits) kept
    assert torch.equal(masked[~chosen], ids[~chosen])  # nothing else changes


def test_mlm_learns_registers_the_encoder_and_fit_takes_it(
    tiny_texts: Path, tiny_bert: str, tmp_path: Path
) -> None:
    out = tmp_path / "tapt"
    res = headstart.pretrain(
        tiny_texts, out, arch=tiny_bert, name="tiny-tapt", objective="mlm",
        epochs=6, batch_size=8, lr=1e-3, head_lr=1e-2,
    )  # fmt: skip
    assert res.registered == "local/tiny-tapt"
    report = json.loads((out / "ssl.json").read_text())
    losses = [r["train_mlm"] for r in report["history"]]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.1  # the loss falls, epoch on epoch
    assert all(b < a for a, b in itertools.pairwise(losses))
    # the saved backbone is the encoder alone: the same tensors as the start, no MLM head
    with safe_open(str(out / "source_model" / "model.safetensors"), "pt") as f:
        saved = set(f.keys())
    start = create_backbone(tiny_bert)
    assert saved == set(start.model.state_dict())
    trained = create_backbone(res.registered)
    assert not torch.equal(
        trained.model.encoder.layer[0].attention.self.query.weight,
        start.model.encoder.layer[0].attention.self.query.weight,
    )
    assert "mlm on texts.csv" in get_spec(res.registered).description
    fit = headstart.fit(tiny_texts, tmp_path / "bundle", model=res.registered)
    assert 0 <= fit.test_accuracy <= 1


def test_cli_mlm_from_a_zoo_model(tiny_texts: Path, tiny_bert: str, tmp_path: Path) -> None:
    args = ["pretrain", str(tiny_texts), "--objective", "mlm", "--from", tiny_bert]
    args += ["--out", str(tmp_path / "o"), "--name", "cli-tapt", "--epochs", "1", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "o" / "ssl.json").read_text())
    assert report["arch"] == tiny_bert and report["objective"] == "mlm"
    bad = CliRunner().invoke(app, ["pretrain", str(tiny_texts), "--out", str(tmp_path / "p"),
                                   "--from", tiny_bert])  # fmt: skip
    assert bad.exit_code != 0 and "--from needs --objective" in bad.output


def test_mlm_head_starts_from_a_folders_pretrained_head(tmp_path: Path) -> None:
    folder = _tiny_bert_folder(tmp_path / "mlm-bert", ["good", "film"], masked_lm=True)
    reference = transformers.BertForMaskedLM.from_pretrained(folder)
    emb = reference.bert.get_input_embeddings()
    head = MLMHead(emb)
    assert head.load_bert_head_inplace(folder)
    t = reference.cls.predictions.transform
    assert torch.equal(head.dense.weight, t.dense.weight)
    assert torch.equal(head.norm.weight, t.LayerNorm.weight)
    hidden = torch.randn(3, 32)
    with torch.inference_mode():
        assert torch.allclose(head(hidden), reference.cls(hidden), atol=1e-5)
    assert not MLMHead(emb).load_bert_head_inplace(tmp_path)  # no safetensors: fresh head
    assert all("_tied" not in k for k in head.state_dict())  # the embeddings are not the head's


def test_mlm_refuses_images(tiny_images: Path, tmp_path: Path) -> None:
    with pytest.raises(PretrainError, match=r"image data, but --objective mlm takes text"):
        headstart.pretrain(tiny_images, tmp_path / "a", objective="mlm")
    with pytest.raises(PretrainError, match="no option"):
        headstart.pretrain(tmp_path, tmp_path / "b", objective="mlm", temperature=0.1)
