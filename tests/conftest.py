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
