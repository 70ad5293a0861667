"""Which engine a command runs on (options > environment > ``[tool.calibkit]``), the one-line
errors of bad settings, and the one-line refusals of the Dask engine: with ``--device``,
without the dask extra, with a scheduler that does not answer. Only the last needs dask."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cli import assert_exit, invoke, write_npz

from calibkit.engine.settings import EngineSettings, resolve_engine
from calibkit.errors import ExitStatus, InputError, UsageError


def _pyproject(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text("[project]\nname = 'x'\n\n[tool.calibkit]\n" + body)
    return path


def test_defaults_and_option_precedence(tmp_path: Path) -> None:
    assert resolve_engine(None, None, environ={}, pyproject=None) == EngineSettings("local")
    cfg = _pyproject(tmp_path, 'engine = "dask"\nscheduler = "tcp://cfg:1"\ndask-workers = 3\n')
    env = {"CALIBKIT_ENGINE": "dask", "CALIBKIT_SCHEDULER": "tcp://env:2"}
    got = resolve_engine(None, None, environ=env, pyproject=cfg)
    assert (got.engine, got.scheduler, got.workers, got.origin) == (
        "dask",
        "tcp://env:2",
        3,
        "environment",
    )
    got = resolve_engine(None, "tcp://opt:3", environ=env, pyproject=cfg)
    assert (got.engine, got.scheduler) == ("dask", "tcp://opt:3")
    got = resolve_engine(None, None, environ={}, pyproject=cfg)
    assert (got.engine, got.scheduler, got.workers) == ("dask", "tcp://cfg:1", 3)
    assert got.origin == f"{cfg} [tool.calibkit]"


def test_local_in_a_higher_layer_overrides_a_configured_cluster(tmp_path: Path) -> None:
    cfg = _pyproject(tmp_path, 'scheduler = "tcp://cfg:1"\ndask-workers = 2\n')
    assert resolve_engine(None, None, environ={}, pyproject=cfg).engine == "dask"
    for got in (
        resolve_engine("local", None, environ={}, pyproject=cfg),
        resolve_engine(None, None, environ={"CALIBKIT_ENGINE": "local"}, pyproject=cfg),
    ):
        assert got == EngineSettings("local", None, None, got.origin)


@pytest.mark.parametrize(
    ("engine", "scheduler", "environ", "body", "message"),
    [
        (
            "local",
            "tcp://h:1",
            {},
            "",
            "scheduler attaches to a Dask cluster; it does not go with engine='local'",
        ),
        (
            None,
            None,
            {"CALIBKIT_ENGINE": "local", "CALIBKIT_SCHEDULER": "tcp://h:1"},
            "",
            "CALIBKIT_ENGINE: a scheduler attaches to a Dask cluster; it does not go with the "
            "local engine",
        ),
        (
            None,
            None,
            {"CALIBKIT_ENGINE": "spark"},
            "",
            "CALIBKIT_ENGINE: the engine must be one of local, dask; got 'spark'",
        ),
        (
            None,
            None,
            {"CALIBKIT_ENGINE": "dask", "CALIBKIT_DASK_WORKERS": "two"},
            "",
            "CALIBKIT_DASK_WORKERS: the number of Dask workers must be an integer >= 1",
        ),
        (
            None,
            None,
            {"CALIBKIT_ENGINE": "dask", "CALIBKIT_DASK_WORKERS": "0"},
            "",
            "CALIBKIT_DASK_WORKERS: the number of Dask workers must be an integer >= 1",
        ),
        (
            None,
            None,
            {},
            'engine = "dask"\ndask-workers = 2.5\n',
            "{cfg} [tool.calibkit]: the number of Dask workers must be an integer >= 1",
        ),
        (
            None,
            None,
            {},
            'engine = "dask"\ndask-workers = true\n',
            "{cfg} [tool.calibkit]: the number of Dask workers must be an integer >= 1",
        ),
        (
            None,
            None,
            {},
            'engin = "dask"\n',
            "{cfg}: unknown key 'engin' in [tool.calibkit] (known: engine, scheduler, "
            "dask-workers)",
        ),
        (
            None,
            None,
            {},
            'engine = "local"\nscheduler = "tcp://h:1"\n',
            "{cfg} [tool.calibkit]: a scheduler attaches to a Dask cluster; it does not go with "
            "the local engine",
        ),
        (
            None,
            None,
            {},
            "scheduler = 8786\n",
            "{cfg} [tool.calibkit]: the scheduler must be an address such as tcp://host:8786",
        ),
        (
            None,
            None,
            {},
            "engine = 1\n",
            "{cfg} [tool.calibkit]: the engine must be one of local, dask; got 1",
        ),
    ],
)
def test_bad_settings_are_one_usage_error(
    tmp_path: Path, engine: Any, scheduler: Any, environ: Any, body: str, message: str
) -> None:
    cfg = _pyproject(tmp_path, body)
    with pytest.raises(UsageError) as err:
        resolve_engine(engine, scheduler, environ=environ, pyproject=cfg)
    assert str(err.value) == message.format(cfg=cfg)


def test_a_lower_layers_bad_workers_do_not_matter_on_the_local_engine(tmp_path: Path) -> None:
    cfg = _pyproject(tmp_path, "dask-workers = 0\n")
    assert resolve_engine(None, None, environ={}, pyproject=cfg).engine == "local"


def test_nearest_pyproject_is_found_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pyproject(tmp_path, 'engine = "dask"\ndask-workers = 2\n')
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    got = resolve_engine(None, None, environ={})
    assert (got.engine, got.workers) == ("dask", 2)


# ---------------------------------------------------------------------------------------------
# the CLI's one-line refusals


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_npz(
        tmp_path / "p.npz", logits=rng.normal(size=(20, 3)), labels=rng.integers(0, 3, 20)
    )


def _one_line(result: Any, code: int) -> str:
    assert_exit(result, code)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calibkit: error: ")
    return lines[0][len("calibkit: error: ") :]


def test_device_with_dask_is_refused(runner: Any, npz: Path) -> None:
    result = invoke(runner, "ece", npz, "--device", "cpu", "--engine", "dask")
    assert _one_line(result, ExitStatus.BAD_INPUT) == (
        "--device computes with torch on this machine; it does not go with --engine dask"
    )


def test_env_setting_errors_are_one_line(runner: Any, npz: Path) -> None:
    result = invoke(runner, "ece", npz, env={"CALIBKIT_ENGINE": "spark"})
    assert "CALIBKIT_ENGINE" in _one_line(result, ExitStatus.BAD_INPUT)
    result = invoke(runner, "ece", npz, "--engine", "local", "--scheduler", "tcp://h:1")
    assert _one_line(result, ExitStatus.BAD_INPUT) == (
        "--scheduler attaches to a Dask cluster; it does not go with --engine local"
    )


@pytest.mark.parametrize("command", ["ece", "fit-temp", "sweep-temp", "check", "compare"])
def test_without_the_extra_one_line_names_the_install(
    runner: Any, npz: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    result = invoke(runner, command, npz, "--engine", "dask")
    message = _one_line(result, ExitStatus.BAD_INPUT)
    assert "pip install 'calibkit[dask]'" in message and message.startswith("--engine dask")


def test_unreachable_scheduler_is_one_line_exit_3(
    runner: Any, npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    from calibkit.engine import dask_executor

    with socket.socket() as s:  # a local port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT", 2)
    address = f"tcp://127.0.0.1:{port}"
    result = invoke(runner, "ece", npz, "--scheduler", address)
    message = _one_line(result, ExitStatus.ENGINE_FAILED)
    assert message.startswith(f"dask: cannot reach the scheduler at {address}")
    result = invoke(runner, "ece", npz, env={"CALIBKIT_SCHEDULER": address})
    assert _one_line(result, ExitStatus.ENGINE_FAILED) == message


def test_engine_help_names_the_config_table(runner: Any) -> None:
    result = invoke(runner, "ece", "--help", env={"COLUMNS": "300"})
    assert_exit(result, ExitStatus.OK)
    assert "CALIBKIT_ENGINE or [tool.calibkit] in pyproject.toml" in result.stdout  # not markup


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[tool]\ncalibkit = "x"\n', "[tool.calibkit] must be a table; got 'x'"),
        # (``tool = 5`` in a project that never mentions calibkit is not read at all: no command
        # but check, which reads it for its own table, fails on another tool's settings)
        ('tool = 5\n[tool2]\nx = "calibkit"\n', "[tool] must be a table; got 5"),
    ],
)
def test_config_levels_of_the_wrong_type(tmp_path: Path, body: str, message: str) -> None:
    """Regression: ``[tool] calibkit = "x"`` lost check's "; got 'x'" (the engine's settings,
    read first, said it without), and ``tool = 5`` was ignored by every command but check."""
    cfg = tmp_path / "pyproject.toml"
    cfg.write_text(body)
    with pytest.raises(InputError) as err:  # the error check's configuration gives
        resolve_engine(None, None, environ={}, pyproject=cfg)
    assert str(err.value) == f"{cfg}: {message}"


def test_the_check_sub_table_is_checks_to_read(tmp_path: Path) -> None:
    """Regression: ``check = [1, 2]`` in [tool.calibkit] was an unknown key of the engine's
    settings; it is check's ([tool.calibkit.check] must be a table: check says so)."""
    cfg = _pyproject(tmp_path, "check = [1, 2]\n")
    assert resolve_engine(None, None, environ={}, pyproject=cfg).engine == "local"
