"""Fixtures shared by every test directory."""

import numpy as np
import pytest
from typer.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    """A Typer test runner; ``result.stdout`` and ``result.stderr`` are kept apart."""
    return CliRunner()


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so every generated input is the same from run to run."""
    return np.random.default_rng(20240607)
