"""Audio items: decoding, resampling, silence trimming, fixed-length clips, log-mel features.

Files are decoded with ``soundfile`` (libsndfile: WAV, FLAC, OGG/Vorbis, and MP3 where the
library has the decoder), mixed down to mono by averaging the channels, and resampled
with a polyphase filter (``scipy.signal.resample_poly``). A clip is brought to a fixed
length by trimming leading and trailing silence (frames more than ``silence_db`` below
the loudest), then cutting the end or padding it with zeros.
"""

from __future__ import annotations

import hashlib
import io
from math import gcd
from pathlib import Path
from typing import NamedTuple

import numpy as np


def _extensions() -> frozenset[str]:
    import soundfile as sf

    formats = sf.available_formats()
    exts = {".wav", ".flac", ".ogg", ".oga"}
    if "MP3" in formats:
        exts.add(".mp3")
    return frozenset(exts)


AUDIO_EXTENSIONS = _extensions()


class Audio(NamedTuple):
    """Decoded mono samples (float32 in [-1, 1]) and their sample rate (Hz)."""

    samples: np.ndarray
    rate: int


def read_audio(path: str | Path | bytes) -> Audio:
    """Decode a file (or its bytes) to mono float32; raises ``ValueError`` on an empty one."""
    import soundfile as sf

    source = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    data, rate = sf.read(source, dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise ValueError("empty audio (0 samples)")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise ValueError("audio with non-finite samples")
    return Audio(np.ascontiguousarray(mono, dtype=np.float32), int(rate))


def check_audio(path: Path) -> str:
    """Decode the file fully; return the sha1 of its bytes. Raises on a bad or empty file."""
    raw = path.read_bytes()
    read_audio(raw)
    return hashlib.sha1(raw).hexdigest()


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` at ``rate`` Hz resampled to ``target`` Hz (polyphase, anti-aliased)."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(samples, target // g, rate // g).astype(np.float32)


def trim_silence(samples: np.ndarray, rate: int, silence_db: float = 40.0) -> np.ndarray:
    """Drop leading and trailing 10 ms frames whose RMS is more than ``silence_db`` below
    the loudest frame's (all silent: returned unchanged)."""
    hop = max(1, rate // 100)
    n = len(samples) // hop
    if n == 0:
        return samples
    rms = np.sqrt((samples[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(1))
    peak = rms.max()
    if peak <= 0:
        return samples
    loud = np.flatnonzero(rms >= peak * 10 ** (-silence_db / 20))
    return samples[loud[0] * hop : (loud[-1] + 1) * hop]


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """The first ``length`` samples, zero-padded at the end when shorter."""
    out = np.zeros(length, dtype=np.float32)
    n = min(length, len(samples))
    out[:n] = samples[:n]
    return out


def clip(
    audio: Audio, rate: int, seconds: float, trim: bool = True, lead: float = 0.0
) -> np.ndarray:
    """One fixed-length clip at ``rate`` Hz: resampled, silence trimmed (``trim``),
    ``lead`` seconds of zeros in front, cut or padded to ``round(seconds * rate)`` samples."""
    x = resample(audio.samples, audio.rate, rate)
    if trim:
        x = trim_silence(x, rate)
    if lead > 0:
        x = np.concatenate([np.zeros(round(lead * rate), dtype=np.float32), x])
    return fit_length(x, round(seconds * rate))


def mel_filterbank(rate: int, n_fft: int, n_mels: int, fmin: float = 20.0) -> np.ndarray:
    """Triangular filters on the HTK mel scale ``m = 2595 log10(1 + f / 700)``, shape
    ``(n_mels, n_fft // 2 + 1)``, each normalised to unit area."""

    def to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def from_mel(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = from_mel(np.linspace(to_mel(np.array(fmin)), to_mel(np.array(rate / 2)), n_mels + 2))
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs) / np.maximum(hi - mid, 1e-9)
    bank = np.maximum(0.0, np.minimum(up, down))
    return bank / np.maximum(bank.sum(1, keepdims=True), 1e-9)


def log_mel(
    samples: np.ndarray, rate: int, n_mels: int = 40, win_ms: float = 25.0, hop_ms: float = 10.0
) -> np.ndarray:
    """Log mel energies ``log(M |STFT|² + 1e-6)``, Hann window, shape ``(frames, n_mels)``."""
    win = round(rate * win_ms / 1000)
    hop = round(rate * hop_ms / 1000)
    n_fft = 1 << (win - 1).bit_length()
    x = samples if len(samples) >= win else np.pad(samples, (0, win - len(samples)))
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop] * np.hanning(win)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2
    return np.log(power @ mel_filterbank(rate, n_fft, n_mels).T + 1e-6).astype(np.float32)


def mfcc(samples: np.ndarray, rate: int, n_mfcc: int = 20, n_mels: int = 40) -> np.ndarray:
    """Mel-frequency cepstral coefficients: the orthonormal DCT-II of :func:`log_mel` over
    the mel axis, first ``n_mfcc`` kept, shape ``(frames, n_mfcc)``."""
    from scipy.fft import dct

    return dct(log_mel(samples, rate, n_mels), type=2, axis=1, norm="ortho")[:, :n_mfcc]


__all__ = [
    "AUDIO_EXTENSIONS",
    "Audio",
    "check_audio",
    "clip",
    "fit_length",
    "log_mel",
    "mel_filterbank",
    "mfcc",
    "read_audio",
    "resample",
    "trim_silence",
]
