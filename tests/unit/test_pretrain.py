"""headstart pretrain: a source model developed on a labelled task, checked against the
naive baselines, registered in the user's zoo as local/<name> and reused like any model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import headstart
from headstart._pretrain import data_digest, majority_accuracy
from headstart.cli import app
from headstart.zoo._local import LocalModelError, local_specs, zoo_dir

CNN = "test_cnn.tiny"


def test_majority_and_digest_by_hand() -> None:
    # training classes 0,0,1 -> majority 0; test 0,1,1,0 -> 2 of 4 right
    assert majority_accuracy(np.array([0, 0, 1]), np.array([0, 1, 1, 0])) == 0.5
    a = data_digest(["x", "y"], np.array([0, 1]), ["k1", "k2"])
    assert a != data_digest(["x", "y"], np.array([1, 0]), ["k1", "k2"])  # labels count
    assert a == data_digest(["other", "names"], np.array([0, 1]), ["k1", "k2"])  # content


def test_pretrain_registers_a_skilful_model_and_fit_reuses_it(
    tiny_images: Path, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    res = headstart.pretrain(
        tiny_images, src, arch=CNN, name="shapes", epochs=15, val=0.2, test=0.3
    )
    assert res.accuracy > res.baselines["majority"] and res.accuracy >= res.baselines["pixels"]
    assert res.registered == "local/shapes"
    report = json.loads((src / "source.json").read_text())
    assert (
        report["passed"] and report["examples"]["test"] > 0 and len(report["source_digest"]) == 64
    )
    assert (src / "source_model.safetensors").exists() and (src / "headstart.json").exists()
    (spec,) = local_specs()
    assert spec.name == "local/shapes" and spec.extra["provenance"]["arch"] == CNN
    assert Path(spec.weights.locator).parent == zoo_dir() / "shapes"
    # the registered backbone is the trained one: same features as the bundle's backbone
    bundle = headstart.load(src)
    mine = headstart.create_backbone("local/shapes").eval()
    image = Image.open(next(tiny_images.rglob("*.png"))).convert("RGB")
    x = bundle.model.backbone.collate([image])
    np.testing.assert_allclose(
        mine(x).detach().numpy(), bundle.model.backbone.eval()(x).detach().numpy(), atol=1e-5
    )
    fitted = headstart.fit(tiny_images, model="local/shapes", strategy="extract", val=0.2)
    assert fitted.metrics["model"] == "local/shapes"
    # --layer reuses part of it: the cut model's features are the first blocks' output
    part = headstart.fit(
        tiny_images, model="local/shapes", layer="block1", strategy="extract", val=0.2
    )
    assert part.metrics["layer"] == "block1" and part.metrics["feature_dim"] == 16
    cut = headstart.create_backbone("local/shapes", layer="block1").eval()
    assert cut(x).shape == (1, 16)
    rows = json.loads(CliRunner().invoke(app, ["models", "--json", "--test"]).output)
    assert "local/shapes" in {r["name"] for r in rows}


def test_a_model_that_learned_nothing_is_not_registered(tiny_images: Path, tmp_path: Path):
    """One epoch at a learning rate of 1e-9: no better than the baselines, so no entry."""
    res = headstart.pretrain(
        tiny_images, tmp_path / "weak", arch=CNN, epochs=1, scratch_lr=1e-9, val=0.2, test=0.3
    )
    assert res.registered is None and not local_specs()
    assert json.loads((tmp_path / "weak" / "source.json").read_text())["passed"] is False


def test_bad_names_and_unknown_local_models_are_one_line_errors(tiny_images: Path, tmp_path):
    with pytest.raises(LocalModelError, match="--name 'Bad Name'"):
        headstart.pretrain(tiny_images, tmp_path / "x", arch=CNN, name="Bad Name")
    assert not (tmp_path / "x").exists()
    with pytest.raises(LocalModelError, match="not in your zoo"):
        headstart.get_spec("local/nothing")


def test_cli_bad_name_is_one_line_and_exit_2(
    tiny_images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from headstart.cli import main

    argv = ["headstart", "pretrain", str(tiny_images), "--out", str(tmp_path / "o")]
    monkeypatch.setattr("sys.argv", [*argv, "--arch", CNN, "--name", "no spaces"])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--name 'no spaces'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_pretrain_refuses_what_it_cannot_develop(tiny_images: Path, tiny_texts: Path, tmp_path):
    from headstart._pretrain import PretrainError

    with pytest.raises(PretrainError, match="a image model, not text"):
        headstart.pretrain(tiny_texts, tmp_path / "t", arch=CNN)
    with pytest.raises(PretrainError, match="no test split"):
        headstart.pretrain(tiny_images, tmp_path / "n", arch=CNN, test=0)
    assert not (tmp_path / "t").exists() and not (tmp_path / "n").exists()


def test_a_timm_architecture_round_trips_through_the_zoo(tiny_images: Path, tmp_path: Path):
    """Lite0 (timm, keys of the decomposed backbone) loads strictly from its entry."""
    from safetensors.torch import save_file

    from headstart.zoo._local import register_local

    net = headstart.create_backbone("efficientnet_lite0.in1k", pretrained=False)
    net.pop_source_head_inplace()
    f = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(f))
    spec = headstart.get_spec("efficientnet_lite0.in1k")
    register_local("lite", spec, f, {"arch": spec.name})
    mine = headstart.create_backbone("local/lite").eval()
    x = torch.randn(2, 3, 64, 64)
    np.testing.assert_allclose(mine(x).detach().numpy(), net.eval()(x).detach().numpy(), atol=1e-5)


def test_a_damaged_zoo_entry_is_skipped(tmp_path: Path) -> None:
    bad = zoo_dir() / "broken"
    bad.mkdir(parents=True)
    (bad / "entry.json").write_text('{"spec": {"extra": 5}}')
    assert local_specs() == []
    assert CliRunner().invoke(app, ["models"]).exit_code == 0


def test_small_cnn_architecture_is_in_the_zoo_but_never_a_rank_candidate() -> None:
    from headstart.select._rank import offline_models

    spec = headstart.get_spec("small_cnn")
    assert spec.name == "small_cnn.untrained" and spec.modality == "image"
    assert "small_cnn.untrained" not in offline_models("image")
    net = headstart.create_backbone(spec)
    assert net.feature_dim == 128 and net.num_parameters() == 462_944


def test_word_vectors_keep_only_the_words_seen_and_their_vocabulary(tmp_path: Path) -> None:
    """A word-bag source model stores the vectors of its training words and that
    vocabulary in the safetensors metadata: the entry loads without GloVe's files."""
    from safetensors.torch import save_file

    from headstart.zoo._local import register_local
    from headstart.zoo._text import WordVectorBackbone

    spec = headstart.get_spec("glove_6b.50d")
    vocab = ["the", "cat", "sat", "dog", "ran"]
    net = WordVectorBackbone(spec, torch.arange(10.0).reshape(5, 2), vocab)
    state, meta = net.export_state(["The cat sat.", "the cat"])
    assert json.loads(meta["vocab"]) == ["the", "cat", "sat"]  # dog, ran: never seen
    assert state["embeddings.weight"].tolist() == [[0, 1], [2, 3], [4, 5]]
    save_file(state, str(tmp_path / "w.safetensors"), metadata=meta)
    register_local("words", spec, tmp_path / "w.safetensors", {"arch": spec.name})
    mine = headstart.create_backbone("local/words")
    x = mine.collate(["cat sat dog"])  # dog is unknown now: ignored
    assert mine(x).tolist() == [[3.0, 4.0]]  # mean of cat (2, 3) and sat (4, 5)


def test_audio_source_models_round_trip_through_the_zoo(tmp_path: Path) -> None:
    """GE2E and the tiny audio net load their own weights strictly from an entry."""
    from safetensors.torch import save_file

    from headstart.zoo._local import register_local

    for arch in ("ge2e.resemblyzer", "test_audio.tiny"):
        net = headstart.create_backbone(arch, pretrained=False)
        state, meta = net.export_state()
        save_file(state, str(tmp_path / "a.safetensors"), metadata=meta or None)
        name = arch.split(".")[0].replace("_", "-")
        register_local(name, headstart.get_spec(arch), tmp_path / "a.safetensors", {})
        mine = headstart.create_backbone(f"local/{name}").eval()
        rate = headstart.get_spec(arch).preprocess.sample_rate
        x = torch.randn(2, int(rate * 0.5))
        np.testing.assert_allclose(mine(x).detach().numpy(), net.eval()(x).detach().numpy())


@pytest.mark.slow
def test_pretrain_on_text_saves_its_vocabulary_and_fit_reuses_it(
    tiny_texts: Path, tmp_path: Path
) -> None:
    res = headstart.pretrain(
        tiny_texts, tmp_path / "src", name="words", epochs=10, scratch_lr=0.05, val=0.2, test=0.3
    )
    assert res.registered == "local/words" and res.report["arch"] == "glove_6b.50d"
    mine = headstart.create_backbone("local/words")
    assert 0 < len(mine.vocab) < 100  # the words of the training texts, not GloVe's 400k
    fitted = headstart.fit(tiny_texts, model="local/words", strategy="extract", val=0.2)
    assert fitted.metrics["model"] == "local/words" and fitted.test_accuracy > 0.9
