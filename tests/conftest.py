import pytest
import torch

import data


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def small():
    """A small synthetic data set (20k rows) shared by the fast tests."""
    return data.load("synthetic", rows=20_000)


class FitInterrupter:
    """Makes the sweep's ``fit`` raise KeyboardInterrupt at its ``at``-th call after ``arm``; counts the calls."""

    def __init__(self, monkeypatch):
        import benchmarks.harness.sweep as sweep

        self.sweep, self.real, self.monkeypatch, self.calls, self.at = sweep, sweep.fit, monkeypatch, 0, 0

    def arm(self, at: int) -> None:
        self.calls, self.at = 0, at
        self.monkeypatch.setattr(self.sweep, "fit", self._fit)

    def disarm(self) -> None:
        self.monkeypatch.setattr(self.sweep, "fit", self.real)

    def _fit(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.real(*args, **kwargs)


@pytest.fixture
def interrupter(monkeypatch):
    return FitInterrupter(monkeypatch)
