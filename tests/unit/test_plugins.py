"""Plugins (#14): a calibrator, metric, format or executor registered in a module outside
calibkit reaches the ``calibkit`` command, through ``CALIBKIT_PLUGINS`` or an entry point of
the group ``calibkit.plugins``, imported only when a registry lookup misses.

Every plugin module is written into ``tmp_path`` by the test that uses it, under a name of its
own; the registries are copied before each test and restored after it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _cli import invoke, one_error_line, write_npz
from typer.testing import CliRunner

from calibkit import plugins, readers
from calibkit.calibrators import registry
from calibkit.engine import executors
from calibkit.engine.executors import (
    SerialExecutor,
    executor_names,
    get_executor,
    register_executor,
    unregister_executor,
)
from calibkit.errors import UsageError
from calibkit.metrics import table

ROOT = Path(__file__).resolve().parents[2]

#: A plugin: a calibrator ``plugin-shift`` (adds ``shift`` to the logit of class 0) and a
#: gateable metric ``plugerr`` (the error rate, 1 - accuracy).
PLUGIN = """
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from calibkit.calibrators import registry
from calibkit.calibrators.base import CALIBRATOR_FORMAT, CalibratorBase, check_document
from calibkit.errors import InputError
from calibkit.metrics import table


@dataclass(frozen=True)
class PluginShift(CalibratorBase):
    method: ClassVar[str] = "plugin-shift"
    title: ClassVar[str] = "plugin shift"
    abbreviation: ClassVar[str] = "PS"
    calibrated_as: ClassVar[str] = "shifted"
    symbols: ClassVar[dict[str, str]] = {"shift": "s"}
    changes_argmax: ClassVar[bool] = True

    shift: float
    fitted_on: Any = None
    n_classes: Any = None

    @classmethod
    def fit_source(cls, source, **options):
        return cls(0.0, source.source, source.n_classes)

    @classmethod
    def from_parameters(cls, parameters):
        return cls(float(parameters["shift"]))

    @classmethod
    def from_dict(cls, doc, *, source="<calibrator>"):
        if check_document(doc, source) != cls.method:
            raise InputError(source, "not a plugin-shift calibrator")
        return cls(float(doc["shift"]), doc.get("fitted_on"), doc.get("n_classes"))

    def parameters(self):
        return {"shift": self.shift}

    def calibrated_logits(self, scores, kind):
        z = np.array(scores, dtype=np.float64)
        if kind == "probs":
            z = np.log(np.maximum(z, np.finfo(np.float64).tiny))
        z[:, 0] += self.shift
        return z

    def to_dict(self):
        return {"calibkit_calibrator": CALIBRATOR_FORMAT, "method": self.method,
                "shift": self.shift, "fitted_on": self.fitted_on, "n_classes": self.n_classes}


registry.register(PluginShift.method, PluginShift)
table.register(table.Metric(
    name="plugerr", label="plugin error rate", from_sums=lambda s: 1 - s.correct / s.total,
))
"""


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Plugins not yet loaded, no CALIBKIT_PLUGINS, and every registry restored afterwards."""
    monkeypatch.setattr(plugins, "_state", "new")
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    monkeypatch.setattr(table, "_TABLE", dict(table._TABLE))
    monkeypatch.setattr(readers, "_FORMATS", dict(readers._FORMATS))
    monkeypatch.setattr(executors, "_EXECUTORS", dict(executors._EXECUTORS))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("ck_"):
            del sys.modules[name]


def _write(folder: Path, name: str, text: str) -> str:
    (folder / f"{name}.py").write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def _data(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, size=300)
    logits = rng.normal(size=(300, 3)) + 2.0 * np.eye(3)[labels]
    return write_npz(tmp_path / "preds.npz", logits=logits, labels=labels), logits, labels


def _calibkit(
    tmp_path: Path, *args: object, plugins_env: str | None
) -> subprocess.CompletedProcess[str]:
    """A real ``python -m calibkit ARGS...`` with ``tmp_path`` on its path."""
    env = {k: v for k, v in os.environ.items() if k != plugins.ENV_VAR}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    if plugins_env is not None:
        env[plugins.ENV_VAR] = plugins_env
    return subprocess.run(
        [sys.executable, "-m", "calibkit", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )


# --------------------------------------------------------------------------------------------
# the command line, in a real process


def test_the_command_uses_a_calibrator_and_a_metric_from_a_plugin(tmp_path: Path) -> None:
    name = _write(tmp_path, "ck_demo_plugin", PLUGIN)
    path, logits, labels = _data(tmp_path)
    cal = tmp_path / "shift.json"
    cal.write_text(
        json.dumps({"calibkit_calibrator": 1, "method": "plugin-shift", "shift": 1.5}),
        encoding="utf-8",
    )
    out = tmp_path / "out.npz"

    # without the plugin: the method and the metric are unknown
    proc = _calibkit(tmp_path, "apply-temp", path, "--calibrator", cal, "--out", out,
                     plugins_env=None)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == f"calibkit: error: {cal}: unknown calibration method 'plugin-shift'\n"
    proc = _calibkit(tmp_path, "check", path, "--max", "plugerr=0.5", plugins_env=None)
    assert proc.returncode == 2 and "unknown metric 'plugerr'" in proc.stderr
    assert not out.exists()

    # with it: apply-temp --calibrator applies it
    proc = _calibkit(tmp_path, "apply-temp", path, "--calibrator", cal, "--out", out,
                     plugins_env=name)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "s = 1.5" in proc.stderr and "Traceback" not in proc.stderr
    with np.load(out) as got:
        want = logits.copy()
        want[:, 0] += 1.5
        np.testing.assert_allclose(got["logits"], want)
        np.testing.assert_array_equal(got["labels"], labels)

    # and check --max NAME= gates its metric, both ways
    error = float(np.mean(logits.argmax(axis=1) != labels))
    proc = _calibkit(tmp_path, "check", path, "--max", f"plugerr={error + 0.01}",
                     "--bootstrap", "100", plugins_env=name)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "plugin error rate" in proc.stdout
    proc = _calibkit(tmp_path, "check", path, "--max", f"plugerr={error / 2}",
                     "--bootstrap", "100", "--json", plugins_env=name)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    checks = json.loads(proc.stdout)["checks"]
    assert [c["metric"] for c in checks] == ["plugerr"] and not checks[0]["passed"]
    assert checks[0]["value"] == pytest.approx(error)


def test_a_broken_plugin_is_one_error_line_naming_it(tmp_path: Path) -> None:
    _write(tmp_path, "ck_broken_plugin", "raise RuntimeError('no GPU here')\n")
    path, _, _ = _data(tmp_path)
    proc = _calibkit(tmp_path, "check", path, "--max", "nosuch=0.5",
                     plugins_env="ck_broken_plugin")  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        "calibkit: error: plugin 'ck_broken_plugin' (CALIBKIT_PLUGINS): cannot import: "
        "RuntimeError: no GPU here\n"
    )


def test_a_missing_plugin_module_in_process(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, _ = _data(tmp_path)
    monkeypatch.setenv(plugins.ENV_VAR, " ck_not_there , ")
    message = one_error_line(invoke(runner, "check", path, "--max", "nosuch=0.5"))
    assert message == (
        "plugin 'ck_not_there' (CALIBKIT_PLUGINS): cannot import: "
        "ModuleNotFoundError: No module named 'ck_not_there'"
    )
    # tried once per process: the next miss is the registry's own error
    message = one_error_line(invoke(runner, "check", path, "--max", "nosuch=0.5"))
    assert message.startswith("--max: unknown metric 'nosuch'; known: ")


def test_start_up_imports_no_plugin_when_nothing_misses(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    _write(tmp_path, "ck_sentinel", f"open({str(marker)!r}, 'w').close()\n")
    path, _, _ = _data(tmp_path)
    code = (
        "import sys\n"
        "sys.argv = ['calibkit', *sys.argv[1:]]\n"
        "from calibkit._entry import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "sys.stderr.write('|' + ','.join(m for m in ('ck_sentinel', 'calibkit.plugins')"
        " if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env[plugins.ENV_VAR] = "ck_sentinel"
    for args in (["--help"], ["ece", str(path)], ["ece", str(path), "--json"]):
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.endswith("|"), (args, proc.stderr)
        assert not marker.exists(), args
    # a miss does import it (so the checks above could have seen it)
    script = (
        "import sys\n"
        "from calibkit.metrics import table\n"
        "try:\n"
        "    table.get('nosuch')\n"
        "except KeyError:\n"
        "    pass\n"
        "print('ck_sentinel' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.stdout == "True\n", proc.stderr
    assert marker.exists()


# --------------------------------------------------------------------------------------------
# in process: each registry looks the plugins up on a miss, once


def test_each_registry_loads_the_plugins_on_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _write(tmp_path, "ck_env_plugin", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV_VAR, name)
    assert "plugin-shift" not in registry.names() and not plugins.plugins_loaded()
    assert registry.get("temperature") is not None and not plugins.plugins_loaded()  # no miss
    assert table.get("ece").label == "ECE" and not plugins.plugins_loaded()
    cal = registry.from_dict({"calibkit_calibrator": 1, "method": "plugin-shift", "shift": 2.0})
    assert plugins.plugins_loaded() and name in sys.modules
    assert cal.parameters() == {"shift": 2.0}
    assert table.get("plugerr").label == "plugin error rate"
    assert "plugerr" in table.names(table.gateable())


@pytest.mark.parametrize(
    "lookup",
    [
        lambda: registry.get("plugin-shift"),
        lambda: table.get("plugerr"),
        lambda: table.resolve(["plugerr"]) or pytest.fail("not resolved"),
    ],
)
def test_calibrator_and_metric_lookups_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lookup: object
) -> None:
    name = _write(tmp_path, "ck_retry_plugin", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV_VAR, name)
    assert callable(lookup)
    lookup()
    assert plugins.plugins_loaded()


FORMAT_AND_EXECUTOR = """
import numpy as np

from calibkit import readers
from calibkit.engine.executors import SerialExecutor, register_executor

LOGITS = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]])
LABELS = np.array([0, 1, 0])


def list_keys(path, source):
    return ["logits", "labels"]


def read_arrays(path, keys, source):
    arrays = {"logits": LOGITS, "labels": LABELS}
    return {k: arrays[k] for k in (keys or arrays)}


class Counted(SerialExecutor):
    def __repr__(self):
        return "Counted()"


def setup():
    readers.register(readers.Format(name="plug", suffixes=(".plug",), module=__name__))
    register_executor("plugin-serial", Counted)
"""


def test_an_entry_point_registers_a_format_and_an_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "ck_ep_plugin", FORMAT_AND_EXECUTOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    calls: list[str] = []

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        calls.append(group)
        return [
            importlib.metadata.EntryPoint(
                name="demo", value="ck_ep_plugin:setup", group="calibkit.plugins"
            )
        ]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    from calibkit.loaders import read_predictions

    data = tmp_path / "preds.plug"
    data.write_bytes(b"anything")
    preds = read_predictions(data)  # the suffix misses: the plugin registers it
    assert calls == ["calibkit.plugins"]
    assert preds.kind == "logits" and preds.n_classes == 2
    np.testing.assert_array_equal(preds.labels, [0, 1, 0])
    assert readers.read_arrays(data, "labels")["labels"].tolist() == [0, 1, 0]
    assert repr(get_executor("plugin-serial")) == "Counted()"
    import calibkit.loaders

    assert ".plug" in calibkit.loaders.SUPPORTED_SUFFIXES  # read when asked, not a snapshot
    assert calls == ["calibkit.plugins"]  # once per process
    with pytest.raises(ValueError, match="unknown executor 'nope'"):
        get_executor("nope")
    assert calls == ["calibkit.plugins"]


def test_an_entry_point_naming_a_module_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "ck_ep_module", FORMAT_AND_EXECUTOR + "\nsetup()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [importlib.metadata.EntryPoint(name="m", value="ck_ep_module", group="g")]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda *, group: found)
    assert "plugin-serial" not in executor_names()
    assert repr(get_executor("plugin-serial")) == "Counted()"


def test_a_failing_entry_point_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [importlib.metadata.EntryPoint(name="bad", value="ck_nowhere:go", group="g")]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda *, group: found)
    with pytest.raises(UsageError) as err:
        registry.get("nosuch")
    assert str(err.value) == (
        "plugin 'bad' (entry point bad = ck_nowhere:go): cannot import: "
        "ModuleNotFoundError: No module named 'ck_nowhere'"
    )
    with pytest.raises(UsageError, match="unknown calibration method 'nosuch'"):
        registry.get("nosuch")  # tried once: now the registry's own error


def test_a_plugin_whose_lookup_misses_while_it_loads_does_not_recurse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        tmp_path,
        "ck_nested",
        """
        from calibkit.metrics import table
        try:
            table.get("not_yet")
        except KeyError:
            pass
        table.register(table.Metric(name="not_yet", label="later"))
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV_VAR, "ck_nested")
    assert table.get("not_yet").label == "later"


def test_a_plugin_metrics_limit_key_is_read_from_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from calibkit.gate.config import gate_config, load_check_config

    _write(
        tmp_path,
        "ck_keyed",
        """
        from calibkit.metrics import table
        table.register(table.Metric(name="keyed", label="keyed error", limit_key="max_keyed",
                                    from_sums=lambda s: 1 - s.correct / s.total))
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV_VAR, "ck_keyed")
    config = tmp_path / "pyproject.toml"
    config.write_text("[tool.calibkit.check]\nmax-keyed = 0.25\nmax-ece = 0.1\n", "utf-8")
    settings, _ = load_check_config(config)
    assert settings == {"max_keyed": 0.25, "max_ece": 0.1}
    assert dict(gate_config(settings).max_values) == {"keyed": 0.25, "ece": 0.1}


# --------------------------------------------------------------------------------------------
# the executor registry refuses a duplicate, like the others


def test_a_duplicate_executor_is_refused() -> None:
    with pytest.raises(ValueError, match="executor 'serial' is already registered"):
        register_executor("serial", SerialExecutor)
    with pytest.raises(ValueError, match="executor 'threads' is already registered"):
        register_executor("threads", SerialExecutor)
    assert repr(get_executor("threads")).startswith("ThreadExecutor(")
    register_executor("mine", SerialExecutor)
    with pytest.raises(ValueError, match="already registered"):
        register_executor("mine", SerialExecutor)
    register_executor("threads", SerialExecutor, replace=True)
    assert isinstance(get_executor("threads"), SerialExecutor)
    assert executor_names()[:2] == ("threads", "serial")  # replace keeps its place
    unregister_executor("mine")
    assert "mine" not in executor_names()
    with pytest.raises(KeyError):
        unregister_executor("mine")


def test_supported_suffixes_follow_the_registry() -> None:
    import calibkit.loaders

    assert readers.suffixes() == calibkit.loaders.SUPPORTED_SUFFIXES
    readers.register(readers.Format(name="late", suffixes=(".late",), module="ck_none"))
    assert calibkit.loaders.SUPPORTED_SUFFIXES[-1] == ".late"
    with pytest.raises(AttributeError):
        calibkit.loaders.NO_SUCH_NAME  # noqa: B018
