"""The backbone registry, the factory, cutting at a layer, and weight files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import headstart
from headstart import BackboneSpec, UnknownModelError, WeightsUnavailableError
from headstart.zoo import _registry
from headstart.zoo._weights import load_by_order


def _features(backbone: headstart.zoo.Backbone, x: torch.Tensor) -> torch.Tensor:
    backbone.eval()
    with torch.no_grad():
        return backbone(x)


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("efficientnet_lite0.in1k", "efficientnet_lite0.in1k"),
        ("efficientnet_lite0", "efficientnet_lite0.in1k"),
        ("LITE2", "efficientnet_lite2.in1k"),
        ("tf_efficientnet_lite1", "efficientnet_lite1.in1k"),
        ("mobilenet_v2", "mobilenetv2_100.tv_in1k"),
        ("all-MiniLM-L6-v2", "minilm_l6.sbert_all_v2"),
        ("glove", "glove_6b.50d"),
        ("test_cnn.tiny", "test_cnn.tiny"),
        ("test_words.tiny", "test_words.tiny"),
    ],
)
def test_get_spec_resolves_names_and_aliases(name: str, expected: str) -> None:
    assert headstart.get_spec(name).name == expected


def test_registered_specs_are_consistent() -> None:
    specs = headstart.list_specs(include_test=True)
    assert {"test_cnn.tiny", "test_words.tiny"} <= {s.name for s in specs}
    assert "test_cnn.tiny" not in {s.name for s in headstart.list_specs()}
    assert {s.modality for s in headstart.list_specs("text")} == {"text"}
    for spec in specs:
        assert spec.blocks, spec.name
        assert spec.feature_dim > 0, spec.name


def test_unknown_model_suggests_close_matches_and_lists_offline_models() -> None:
    with pytest.raises(UnknownModelError) as info:
        headstart.get_spec("efficientnet_lite9")
    msg = str(info.value)
    assert "'efficientnet_lite9'" in msg
    assert "Did you mean" in msg
    assert "efficientnet_lite0" in msg
    offline = [s.name for s in headstart.list_specs() if s.offline_available()]
    assert offline
    for name in offline:
        assert name in msg
    assert "test_cnn.tiny" not in msg  # test backbones are not advertised


def test_unknown_model_without_close_match_still_lists_offline_models() -> None:
    with pytest.raises(UnknownModelError, match="Available offline") as info:
        headstart.get_spec("zzqx_no_such_thing")
    assert "Did you mean" not in str(info.value)
    assert isinstance(info.value, ValueError)


# -- building and cutting -----------------------------------------------------------------


def test_create_backbone_whole() -> None:
    bb = headstart.create_backbone("test_cnn.tiny")
    assert bb.block_names == ["stem", "block1", "block2"]
    assert bb.layer == "block2"
    assert not bb.is_cut
    assert bb.feature_dim == 32
    assert _features(bb, torch.randn(2, 3, 32, 32)).shape == (2, 32)


def test_pretrained_weights_are_deterministic_and_differ_from_random_init() -> None:
    a = headstart.create_backbone("test_cnn.tiny").state_dict()
    b = headstart.create_backbone("test_cnn.tiny").state_dict()
    r = headstart.create_backbone("test_cnn.tiny", pretrained=False).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["stages.0.0.weight"], r["stages.0.0.weight"])


@pytest.mark.parametrize(("layer", "dim"), [("stem", 8), ("block1", 16), ("block2", 32)])
def test_create_backbone_cut_at_layer(layer: str, dim: int) -> None:
    whole = headstart.create_backbone("test_cnn.tiny")
    bb = headstart.create_backbone("test_cnn.tiny", layer=layer)
    names = ["stem", "block1", "block2"]
    assert bb.block_names == names[: names.index(layer) + 1]
    assert bb.layer == layer
    assert bb.is_cut == (layer != "block2")
    assert bb.feature_dim == dim
    assert len(bb.stages) == len(bb.block_names)
    assert _features(bb, torch.randn(3, 3, 32, 32)).shape == (3, dim)
    # the kept blocks carry the same weights as the whole network's
    for (name, block), (_, ref) in zip(bb.blocks(), whole.blocks(), strict=False):
        sd, ref_sd = block.state_dict(), ref.state_dict()
        assert all(torch.equal(sd[k], ref_sd[k]) for k in sd), name


def test_bad_layer_name_lists_blocks() -> None:
    with pytest.raises(ValueError, match="block7") as info:
        headstart.create_backbone("test_cnn.tiny", layer="block7")
    assert "stem, block1, block2" in str(info.value)


def test_text_backbone() -> None:
    bb = headstart.create_backbone("test_words.tiny")
    assert bb.block_names == ["embeddings"]
    assert bb.feature_dim == 16
    inputs = bb.collate(["hello world", "", "hello"])
    assert bb.batch_size(inputs) == 3
    out = _features(bb, inputs)
    assert out.shape == (3, 16)
    assert torch.all(out[1] == 0)  # no words: the zero vector
    assert not torch.allclose(out[0], out[2])


# -- specs as data ------------------------------------------------------------------------


@pytest.mark.parametrize("spec", headstart.list_specs(include_test=True), ids=lambda s: s.name)
def test_spec_dict_round_trip_through_json(spec: BackboneSpec) -> None:
    d = json.loads(json.dumps(spec.to_dict()))
    back = BackboneSpec.from_dict(d)
    assert back == spec
    assert type(back.preprocess) is type(spec.preprocess)
    assert back.preprocess == spec.preprocess
    assert back.blocks == spec.blocks
    assert json.dumps(back.to_dict(), sort_keys=True) == json.dumps(d, sort_keys=True)


# -- weight files -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["safetensors", "torch", "torch-wrapped"])
def test_create_backbone_loads_weights_file(tmp_path, fmt: str) -> None:
    other = headstart.create_backbone("test_cnn.tiny", pretrained=False)
    state = {k: v.contiguous() for k, v in other.state_dict().items()}
    if fmt == "safetensors":
        path = tmp_path / "other.safetensors"
        save_file(state, str(path))
    else:
        path = tmp_path / "other.pt"
        torch.save({"state_dict": state} if fmt == "torch-wrapped" else state, path)
    bb = headstart.create_backbone("test_cnn.tiny", weights=path)
    assert bb.spec.weights.kind == "file"
    x = torch.randn(4, 3, 32, 32)
    default = headstart.create_backbone("test_cnn.tiny")
    assert torch.allclose(_features(bb, x), _features(other, x), atol=1e-6)
    assert not torch.allclose(_features(bb, x), _features(default, x), atol=1e-3)


def test_weights_file_with_wrong_shapes_names_the_file(tmp_path) -> None:
    state = headstart.create_backbone("test_cnn.tiny").state_dict()
    state["stages.1.0.weight"] = torch.zeros(16, 8, 5, 5)
    path = tmp_path / "mismatched.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(ValueError, match=r"mismatched\.safetensors") as info:
        headstart.create_backbone("test_cnn.tiny", weights=path)
    assert "stages.1.0.weight" in str(info.value)


def test_weights_file_of_another_architecture_names_the_file(tmp_path) -> None:
    path = tmp_path / "other_arch.pt"
    torch.save(nn.Linear(5, 3).state_dict(), path)
    with pytest.raises(ValueError, match=r"other_arch\.pt"):
        headstart.create_backbone("test_cnn.tiny", weights=path)


def test_weights_file_that_is_a_pickled_object_is_refused(tmp_path) -> None:
    path = tmp_path / "module.pt"
    torch.save(nn.Linear(2, 2), path)  # a whole pickled module, not a state dict
    with pytest.raises(ValueError, match=r"module\.pt"):
        headstart.create_backbone("test_cnn.tiny", weights=path)


def test_missing_weights_file() -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.safetensors"):
        headstart.create_backbone("test_cnn.tiny", weights="/nonexistent/nowhere.safetensors")


def test_load_by_order_pairs_tensors_by_position_and_checks_shapes() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 4))
    good = {
        "a": torch.ones(2, 3),
        "b": torch.full((2,), 2.0),
        "c": torch.ones(4, 2) * 3,
        "d": torch.zeros(4),
    }
    load_by_order(model, good)
    assert torch.equal(model[0].weight, torch.ones(2, 3))
    assert torch.equal(model[0].bias, torch.full((2,), 2.0))
    assert torch.equal(model[1].weight, torch.ones(4, 2) * 3)

    swapped = {
        "a": torch.ones(3, 2),
        "b": torch.zeros(2),
        "c": torch.ones(4, 2),
        "d": torch.zeros(4),
    }
    with pytest.raises(ValueError, match=r"shape mismatch pairing a \(3, 2\)"):
        load_by_order(model, swapped)
    assert torch.equal(model[0].weight, torch.ones(2, 3))  # nothing loaded on failure

    with pytest.raises(ValueError, match="3 tensors but the model has 4"):
        load_by_order(model, {k: good[k] for k in "abc"})


def test_load_by_order_dropped_buffers_keep_the_models_own() -> None:
    model = nn.BatchNorm1d(3)
    model.num_batches_tracked.fill_(7)
    state = {"w": torch.ones(3) * 2, "b": torch.ones(3), "m": torch.ones(3), "v": torch.ones(3) * 4}
    load_by_order(model, state, drop=("num_batches_tracked",))
    assert torch.equal(model.running_var, torch.ones(3) * 4)
    assert int(model.num_batches_tracked) == 7


# -- hub models without network -----------------------------------------------------------


def _offline_failure(*args, **kwargs):
    raise OSError("We couldn't connect to 'https://huggingface.co'")


def test_timm_hub_model_without_network(monkeypatch) -> None:
    import timm

    monkeypatch.setattr(timm, "create_model", _offline_failure)
    monkeypatch.setattr(_registry, "hub_reachable", lambda *a, **k: True, raising=False)
    spec = headstart.get_spec("timm/resnet18.a1_in1k")
    assert spec.weights.kind == "timm-hub"
    with pytest.raises(WeightsUnavailableError, match="--weights") as info:
        headstart.create_backbone(spec)
    assert "resnet18" in str(info.value)


def test_hf_hub_model_without_network(monkeypatch) -> None:
    import transformers

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", _offline_failure)
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", _offline_failure)
    with pytest.raises(WeightsUnavailableError, match="--weights") as info:
        headstart.create_backbone("hf/some-org/some-encoder")
    assert "some-org/some-encoder" in str(info.value)


def test_hub_model_offline_never_calls_the_network(monkeypatch) -> None:
    """With HF_HUB_OFFLINE=1 (set for every test) a hub model fails with advice, whether
    or not the builder is reached."""
    import timm

    monkeypatch.setattr(timm, "create_model", _offline_failure)
    with pytest.raises(WeightsUnavailableError, match="--weights"):
        headstart.create_backbone("timm/resnet18.a1_in1k")


def test_word_backbone_batch_size_counts_texts_not_tokens() -> None:
    backbone = headstart.create_backbone("test_words.tiny")
    inputs = backbone.collate(["one two three four", "five six seven"])
    assert backbone.batch_size(inputs) == 2  # 7 tokens, 2 texts
    assert backbone(inputs).shape == (2, backbone.feature_dim)
