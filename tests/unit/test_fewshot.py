"""Few-shot and zero-shot: prototype heads (maths, leave-one-out, bundles), adding and
removing classes without retraining, zero-shot from label names, episodes, bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import headstart
from headstart.cli import app, main
from headstart.fewshot import (
    EditError,
    LabelError,
    PrototypeHead,
    episode_accuracies,
    fit_prototype_head,
    fit_prototypes,
    fit_scale,
    loo_similarities,
    parse_labels,
)
from headstart.fewshot._edit import class_embedding
from headstart.fewshot._episodes import EpisodeError, parse_shots
from headstart.fewshot._labels import check_template

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.output


@pytest.fixture
def cli_error(monkeypatch, capsys):
    """``cli_error(*args)``: run the real entry point, expect exit 2; its stderr, which
    must be one line."""

    def run(*args: str) -> str:
        monkeypatch.setattr("sys.argv", ["headstart", *args])
        with pytest.raises(SystemExit) as exc:
            main()
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and "Traceback" not in err, err
        assert len(err.splitlines()) == 1, err
        return err

    return run


# -- the prototype head ------------------------------------------------------------------


def test_cl2n_prototypes_are_class_means_of_centred_unit_features():
    x = np.array([[3.0, 1.0], [1.0, 3.0], [-2.0, 0.0], [0.0, -2.0]], dtype=np.float32)
    y = np.array([0, 0, 1, 1])
    head = fit_prototypes(x, y, 2, "cl2n", "euclidean")
    m = x.mean(0)
    z = (x - m) / np.linalg.norm(x - m, axis=1, keepdims=True)
    np.testing.assert_allclose(head.centre.numpy(), m, atol=1e-6)
    np.testing.assert_allclose(head.prototypes.numpy(), [z[:2].mean(0), z[2:].mean(0)], atol=1e-6)
    np.testing.assert_array_equal(head.counts.numpy(), [2, 2])
    logits = head(torch.from_numpy(x)).numpy()  # -||z - p||^2, scale 1
    want = -((z[:, None, :] - head.prototypes.numpy()[None]) ** 2).sum(-1)
    np.testing.assert_allclose(logits, want, atol=1e-5)
    assert (logits.argmax(1) == y).all()


def test_transforms_differ_as_documented():
    x = np.array([[10.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    raw = fit_prototypes(x, np.array([0, 1]), 2, "raw")
    l2 = fit_prototypes(x, np.array([0, 1]), 2, "l2")
    np.testing.assert_allclose(raw.prototypes.numpy(), x)
    np.testing.assert_allclose(l2.prototypes.numpy(), [[1, 0], [0, 1]])
    cos = fit_prototypes(x, np.array([0, 1]), 2, "raw", "cosine")
    # cosine ignores length: a long and a short vector along x score the same
    out = cos(torch.tensor([[5.0, 0.0], [0.5, 0.0]])).numpy()
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)


def test_leave_one_out_similarities_match_refitting_without_the_example(seed):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5)).astype(np.float32)
    y = np.repeat([0, 1, 2], 4)
    for transform, metric in (("l2", "euclidean"), ("raw", "cosine")):
        head = fit_prototypes(x, y, 3, transform, metric)
        loo = loo_similarities(head, x, y)
        for i in (0, 5, 11):
            keep = np.arange(12) != i
            again = fit_prototypes(x[keep], y[keep], 3, transform, metric)
            want = again(torch.from_numpy(x[i : i + 1])).numpy()[0]
            np.testing.assert_allclose(loo[i], want, atol=1e-5)


def test_a_class_with_one_example_has_no_leave_one_out_prototype():
    x = np.eye(3, dtype=np.float32)
    head = fit_prototypes(x, np.array([0, 1, 1]), 2, "raw")
    loo = loo_similarities(head, x, np.array([0, 1, 1]))
    assert loo[0, 0] == -np.inf and np.isfinite(loo[1:, 1]).all()


def test_scale_minimises_the_leave_one_out_likelihood():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    sims = rng.normal(size=(300, 3)) * 0.1
    sims[np.arange(300), y] += 0.2  # the right class is a little more similar
    s = fit_scale(sims, y)

    def nll(scale: float) -> float:
        t = torch.from_numpy(scale * sims)
        return float(torch.nn.functional.cross_entropy(t, torch.from_numpy(y)))

    assert nll(s) <= min(nll(s * 0.7), nll(s * 1.4), nll(1.0)) + 1e-9
    assert 1 < s < 1000


def test_label_prior_counts_as_examples_and_is_chosen_by_leave_one_out():
    rng = np.random.default_rng(2)
    centres = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    x = np.concatenate([c + rng.normal(scale=0.9, size=(3, 4)) for c in centres])
    x = x.astype(np.float32)
    y = np.repeat([0, 1], 3)
    head = fit_prototypes(x, y, 2, "raw", prior=centres.astype(np.float32), prior_weight=2.0)
    np.testing.assert_allclose(
        head.prototypes.numpy()[0], (x[:3].sum(0) + 2 * centres[0]) / 5, atol=1e-5
    )
    assert head.counts.tolist() == [5.0, 5.0]
    _, record = fit_prototype_head(
        x, y, 2, "raw", prior=centres.astype(np.float32), prior_weights=(0.0, 1.0, 8.0)
    )
    assert [c["prior_weight"] for c in record["candidates"]] == [0.0, 1.0, 8.0]
    best = max(record["candidates"], key=lambda c: (c["loo_acc"], -c["loo_nll"]))
    assert record["prior_weight"] == best["prior_weight"]


# -- fit, bundle, add / remove a class ---------------------------------------------------


@pytest.fixture
def proto_bundle(tiny_images: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A prototype bundle on circles and squares; ``stripes`` kept back to add later."""
    two = tmp_path / "two"
    for c in ("circle", "square"):
        shutil.copytree(tiny_images / c, two / c)
    out = tmp_path / "bundle"
    r = headstart.fit(two, out=out, model="test_cnn.tiny", strategy="prototype", val=0.0)
    assert r.history[0]["stage"] == "prototype" and r.history[0]["examples"] == 20
    return out, tiny_images / "stripes"


def test_prototype_bundle_loads_and_predicts_as_fitted(proto_bundle):
    out, _ = proto_bundle
    config = json.loads((out / "headstart.json").read_text())
    assert config["head"]["type"] == "prototype" and config["head"]["transform"] == "cl2n"
    p = headstart.load(out)
    assert isinstance(p.model.head, PrototypeHead)
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    proba = p.predict_proba([r["item"] for r in rows])
    assert [p.classes[i] for i in proba.argmax(1)] == [r["predicted"] for r in rows]
    np.testing.assert_allclose(proba.max(1), [float(r["probability"]) for r in rows], atol=1e-4)


def test_add_class_from_a_folder_then_remove_it(proto_bundle, tmp_path: Path):
    out, stripes = proto_bundle
    files = sorted(stripes.glob("*.png"))
    new = tmp_path / "three"
    code, text = _run("add-class", str(out), "stripes", *map(str, files[:3]), "--out", str(new))
    assert code == 0, text
    p = headstart.load(new)
    assert p.classes == ["circle", "square", "stripes"]
    assert p.model.head.counts.tolist()[-1] == 3.0
    assert p.predict([str(f) for f in files[3:]]).count("stripes") >= 7  # 9 unseen stripes
    assert json.loads((new / "headstart.json").read_text())["edits"] == [
        {"edit": "add", "class": "stripes", "examples": 3}
    ]
    old = headstart.load(out)  # the original bundle is untouched
    assert old.classes == ["circle", "square"]

    code, text = _run("remove-class", str(new), "square")  # in place: a headstart output
    assert code == 0, text
    p2 = headstart.load(new)
    assert p2.classes == ["circle", "stripes"]
    np.testing.assert_array_equal(
        p2.model.head.prototypes.numpy(), p.model.head.prototypes.numpy()[[0, 2]]
    )


def test_update_refines_an_existing_class_with_the_running_mean(proto_bundle, tiny_images):
    out, _ = proto_bundle
    before = headstart.load(out).model.head
    more = sorted((tiny_images / "circle").glob("*.png"))[:2]
    headstart.add_class(out, "circle", [str(f) for f in more], update=True)
    after = headstart.load(out).model.head
    total, n = class_embedding(headstart.load(out), [str(f) for f in more])
    want = (before.counts[0].double() * before.prototypes[0].double() + total) / (
        before.counts[0] + n
    )
    np.testing.assert_allclose(after.prototypes[0].numpy(), want.numpy(), atol=1e-5)
    assert after.counts[0] == before.counts[0] + 2


def test_bad_edits_are_refused_with_one_line(proto_bundle, tmp_path, cli_error):
    out, stripes = proto_bundle
    one = [str(next(stripes.glob("*.png")))]
    with pytest.raises(EditError, match="already a class"):
        headstart.add_class(out, "circle", one)
    with pytest.raises(EditError, match="only in case"):
        headstart.add_class(out, "Circle", one)
    with pytest.raises(EditError, match="no example"):
        headstart.add_class(out, "stripes", [])
    with pytest.raises(EditError, match="empty"):
        headstart.add_class(out, "  ", one)
    with pytest.raises(EditError, match="not a class"):
        headstart.remove_class(out, "stripes")
    with pytest.raises(EditError, match="two or more"):
        headstart.remove_class(out, "circle")
    foreign = tmp_path / "mine"
    shutil.copytree(out, foreign)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(EditError, match=r"notes\.txt.*--out"):
        headstart.add_class(foreign, "stripes", one)
    assert (foreign / "notes.txt").read_text() == "mine"
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not written by headstart"):
        headstart.add_class(out, "stripes", one, out=tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    assert "nope.png" in cli_error("add-class", str(out), "stripes", str(tmp_path / "nope.png"))
    assert "no example" in cli_error("add-class", str(out), "stripes", str(tmp_path / "taken"))


def test_add_class_needs_a_prototype_head(tiny_images: Path, tmp_path: Path):
    out = tmp_path / "logreg"
    headstart.fit(tiny_images, out=out, model="test_cnn.tiny")
    with pytest.raises(EditError, match="not prototypes"):
        headstart.add_class(out, "new", [str(next((tiny_images / "circle").glob("*.png")))])


def test_export_of_a_prototype_bundle_matches_pytorch(proto_bundle):
    pytest.importorskip("onnxruntime")
    from headstart.bundle._export import export_onnx

    out, _ = proto_bundle
    entry = export_onnx(out)
    assert entry["parity"]["max_abs_diff"] <= entry["parity"]["tolerance"]


# -- zero-shot ---------------------------------------------------------------------------


def test_label_names_and_templates_are_checked():
    assert parse_labels(" a, b ,c") == {"a": "a", "b": "b", "c": "c"}
    assert parse_labels({"pos": "good", "neg": "bad"}) == {"pos": "good", "neg": "bad"}
    assert parse_labels("pos=a good movie, neg = a bad movie") == {
        "pos": "a good movie",
        "neg": "a bad movie",
    }
    with pytest.raises(LabelError, match="description of 'neg' is empty"):
        parse_labels("pos=good,neg=")
    with pytest.raises(LabelError, match="label 2 is empty"):
        parse_labels("a,,b")
    with pytest.raises(LabelError, match="given twice"):
        parse_labels("Sports,politics,sports ")
    with pytest.raises(LabelError, match="two or more"):
        parse_labels("only")
    with pytest.raises(LabelError, match="exactly one"):
        check_template("no slot")
    with pytest.raises(LabelError, match="exactly one"):
        check_template("{} and {}")


KEYWORDS = {"sport": "goal match team", "food": "recipe oven garlic", "tech": "code server chip"}


def _keyword_texts(path: Path, labelled: bool = True) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"] if labelled else ["text"])
        for label, text in KEYWORDS.items():
            for i in range(4):
                row = [" ".join(text.split()[: 1 + i % 3])]
                w.writerow([*row, label] if labelled else row)
    return path


def test_zeroshot_scores_labelled_data_and_writes_a_bundle(tmp_path: Path):
    data = _keyword_texts(tmp_path / "t.csv")
    out = tmp_path / "zs"
    r = headstart.zeroshot(data, KEYWORDS, template="{}", model="test_words.tiny", out=out)
    assert r.metrics is not None and r.metrics["accuracy"] == 1.0  # the label words are the texts
    assert r.metrics["fitted_temperature"] > 0 and r.metrics["fitted"]["nll"] <= r.metrics["nll"]
    np.testing.assert_allclose(r.proba.sum(1), 1, atol=1e-6)
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 12 and all(row["correct"] == "1" for row in rows)
    p = headstart.load(out)  # the zero-shot model is a prototype bundle
    assert p.predict(["garlic oven"]) == ["food"]
    np.testing.assert_allclose(p.predict_proba(r.items), r.proba, atol=1e-5)
    written = headstart.add_class(out, "music", ["guitar drum song", "song drum"])
    assert headstart.load(written).predict(["guitar song drum"]) == ["music"]


def test_zeroshot_on_unlabelled_texts_and_label_mismatch(tmp_path: Path, cli_error):
    data = _keyword_texts(tmp_path / "u.csv", labelled=False)
    r = headstart.zeroshot(data, KEYWORDS, template="{}", model="test_words.tiny")
    assert r.metrics is None and len(r.items) == 12
    labelled = _keyword_texts(tmp_path / "l.csv")
    with pytest.raises(ValueError, match="not among --labels"):
        headstart.zeroshot(labelled, "sport,food", model="test_words.tiny")
    assert "label 2 is empty" in cli_error("zeroshot", str(labelled), "--labels", "sport,,food")
    assert "given twice" in cli_error("zeroshot", str(labelled), "--labels", "a,b,A")


def test_zeroshot_and_prior_methods_fit_like_any_method(tiny_texts: Path):
    zs = headstart.fit(tiny_texts, model="test_words.tiny", strategy="zeroshot", template="{}")
    assert zs.history[0]["stage"] == "zeroshot"
    pr = headstart.fit(tiny_texts, model="test_words.tiny", strategy="zeroshot_prior")
    assert pr.history[0]["prior_weight"] in (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
    assert pr.test_accuracy >= 0.8  # disjoint vocabularies: prototypes separate them
    _, text = _run("methods", "--json")
    names = {m["name"] for m in json.loads(text)}
    assert {"prototype", "zeroshot", "zeroshot_prior"} <= names


def test_image_zeroshot_offline_errors_say_what_to_do(tiny_images: Path, tmp_path: Path):
    from headstart.zoo import WeightsUnavailableError

    with pytest.raises(WeightsUnavailableError, match="--weights DIR"):
        headstart.zeroshot(
            tiny_images, "circle,square,stripes", model="openai/clip-vit-base-patch32"
        )
    with pytest.raises(ValueError, match="image-text model"):
        headstart.zeroshot(tiny_images, "circle,square,stripes")
    (tmp_path / "w.safetensors").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        headstart.zeroshot(tiny_images, "circle,square,stripes", weights=tmp_path / "w.safetensors")


# -- episodes ----------------------------------------------------------------------------


def test_episodes_on_separable_features_and_interval(tiny_images: Path):
    rng = np.random.default_rng(0)
    centres = np.eye(6, 8) * 6  # six directions: cl2n keeps direction, drops length
    x = np.concatenate([c + rng.normal(size=(30, 8)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(6), 30)
    accs = episode_accuracies(x, y, ways=5, shots=1, queries=10, episodes=50)
    assert accs.shape == (50,) and accs.mean() > 0.95
    noise = rng.normal(size=x.shape).astype(np.float32)
    assert episode_accuracies(noise, y, 5, 1, 10, 200).mean() < 0.35  # chance is 0.2
    rep = headstart.fewshot_eval(
        tiny_images, ways=3, shots="1,2", episodes=20, queries=5, model="test_cnn.tiny"
    )
    assert [r["shots"] for r in rep["rows"]] == [1, 2]
    a = rep["rows"][0]["accuracy"]
    assert a["lo"] <= a["mean"] <= a["hi"] and a["n"] == 20


def test_episode_requests_the_data_cannot_meet_are_one_line(tiny_images: Path, cli_error):
    with pytest.raises(EpisodeError, match="--shots 10"):
        headstart.fewshot_eval(tiny_images, ways=3, shots="10", queries=5, model="test_cnn.tiny")
    with pytest.raises(EpisodeError, match="only 3 classes"):
        headstart.fewshot_eval(tiny_images, ways=5, shots="1", model="test_cnn.tiny")
    with pytest.raises(EpisodeError, match="positive"):
        parse_shots("0,5")
    assert "--shots" in cli_error("fewshot-eval", str(tiny_images), "--shots", "x")
    err = cli_error(
        "fewshot-eval", str(tiny_images), "--ways", "3", "--shots", "20", "--model", "test_cnn.tiny"
    )
    assert "--shots 20" in err and "largest has 12" in err


def _tiny_clip(folder: Path) -> Path:
    """A randomly initialised, tiny CLIP saved as save_pretrained would (no download)."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPTokenizer,
        CLIPVisionConfig,
    )

    torch.manual_seed(0)
    small = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1}
    text = CLIPTextConfig(vocab_size=60, max_position_embeddings=32, num_attention_heads=2, **small)
    vision = CLIPVisionConfig(image_size=32, patch_size=8, num_attention_heads=2, **small)
    config = CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=8
    )
    CLIPModel(config).save_pretrained(folder)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_image_zeroshot_from_a_local_clip_folder(tiny_images: Path, tmp_path: Path):
    folder = _tiny_clip(tmp_path / "clip")
    out = tmp_path / "zs-images"
    r = headstart.zeroshot(tiny_images, "circle,square,stripes", weights=folder, out=out)
    assert r.model == "clip" and r.proba.shape == (36, 3)
    np.testing.assert_allclose(r.proba.sum(1), 1, atol=1e-5)
    assert r.metrics is not None and r.metrics["n"] == 36  # scored against the folders
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 36 and {row["label"] for row in rows} == {"circle", "square", "stripes"}
    assert not (out / "headstart.json").exists()  # no bundle: CLIP is not a zoo backbone


def test_compare_shots_curve_with_few_shot_methods(tiny_texts: Path, tmp_path: Path, store):
    result = headstart.compare(
        tiny_texts,
        tmp_path / "cmp",
        strategies="baseline,prototype,zeroshot_prior",
        seeds=2,
        shots="2,all",
        store=store,
        model="test_words.tiny",
    )
    rows = {(r["strategy"], r["shots"]) for r in result.report["summary"]}
    assert {("prototype", 2), ("prototype", "all"), ("zeroshot_prior", 2)} <= rows
    assert result.summary("prototype", "all")["accuracy"]["mean"] >= 0.8
