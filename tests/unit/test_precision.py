"""Precision of end-to-end training: the auto decision (capability mocked) and a real
bf16 autocast step, which runs on any CPU (emulated where bf16 is not native)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from headstart.train import Stage
from headstart.train._engine import CrossEntropy, TensorStream, fit_stage
from headstart.train._precision import BF16_MARGIN, choose_precision, native_bf16_flag

AVX2 = ["fpu", "avx", "avx2", "fma"]
AMX = [*AVX2, "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]


def _never(bf16: bool) -> float:
    raise AssertionError("probed")


def test_auto_picks_fp32_without_native_bf16_and_says_why() -> None:
    choice = choose_precision("auto", _never, flags=AVX2, capability="AVX2")
    assert choice.used == "fp32" and choice.seconds == ()
    assert "no native bf16" in choice.reason and "AVX2" in choice.reason
    assert native_bf16_flag(AVX2) is None and native_bf16_flag(AMX) == "amx_bf16"


@pytest.mark.parametrize(("bf16_seconds", "used"), [(0.5, "bf16"), (0.95, "fp32")])
def test_auto_on_native_bf16_follows_the_probe(bf16_seconds: float, used: str) -> None:
    calls: list[bool] = []

    def step(bf16: bool) -> float:
        calls.append(bf16)
        return bf16_seconds if bf16 else 1.0

    choice = choose_precision("auto", step, flags=AMX, capability="AVX512")
    assert choice.used == used and calls == [False, True]
    assert dict(choice.seconds) == {"fp32": 1.0, "bf16": bf16_seconds}
    assert (bf16_seconds <= BF16_MARGIN) == (used == "bf16")
    assert "amx_bf16" in choice.reason


def test_forced_precisions_and_a_bad_value() -> None:
    assert choose_precision("fp32", _never, flags=AMX).used == "fp32"
    forced = choose_precision("bf16", _never, flags=AVX2, capability="AVX2")
    assert forced.used == "bf16" and "emulated" in forced.reason
    with pytest.raises(ValueError, match="choose one of"):
        choose_precision("fp16")


def _fit(precision: str, x: torch.Tensor, y: torch.Tensor) -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    stage = Stage("head", lr=1e-2, max_epochs=2, patience=5, augment=False)
    state = fit_stage(
        model, stage, {"train": TensorStream(x, y, 16)}, CrossEntropy(), precision=precision
    )
    return model, state


def test_a_real_bf16_step_trains_close_to_fp32() -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(48, 8)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 3, 48))
    m32, s32 = _fit("fp32", x, y)
    m16, s16 = _fit("bf16", x, y)
    assert s32.extra["precision"].used == "fp32" and s16.extra["precision"].used == "bf16"
    for a, b in zip(m32.parameters(), m16.parameters(), strict=True):
        assert a.dtype == b.dtype == torch.float32  # weights stay fp32 under autocast
        assert not torch.equal(a, b)  # bf16 arithmetic did run
        torch.testing.assert_close(a, b, atol=0.05, rtol=0.05)


def test_the_auto_probe_leaves_the_model_and_random_state_untouched(monkeypatch) -> None:
    """On a (mocked) native-bf16 CPU the probe runs both precisions for real; the trained
    result equals an fp32 run that never probed when the probe picks fp32."""
    from headstart.train import _precision

    monkeypatch.setattr(_precision, "native_bf16_flag", lambda flags=None: "amx_bf16")
    monkeypatch.setattr(_precision, "BF16_MARGIN", 0.0)  # bf16 never wins: fp32 kept
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(32, 8)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 3, 32))
    probed, state = _fit("auto", x, y)
    plain, _ = _fit("fp32", x, y)
    choice = state.extra["precision"]
    assert choice.used == "fp32" and set(dict(choice.seconds)) == {"fp32", "bf16"}
    for a, b in zip(probed.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b)
