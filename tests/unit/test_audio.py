"""Audio as a modality: decoding and clips, the spoken-word builder, the packaged speech
embedding, the MFCC baseline, fit / predict / evaluate / compare / bundle, the report."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.data import read_data
from headstart.data._audio import clip, fit_length, log_mel, read_audio, resample, trim_silence
from headstart.datasets import add_noise, spoken_words_folder
from headstart.methods._base import FrozenBackboneError
from headstart.methods.mfcc.method import mfcc_statistics
from headstart.zoo import DEFAULT_MODELS, WeightsUnavailableError, create_backbone

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng; ./setup.sh does it)",
)
WORDS = ("yes", "no", "stop", "go")


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 words x 2 voices x 2 speeds x 2 pitches = 32 noisy clips (about a second)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("spoken") / "words"
    return spoken_words_folder(
        root, WORDS, ("en-us", "en-gb"), speeds=(140, 180), pitches=(40, 60), snr_db=25
    )


def _tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_decoding_resampling_and_fixed_length_clips(tmp_path: Path) -> None:
    stereo = np.stack([_tone(0.5, 22050), np.zeros(11025, np.float32)], axis=1)
    sf.write(tmp_path / "a.flac", stereo, 22050)
    audio = read_audio(tmp_path / "a.flac")
    assert audio.rate == 22050 and audio.samples.ndim == 1  # mono: channels averaged
    assert np.abs(audio.samples).max() == pytest.approx(0.25, abs=1e-3)
    assert len(resample(audio.samples, 22050, 16000)) == 8000
    padded = np.concatenate([np.zeros(4000), _tone(0.25, 16000), np.zeros(4000)])
    assert len(trim_silence(padded.astype(np.float32), 16000)) == 4000
    assert fit_length(np.ones(10, np.float32), 4).tolist() == [1, 1, 1, 1]
    assert fit_length(np.ones(2, np.float32), 4).tolist() == [1, 1, 0, 0]
    x = clip(audio, 16000, 1.0, trim=True, lead=0.25)
    assert x.shape == (16000,) and not x[:4000].any() and x[4000:8000].any()
    assert log_mel(x, 16000).shape == (98, 40)
    assert mfcc_statistics(x).shape == (140,)


def test_unreadable_and_empty_audio_are_skipped_and_listed(tmp_path: Path) -> None:
    for label in ("hi", "lo"):
        (tmp_path / label).mkdir()
        for i in range(4):
            freq = 300 if label == "lo" else 1200
            sf.write(tmp_path / label / f"{i}.wav", _tone(0.3 + 0.01 * i, 8000, freq), 8000)
    (tmp_path / "hi" / "broken.wav").write_bytes(b"RIFF not really")
    sf.write(tmp_path / "lo" / "empty.wav", np.zeros(0, np.float32), 8000)
    (tmp_path / "lo" / "notes.txt").write_text("x")
    data = read_data(tmp_path, val=0.25, test=0.25)
    assert data.modality == "audio" and len(data) == 8
    reasons = {Path(s.where).name: s.reason for s in data.skipped}
    assert reasons["broken.wav"].startswith("unreadable audio")
    assert "empty audio" in reasons["empty.wav"]
    assert "extension" in reasons["notes.txt"]


def test_add_noise_hits_the_requested_snr() -> None:
    x = _tone(1.0, 16000)
    noisy = add_noise(x, 10.0, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(x**2) / np.mean((noisy - x) ** 2))
    assert snr == pytest.approx(10.0, abs=0.2)


@needs_espeak
def test_spoken_words_folder_layout_and_refusal(spoken: Path, tmp_path: Path) -> None:
    files = sorted(spoken.rglob("*.wav"))
    assert len(files) == 32 and {f.parent.name for f in files} == set(WORDS)
    assert sf.info(files[0]).samplerate == 16000
    with pytest.raises(FileExistsError):
        spoken_words_folder(spoken, ("yes",), ("en-us",), (160,), (50,))
    shift = spoken_words_folder(
        tmp_path / "s", ("yes", "no"), ("en-us", "en-gb"), (160,), (50,), test_voices=("en-gb",)
    )
    assert {p.name for p in (shift / "test" / "yes").iterdir()} == {"en-gb_s160_p50.wav"}


@needs_espeak
def test_fit_default_model_predict_evaluate_bundle(spoken: Path, tmp_path: Path) -> None:
    assert DEFAULT_MODELS["audio"] == "speech_embedding.openwakeword"
    result = headstart.fit(spoken, tmp_path / "run", val=0.25, test=0.25, seed=0)
    assert result.metrics["model"] == DEFAULT_MODELS["audio"]
    assert result.metrics["splits"]["test"]["accuracy"] >= 0.5  # 4 classes: chance is 0.25
    loaded = headstart.load_bundle(tmp_path / "run")
    test_items, _, _ = result.data.take("test")
    assert loaded.predict(test_items) == result.predict(test_items)
    report = loaded.evaluate(spoken)
    assert report["accuracy"] >= 0.6
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html  # spectrogram thumbnails of the audio items
    from headstart.bundle._export import ExportError, export_onnx

    with pytest.raises(ExportError, match="ONNX export of audio models is not supported"):
        export_onnx(tmp_path / "run")


@needs_espeak
def test_cli_fit_without_model_then_predict(spoken: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    done = runner.invoke(app, ["fit", str(spoken), "--out", str(out), "--val", "0.25"])
    assert done.exit_code == 0, done.output
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope")
    files = [str(f) for f in sorted((spoken / "go").iterdir())[:3]]
    done = runner.invoke(app, ["predict", str(out), *files, str(bad), "--json"])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.output[done.output.index("[") :])
    assert [r["input"] for r in rows] == files
    assert "unreadable audio" in done.output
    done = runner.invoke(app, ["evaluate", str(out), str(spoken), "--json"])
    assert done.exit_code == 0, done.output
    scored = json.loads(done.output[done.output.index("{") :])
    assert scored["n"] == 32 and scored["accuracy"] >= 0.6
    assert sum(map(sum, scored["confusion"])) == 32


@needs_espeak
def test_serve_takes_audio_uploads_and_paths(spoken: Path, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from headstart.bundle._runtime import load_predictor
    from headstart.serve import create_app

    out = tmp_path / "tiny"
    fitted = headstart.fit(spoken, out, model="test_audio.tiny", val=0.25, test=0.25)
    client = TestClient(create_app(load_predictor(out, "torch"), "torch", allow_paths=True))
    assert client.get("/metadata").json()["accepts"] == ["paths", "multipart files"]
    paths = [str(p) for p in sorted((spoken / "stop").iterdir())[:3]]
    want = fitted.predict(paths)
    response = client.post("/predict", json={"paths": paths})
    assert response.status_code == 200, response.text
    assert [r["label"] for r in response.json()] == want
    files = [("files", (Path(p).name, Path(p).read_bytes(), "audio/wav")) for p in paths]
    response = client.post("/predict", files=files)
    assert response.status_code == 200, response.text
    assert [r["label"] for r in response.json()] == want
    bad = client.post("/predict", files=[("files", ("x.wav", b"RIFF no", "audio/wav"))])
    assert bad.status_code == 422 and "x.wav: unreadable audio" in bad.json()["error"]
    texts = client.post("/predict", json={"texts": ["yes"]})
    assert texts.status_code == 422 and "takes audio files" in texts.json()["error"]


@needs_espeak
def test_cli_rank_scores_the_audio_backbones(spoken: Path) -> None:
    models = "speech_embedding.openwakeword,test_audio.tiny"
    done = CliRunner().invoke(app, ["rank", str(spoken), "--models", models, "--json", "-q"])
    assert done.exit_code == 0, done.output
    ranking = json.loads(done.output[done.output.index("{") :])
    assert {r["model"] for r in ranking["rows"]} == set(models.split(","))
    assert ranking["recommended"]["model"] == "speech_embedding.openwakeword"
    assert ranking["rows"][0]["feature_dim"] == 192


@needs_espeak
def test_adapt_runs_on_a_cross_voice_shift(tmp_path: Path) -> None:
    shift = spoken_words_folder(
        tmp_path / "shift", WORDS, ("en-us", "en-gb"), (140, 180), (40, 60), 25, ("en-gb",)
    )
    out = tmp_path / "ad"
    done = CliRunner().invoke(
        app, ["adapt", str(shift / "train"), str(shift / "test"), "--out", str(out), "-q"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads((out / "adapt.json").read_text(encoding="utf-8"))
    assert report["model"] == DEFAULT_MODELS["audio"]
    assert report["chosen"] in {row["method"] for row in report["candidates"]}
    assert headstart.load_bundle(out).predict([str(next((shift / "test" / "no").iterdir()))])


@needs_espeak
def test_frozen_backbone_refuses_finetune_and_compare_skips_it(
    spoken: Path, tmp_path: Path
) -> None:
    with pytest.raises(FrozenBackboneError, match="frozen feature extractor"):
        headstart.fit(spoken, strategy="finetune", val=0.25, test=0.25)
    result = headstart.compare(spoken, tmp_path / "cmp", seeds=1, val=0.25, test=0.25)
    assert result.report["strategies"] == ["mfcc", "extract"]  # scratch, finetune: not run
    asked = "baseline,extract,finetune,bitfit,lora"
    result = headstart.compare(spoken, tmp_path / "cmp", asked, seeds=1, val=0.25, test=0.25)
    assert result.report["strategies"] == ["mfcc", "extract"]
    assert {row["strategy"] for row in result.report["summary"]} == {"mfcc", "extract"}


@needs_espeak
def test_trainable_audio_backbone_finetunes(spoken: Path) -> None:
    result = headstart.fit(
        spoken, model="test_audio.tiny", strategy="finetune", val=0.25, test=0.25, epochs=2
    )
    assert result.metrics["strategy"] == "finetune"
    proba = result.predict_proba([str(next((spoken / "yes").iterdir()))])
    assert proba.shape == (1, 4) and np.isclose(proba.sum(), 1.0)


def test_report_shows_audio_as_spectrograms_in_data_and_mistakes(tmp_path: Path) -> None:
    from PIL import Image

    from headstart.evaluate._report_items import spectrogram_uri
    from headstart.evaluate._report_sections import data_section, mistakes_section

    low, high = tmp_path / "low.wav", tmp_path / "high.ogg"
    sf.write(low, _tone(0.5, 16000, 200.0), 16000)
    sf.write(high, _tone(0.5, 16000, 6000.0), 16000)
    rows = [
        {"item": str(low), "label": "lo", "predicted": "hi", "probability": 0.9, "correct": False},
        {"item": str(high), "label": "hi", "predicted": "hi", "probability": 0.8, "correct": True},
    ]
    mistakes = str(mistakes_section(rows))
    assert mistakes.count("data:image/png;base64,") == 1 and 'alt="low.wav"' in mistakes
    data = str(data_section(["hi", "lo"], {"test": {"hi": 1, "lo": 1}}, [], rows))
    assert data.count("data:image/png;base64,") == 2
    # low frequencies at the bottom: the 200 Hz tone darkens the bottom rows, 6 kHz the top
    for path, dark_half in ((low, "bottom"), (high, "top")):
        uri = spectrogram_uri(str(path))
        assert uri is not None
        png = base64.b64decode(uri.split(",", 1)[1])
        img = np.asarray(Image.open(io.BytesIO(png)), dtype=float)
        top, bottom = img[: len(img) // 2].mean(), img[len(img) // 2 :].mean()
        assert (bottom < top) if dark_half == "bottom" else (top < bottom)
    assert spectrogram_uri(str(tmp_path / "gone.wav")) is None


def test_hub_audio_encoder_is_a_clear_offline_error() -> None:
    with pytest.raises(WeightsUnavailableError, match="--weights FILE"):
        create_backbone("wav2vec2_base")


needs_resemblyzer = pytest.mark.skipif(
    importlib.util.find_spec("resemblyzer") is None,
    reason="resemblyzer is not installed (pip install --no-deps resemblyzer==0.1.4)",
)


def test_slaney_mel_filters_match_librosa() -> None:
    from headstart.zoo._ge2e import slaney_mel_filterbank

    bank = slaney_mel_filterbank(16000, 400, 40)
    assert bank.shape == (40, 201)
    # values of librosa.filters.mel(sr=16000, n_fft=400, n_mels=40) (librosa 0.10.2)
    assert bank[0, 1] == pytest.approx(0.0073902095, rel=1e-5)
    assert bank[0, 2] == pytest.approx(0.0124045210, rel=1e-5)
    assert int(bank[10].argmax()) == 20 and int(bank[39].argmax()) == 185
    assert bank.sum() == pytest.approx(0.9994972, rel=1e-5)


@needs_resemblyzer
def test_ge2e_encoder_loads_the_packaged_weights_and_cuts() -> None:
    import torch

    backbone = create_backbone("ge2e")
    assert backbone.num_parameters() == 1_423_616 and backbone.block_names == ["lstm", "embedding"]
    x = torch.from_numpy(np.stack([_tone(1.6, 16000, 300.0), _tone(1.6, 16000, 2000.0)]))
    with torch.no_grad():
        e = backbone(x)
        h = create_backbone("ge2e", layer="lstm")(x)
    assert e.shape == (2, 256) and h.shape == (2, 256)
    assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5) and (e >= 0).all()
    assert float(e[0] @ e[1]) < 0.99  # two different sounds, two different embeddings
    assert not torch.allclose(h, e)


@pytest.mark.slow
@needs_resemblyzer
@needs_espeak
def test_ge2e_extract_and_finetune(spoken: Path) -> None:
    extract = headstart.fit(spoken, model="ge2e", val=0.25, test=0.25, seed=0)
    assert extract.metrics["splits"]["test"]["accuracy"] >= 0.5  # chance is 0.25
    tuned = headstart.fit(
        spoken, model="ge2e", strategy="finetune", val=0.25, test=0.25, seed=0, epochs=1
    )
    assert tuned.metrics["strategy"] == "finetune"
    assert max(tuned.metrics["parameters"]["trainable_per_stage"].values()) > 1_000_000
