"""The GE2E speaker encoder of ``resemblyzer`` as a trainable audio backbone.

Resemblyzer's network (Wan et al. 2018, "Generalized end-to-end loss for speaker
verification"): a 3-layer LSTM (256 units) over 40-band mel power frames (25 ms Hann
windows every 10 ms, 16 kHz), its last hidden state through ``Linear(256, 256)``, ReLU and
L2 normalisation: a 256-d embedding of a 1.6 s (160-frame) window. The weights are the
``pretrained.pt`` inside the installed ``resemblyzer`` wheel; the package itself is never
imported (it imports librosa and webrtcvad at import time), so ``pip install --no-deps
resemblyzer`` is enough. The mel front end here reproduces ``librosa.feature.melspectrogram``
(centred zero-padded STFT, Slaney mel filters) in torch; resemblyzer's volume
normalisation (to -30 dBFS, raising only) is applied to each clip.

Blocks: ``lstm`` (features: the last hidden state) and ``embedding`` (linear, ReLU, L2).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from headstart.zoo._audio import AudioBackbone
from headstart.zoo._spec import BackboneSpec
from headstart.zoo._weights import read_state_dict

N_FFT, HOP, N_MELS, FRAMES, HIDDEN = 400, 160, 40, 160, 256
TARGET_DBFS = -30.0


def slaney_mel_filterbank(rate: int = 16000, n_fft: int = N_FFT, n_mels: int = N_MELS):
    """librosa's default mel filters (``htk=False, norm="slaney"``, 0 Hz to Nyquist):
    triangles equally spaced on the Slaney mel scale (linear, 200/3 Hz per mel, below
    1 kHz; logarithmic, ``log(6.4) / 27`` per mel, above), each scaled by
    ``2 / (f_hi - f_lo)``. Shape ``(n_mels, n_fft // 2 + 1)``."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp

    def to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=np.float64)
        mel = f / f_sp
        high = f >= min_log_hz
        mel[high] = min_log_mel + np.log(f[high] / min_log_hz) / logstep
        return mel

    def to_hz(m: np.ndarray) -> np.ndarray:
        hz = f_sp * m
        high = m >= min_log_mel
        hz[high] = min_log_hz * np.exp(logstep * (m[high] - min_log_mel))
        return hz

    fft = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(np.array([0.0]))[0], to_mel(np.array([rate / 2]))[0],
                              n_mels + 2))  # fmt: skip
    diff = np.diff(edges)
    ramps = edges[:, None] - fft[None, :]
    lower = -ramps[:-2] / diff[:-1, None]
    upper = ramps[2:] / diff[1:, None]
    bank = np.maximum(0.0, np.minimum(lower, upper))
    return (bank * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


class GE2EBackbone(AudioBackbone):
    """Resemblyzer's voice encoder: ``(N, samples)`` 16 kHz clips to ``(N, 256)``."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__(spec, ["lstm", "embedding"])
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        bank = torch.from_numpy(slaney_mel_filterbank(spec.preprocess.sample_rate))
        self.register_buffer("bank", bank, persistent=False)
        self.lstm = nn.LSTM(N_MELS, HIDDEN, 3, batch_first=True)
        self.linear: nn.Module | None = nn.Linear(HIDDEN, HIDDEN)

    def blocks(self) -> list[tuple[str, nn.Module]]:
        pairs: list[tuple[str, nn.Module]] = [("lstm", self.lstm)]
        if self.linear is not None:
            pairs.append(("embedding", self.linear))
        return pairs

    @property
    def feature_dim(self) -> int:
        return HIDDEN

    def _truncate(self, keep: int) -> None:
        if keep < 2:
            self.linear = None

    def mels(self, x: torch.Tensor) -> torch.Tensor:
        """Mel power frames ``(N, 160, 40)`` of volume-normalised clips ``(N, samples)``."""
        rms = x.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-9)
        gain = (10 ** (TARGET_DBFS / 20) / rms).clamp_min(1.0)  # raise quiet clips only
        spec = torch.stft(
            x * gain, N_FFT, HOP, N_FFT, self.window, center=True, pad_mode="constant",
            return_complex=True,
        )  # fmt: skip
        mel = torch.einsum("mf,bft->btm", self.bank, spec.abs() ** 2)
        if mel.shape[1] < FRAMES:
            mel = nn.functional.pad(mel, (0, 0, 0, FRAMES - mel.shape[1]))
        return mel[:, :FRAMES]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(self.mels(x.float()))
        h = hidden[-1]
        if self.linear is None:
            return h
        e = torch.relu(self.linear(h))
        return e / e.norm(dim=1, keepdim=True).clamp_min(1e-9)


def resemblyzer_weights(locator: str) -> Path:
    """``pretrained.pt`` in the installed package ``locator``, found without importing it."""
    found = importlib.util.find_spec(locator)
    if found is None or not found.submodule_search_locations:
        raise ModuleNotFoundError(f"the package {locator!r} is not installed")
    return Path(next(iter(found.submodule_search_locations))) / "pretrained.pt"


def build_ge2e(spec: BackboneSpec, pretrained: bool = True) -> GE2EBackbone:
    """The GE2E encoder, with resemblyzer's weights (``--weights FILE``: a checkpoint with
    a ``model_state`` entry, or a plain state dict) or, with ``pretrained=False``, seeded
    random ones (the from-scratch baseline)."""
    backbone = GE2EBackbone(spec)
    if pretrained:
        kind = spec.weights.kind
        path = resemblyzer_weights(spec.weights.locator) if kind == "package" else None
        path = Path(spec.weights.locator) if kind == "file" else path
        if path is not None and path.suffix == ".safetensors":  # a local/ entry
            state = read_state_dict(path)
        elif path is not None:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("model_state", state)
        if path is not None:
            keep = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
            backbone.load_state_dict(keep, strict=True)
    return backbone.eval()


__all__ = ["GE2EBackbone", "build_ge2e", "resemblyzer_weights", "slaney_mel_filterbank"]
