"""Fixtures shared by every test directory, and the hypothesis settings of every test."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

#: Every property test draws the same examples on every run (a CI run must not fail on an
#: example no earlier run drew); ``CALIBKIT_HYPOTHESIS_EXPLORE=1`` draws new ones, for a
#: session that looks for counterexamples. No deadlines: CI machines are slow and shared.
settings.register_profile(
    "calibkit",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CALIBKIT_HYPOTHESIS_EXPLORE") != "1",
)
settings.load_profile("calibkit")


@pytest.fixture
def runner() -> CliRunner:
    """A Typer test runner; ``result.stdout`` and ``result.stderr`` are kept apart."""
    return CliRunner()


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so every generated input is the same from run to run."""
    return np.random.default_rng(20240607)
