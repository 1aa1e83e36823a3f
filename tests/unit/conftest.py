"""Unit-test settings: one torch thread (the tiny models only lose from threading on a
busy 2-core machine) and no progress bars."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from headstart import _progress


@pytest.fixture(autouse=True)
def _fast_and_quiet() -> Iterator[None]:
    threads, quiet = torch.get_num_threads(), _progress.is_quiet()
    torch.set_num_threads(1)
    _progress.set_quiet(True)
    yield
    torch.set_num_threads(threads)
    _progress.set_quiet(quiet)
