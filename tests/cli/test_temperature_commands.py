"""`calibkit fit-temp`, `apply-temp` and `sweep-temp` through Typer's runner.

Good inputs are the bundled sample data (digits models, ``.npz`` and ``.parquet``) and small
files generated in ``tmp_path``; every number a command prints is checked against the library
(``fit_temperature``, ``read_predictions``) and against ``evaluate`` of the logits divided by
``T``, computed here in float64. Bad inputs must end with exit status 2, nothing on stdout, no
traceback and exactly one ``calibkit: error: ...`` line, and must leave no file behind.

Some tests pin bugs found (and fixed) while this module was written.
"""

from __future__ import annotations

import csv
import json
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli import assert_ok, assert_one_line_error, run_json, write_npz
from _cli import invoke as run
from _cli import one_error_line as assert_refused
from typer.testing import CliRunner, Result

from calibkit.api import evaluate
from calibkit.calibrators import TemperatureScaler, fit_temperature
from calibkit.errors import ConvergenceWarning
from calibkit.loaders import read_predictions

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
MODELS = ("hard", "ls05", "ls10", "ls20")
PER_DATA_KEYS = {
    "source",
    "n",
    "accuracy",
    *(f"{m}_{w}" for m in ("nll", "ece", "mce", "brier") for w in ("before", "after")),
}
FIT_KEYS = {
    "temperature",
    "converged",
    "passes",
    "gradient",
    "clamped",
    "fitted_on",
    "eval",
} | PER_DATA_KEYS
MODEL_KEYS = {
    "name",
    "source",
    "n",
    "input",
    "input_reason",
    "accuracy",
    "temperatures",
    "ece",
    "mce",
    "nll",
    "brier",
    "best_ece",
    "best_nll",
    "at_t1",
    "fitted",
}
TOL = 1e-12


# --------------------------------------------------------------------------------------------
# helpers


def sample(model: str, split: str = "val", fmt: str = "npz") -> Path:
    return SAMPLE / f"digits_{model}_{split}.{fmt}"


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """float64 logits (or probabilities) and labels of a generated or sample npz."""
    with np.load(path) as f:
        key = "logits" if "logits" in f.files else "probs"
        return f[key].astype(np.float64), f["labels"]


def metrics_at(logits: np.ndarray, labels: np.ndarray, t: float) -> Any:
    return evaluate(logits.astype(np.float64) / t, labels)


def hidden_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.fixture
def small(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """60 rows, 4 classes, float32 logits; labels drawn from a softer softmax."""
    z = rng.normal(scale=3.0, size=(60, 4)).astype(np.float32)
    u = rng.random((60, 1))
    y = (softmax(z.astype(np.float64) / 2).cumsum(axis=1) > u).argmax(axis=1).astype(np.int64)
    return z, y


# --------------------------------------------------------------------------------------------
# fit-temp: numbers


def assert_per_data(part: dict[str, Any], logits: np.ndarray, labels: np.ndarray, t: float) -> None:
    before, after = metrics_at(logits, labels, 1.0), metrics_at(logits, labels, t)
    assert part["n"] == len(labels)
    assert part["accuracy"] == pytest.approx(before.accuracy, abs=TOL)
    assert after.accuracy == before.accuracy
    for m in ("nll", "ece", "mce", "brier"):
        assert part[f"{m}_before"] == pytest.approx(getattr(before, m), abs=TOL), m
        assert part[f"{m}_after"] == pytest.approx(getattr(after, m), abs=TOL), m


@pytest.mark.parametrize("model", MODELS)
def test_fit_temp_json_matches_the_library(runner: CliRunner, model: str) -> None:
    val = sample(model)
    out = run_json(runner, "fit-temp", val)
    assert set(out) >= FIT_KEYS
    assert out["eval"] is None

    scaler = fit_temperature(read_predictions(val))
    fit = scaler.fit
    assert fit is not None
    assert out["temperature"] == pytest.approx(scaler.temperature, rel=TOL)
    assert (out["converged"], out["passes"], out["clamped"]) == (
        fit.converged,
        fit.passes,
        fit.clamped,
    )
    assert out["converged"] is True and out["clamped"] is None
    assert abs(out["gradient"]) <= 1e-8
    assert out["fitted_on"] == out["source"] == str(val)

    logits, labels = arrays(val)
    assert_per_data(out, logits, labels, out["temperature"])
    assert out["nll_after"] <= out["nll_before"]
    assert out["nll_before"] == pytest.approx(fit.nll_before, abs=TOL)
    assert out["nll_after"] == pytest.approx(fit.nll_after, abs=TOL)


@pytest.mark.parametrize("model", ["hard", "ls20"])
def test_fit_temp_eval_reports_the_same_keys_on_the_test_file(
    runner: CliRunner, model: str
) -> None:
    val, test = sample(model), sample(model, "test")
    out = run_json(runner, "fit-temp", val, "--eval", test)
    alone = run_json(runner, "fit-temp", val)
    assert out["eval"] is not None
    assert set(out["eval"]) >= PER_DATA_KEYS
    assert out["eval"]["source"] == str(test)
    assert out["temperature"] == alone["temperature"]
    logits, labels = arrays(test)
    assert_per_data(out["eval"], logits, labels, out["temperature"])


def test_fit_temp_direction_hard_softens_ls20_sharpens(runner: CliRunner) -> None:
    assert run_json(runner, "fit-temp", sample("hard"))["temperature"] > 1
    assert run_json(runner, "fit-temp", sample("ls20"))["temperature"] < 1


@pytest.mark.parametrize("model", MODELS)
def test_fit_temp_npz_and_parquet_agree(runner: CliRunner, model: str) -> None:
    a = run_json(runner, "fit-temp", sample(model))
    b = run_json(runner, "fit-temp", sample(model, fmt="parquet"))
    assert b["temperature"] == pytest.approx(a["temperature"], rel=TOL)
    for key in ("nll_after", "ece_after", "brier_after", "accuracy"):
        assert b[key] == pytest.approx(a[key], abs=TOL), key


def test_fit_temp_text_output(runner: CliRunner) -> None:
    result = run(runner, "fit-temp", sample("hard"), "--eval", sample("hard", "test"))
    assert_ok(result)
    assert result.stdout.startswith("T = 2.92306")
    assert "validation:" in result.stdout and "evaluation:" in result.stdout


def test_fit_temp_out_writes_a_loadable_calibrator(runner: CliRunner, tmp_path: Path) -> None:
    cal = tmp_path / "cal.json"
    out = run_json(runner, "fit-temp", sample("hard"), "--out", cal, wrote=(cal,))
    doc = json.loads(cal.read_text(encoding="utf-8"))
    assert doc["calibkit_calibrator"] == 1
    assert doc["method"] == "temperature"
    assert doc["temperature"] == out["temperature"]
    assert doc["fitted_on"] == str(sample("hard"))
    assert (doc["n"], doc["n_classes"]) == (449, 10)
    assert isinstance(doc["created"], str) and doc["created"]
    assert isinstance(doc["calibkit_version"], str) and doc["calibkit_version"]
    loaded = TemperatureScaler.load(cal)
    assert loaded.temperature == out["temperature"]
    assert loaded.n_classes == 10
    assert hidden_files(tmp_path) == []


# --------------------------------------------------------------------------------------------
# fit-temp: edge cases on generated files


def _confident_right(margin: float) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(30) % 3
    return margin * np.eye(3)[y], y


@pytest.mark.parametrize("margin", [0.001, 1.0, 5.0, 50.0])
def test_fit_temp_all_right_and_confident_clamps_at_t_min(
    runner: CliRunner, tmp_path: Path, margin: float
) -> None:
    logits, labels = _confident_right(margin)
    path = write_npz(tmp_path / "right.npz", logits=logits, labels=labels)
    # margin 1: one-hot rows are probabilities in practice (#12); say these are logits
    result = run(runner, "fit-temp", path, "--json", "--input", "logits")
    assert_ok(result)
    out = json.loads(result.stdout)
    assert out["clamped"] == "t_min"
    assert out["temperature"] == pytest.approx(1e-4, rel=TOL)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"calibkit: warning: {path}: ")
    assert "clamped to 0.0001" in lines[0]


def test_fit_temp_clamp_respects_a_custom_t_min(runner: CliRunner, tmp_path: Path) -> None:
    logits, labels = _confident_right(5.0)
    path = write_npz(tmp_path / "right.npz", logits=logits, labels=labels)
    result = run(runner, "fit-temp", path, "--json", "--t-min", "0.5")
    assert_ok(result)
    out = json.loads(result.stdout)
    assert (out["clamped"], out["temperature"]) == ("t_min", 0.5)
    assert result.stderr.startswith(f"calibkit: warning: {path}: ")
    assert result.stderr.endswith("clamped to 0.5\n")


def test_fit_temp_all_wrong_clamps_at_t_max(runner: CliRunner, tmp_path: Path) -> None:
    y = np.arange(30) % 3
    path = write_npz(tmp_path / "wrong.npz", logits=4.0 * np.eye(3)[(y + 1) % 3], labels=y)
    result = run(runner, "fit-temp", path, "--json")
    assert_ok(result)
    out = json.loads(result.stdout)
    assert (out["clamped"], out["temperature"]) == ("t_max", 1e4)
    assert out["accuracy"] == 0.0
    assert result.stderr.startswith(f"calibkit: warning: {path}: ")
    assert result.stderr.endswith("clamped to 10000\n")


def test_fit_temp_one_row(runner: CliRunner, tmp_path: Path) -> None:
    path = write_npz(tmp_path / "one.npz", logits=np.array([[0.5, 2.0, -1.0]]), labels=[0])
    result = run(runner, "fit-temp", path, "--json")
    assert_ok(result)
    out = json.loads(result.stdout)
    assert out["n"] == 1
    with pytest.warns(ConvergenceWarning):  # one wrong row: the NLL falls as T grows
        reference = fit_temperature(read_predictions(path))
    assert out["temperature"] == pytest.approx(reference.temperature, rel=TOL)
    assert out["clamped"] == "t_max"
    assert result.stderr.startswith(f"calibkit: warning: {path}: ")


def test_fit_temp_binary_single_logit_matches_two_columns(
    runner: CliRunner, tmp_path: Path, rng: np.random.Generator
) -> None:
    z = rng.normal(scale=2.0, size=80)
    y = (rng.random(80) < 1 / (1 + np.exp(-z / 1.7))).astype(np.int64)
    one = run_json(runner, "fit-temp", write_npz(tmp_path / "b.npz", logits=z, labels=y))
    two = run_json(
        runner,
        "fit-temp",
        write_npz(tmp_path / "t.npz", logits=np.stack([np.zeros_like(z), z], 1), labels=y),
    )
    assert one["clamped"] is None
    assert one["temperature"] == pytest.approx(two["temperature"], rel=TOL)
    assert one["nll_after"] == pytest.approx(two["nll_after"], abs=TOL)


def test_fit_temp_saturated_probabilities_warn(runner: CliRunner, tmp_path: Path) -> None:
    probs = np.tile([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.5, 0.3]], (10, 1))
    labels = np.tile([0, 2, 1], 10)
    path = write_npz(tmp_path / "p.npz", probs=probs, labels=labels)
    result = run(runner, "fit-temp", path, "--json")
    assert_ok(result)
    assert result.stderr == (  # the exact zeros are counted (#12), then the saturation
        f"calibkit: warning: {path}: 40 probabilities are exactly 0 (in 20 rows); the fit "
        "takes log 0 as the log of the smallest positive number of the stored dtype\n"
        f"calibkit: warning: {path}: 66.7% of rows have a probability of exactly 0 or 1; "
        "a temperature fitted on saturated probabilities is biased (save logits instead)\n"
        f"calibkit: warning: {path}: 10 rows give the label a probability of exactly 0; "
        "-log 0 is taken at the smallest positive number of the stored dtype, so the NLL is a "
        "lower bound (save logits when you can)\n"
    )
    assert json.loads(result.stdout)["temperature"] > 0


# --------------------------------------------------------------------------------------------
# fit-temp: bad inputs


def _copy_val(tmp_path: Path) -> Path:
    return Path(shutil.copy(sample("hard"), tmp_path / "val.npz"))


def _not_a_zip(tmp_path: Path) -> Path:
    path = tmp_path / "eval.npz"
    path.write_text("not an archive")
    return path


FIT_BAD = [
    pytest.param(
        lambda tmp: [tmp / "missing.npz"], "{tmp}/missing.npz: no such file", id="missing-val"
    ),
    pytest.param(
        lambda tmp: [sample("hard"), "--t-min", "2", "--t-max", "1"],
        "need 0 < t_min < t_max < inf; got t_min=2.0, t_max=1.0",
        id="t-min-above-t-max",
    ),
    pytest.param(
        lambda tmp: [sample("hard"), "--eval", tmp / "missing.npz"],
        "{tmp}/missing.npz: no such file",
        id="eval-missing",
    ),
    pytest.param(
        lambda tmp: [sample("hard"), "--eval", _not_a_zip(tmp)],
        "{tmp}/eval.npz: not a readable .npz archive (not a zip file)",
        id="eval-not-a-zip",
    ),
    pytest.param(
        lambda tmp: [sample("hard"), "--out", tmp / "no_dir" / "cal.json"],
        "{tmp}/no_dir/cal.json: directory '{tmp}/no_dir' does not exist",
        id="out-missing-directory",
    ),
]


@pytest.mark.parametrize(("build", "message"), FIT_BAD)
def test_fit_temp_bad_input(
    runner: CliRunner, tmp_path: Path, build: Callable[[Path], list[Any]], message: str
) -> None:
    args = build(tmp_path)
    if "--out" not in args:
        args += ["--out", tmp_path / "cal.json"]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(runner, "fit-temp", *args)
    assert_one_line_error(result, message.format(tmp=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no calibrator, no temp file


@pytest.mark.parametrize("which", ["val", "eval"])
def test_fit_temp_out_over_an_input_is_refused(
    runner: CliRunner, tmp_path: Path, which: str
) -> None:
    val = _copy_val(tmp_path)
    before = val.read_bytes()
    args = [val] if which == "val" else [sample("hard", "test"), "--eval", val]
    result = run(runner, "fit-temp", *args, "--out", val)
    assert_one_line_error(result, f"{val}: is also an input; refusing to overwrite it")
    assert val.read_bytes() == before


def test_fit_temp_bad_eval_rows_write_no_calibrator(runner: CliRunner, tmp_path: Path) -> None:
    """A parquet --eval is validated while it is read; the calibrator must not be written."""
    z = np.random.default_rng(0).normal(size=(100, 10))
    z[95, 1] = np.nan
    bad = tmp_path / "eval.parquet"
    pq.write_table(
        pa.table({**{f"logit_{k}": z[:, k] for k in range(10)}, "label": np.arange(100) % 10}),
        bad,
        row_group_size=10,
    )
    result = run(runner, "fit-temp", sample("hard"), "--eval", bad, "--out", tmp_path / "c.json")
    assert_one_line_error(result, f"{bad}: logits contain nan at row 95")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.parquet"]


def test_fit_temp_eval_with_other_classes_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    other = write_npz(
        tmp_path / "k3.npz",
        logits=np.random.default_rng(0).normal(size=(20, 3)),
        labels=np.arange(20) % 3,
    )
    message = assert_refused(run(runner, "fit-temp", sample("hard"), "--eval", other))
    assert message.startswith(f"{other}: ")


# --------------------------------------------------------------------------------------------
# apply-temp: outputs

T_APPLY = 2.5


def apply(runner: CliRunner, src: Path, out: Path, *args: str | Path) -> Result:
    result = run(runner, "apply-temp", src, "--out", out, *args)
    assert_ok(result)
    assert out.exists()
    assert hidden_files(out.parent) == []
    return result


def test_apply_temp_npz_keeps_keys_dtype_and_extras(
    runner: CliRunner, tmp_path: Path, small: tuple[np.ndarray, np.ndarray]
) -> None:
    z, y = small
    ids = np.arange(len(y)) * 7 + 3
    src = write_npz(tmp_path / "in.npz", logits=z, labels=y, ids=ids)
    out = tmp_path / "out.npz"
    result = apply(runner, src, out, "--temperature", str(T_APPLY))
    assert result.stderr == f"calibkit: wrote {out} (T = 2.5)\n"
    assert result.stdout == ""
    with np.load(out) as f:
        assert sorted(f.files) == ["ids", "labels", "logits"]
        assert f["logits"].dtype == np.float32 and f["logits"].shape == z.shape
        np.testing.assert_array_equal(
            f["logits"], (z.astype(np.float64) / T_APPLY).astype(np.float32)
        )
        np.testing.assert_array_equal(f["labels"], y)
        assert f["labels"].dtype == y.dtype
        np.testing.assert_array_equal(f["ids"], ids)
        assert f["ids"].dtype == ids.dtype


def test_apply_temp_output_measures_like_scaled_logits(runner: CliRunner, tmp_path: Path) -> None:
    src = sample("hard", "test")
    t = run_json(runner, "fit-temp", sample("hard"))["temperature"]
    out = tmp_path / "cal.npz"
    apply(runner, src, out, "--temperature", repr(t))
    measured = run_json(runner, "ece", out)
    logits, labels = arrays(src)
    stored = (logits / t).astype(np.float32)  # exactly what apply-temp must have written
    exact = evaluate(stored, labels)
    for m in ("accuracy", "ece", "mce", "nll", "brier"):
        assert measured[m] == pytest.approx(getattr(exact, m), abs=TOL), m
        # and float32 storage moves nothing visibly from the float64 scaled logits
        assert measured[m] == pytest.approx(getattr(metrics_at(logits, labels, t), m), abs=1e-6)


def _list_table(z: np.ndarray, y: np.ndarray, fixed: bool) -> pa.Table:
    flat = pa.array(z.reshape(-1))
    if fixed:
        col = pa.FixedSizeListArray.from_arrays(flat, z.shape[1])
    else:
        offsets = pa.array(np.arange(0, z.size + 1, z.shape[1], dtype=np.int32))
        col = pa.ListArray.from_arrays(offsets, flat)
    return pa.table(
        {"id": np.arange(len(y)) * 2, "logits": col, "label": y, "note": ["x"] * len(y)}
    )


def _wide_table(z: np.ndarray, y: np.ndarray) -> pa.Table:
    cols = {f"logit_{k}": z[:, k] for k in range(z.shape[1])}
    return pa.table({"id": np.arange(len(y)) * 2, **cols, "label": y, "note": ["x"] * len(y)})


def _scores_of(table: pa.Table, k: int) -> np.ndarray:
    if "logits" in table.column_names:
        col = table.column("logits").combine_chunks()
        return np.asarray(col.flatten().to_numpy()).reshape(-1, k)
    return np.column_stack([table.column(f"logit_{i}").to_numpy() for i in range(k)])


@pytest.mark.parametrize("layout", ["wide", "list", "fixed-size-list"])
def test_apply_temp_parquet_keeps_schema_and_extras(
    runner: CliRunner, tmp_path: Path, small: tuple[np.ndarray, np.ndarray], layout: str
) -> None:
    z, y = small
    table = _wide_table(z, y) if layout == "wide" else _list_table(z, y, layout != "list")
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(table, src, row_group_size=25)  # several batches
    apply(runner, src, out, "-t", str(T_APPLY))
    original, scaled = pq.read_table(src), pq.read_table(out)
    assert scaled.schema.equals(original.schema)
    assert scaled.num_rows == original.num_rows
    got = _scores_of(scaled, z.shape[1])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, z.astype(np.float64) / T_APPLY, rtol=1e-7, atol=0)
    for name in ("id", "label", "note"):
        assert scaled.column(name).equals(original.column(name)), name


def test_apply_temp_sample_parquet_matches_sample_npz(runner: CliRunner, tmp_path: Path) -> None:
    apply(runner, sample("ls20", "test", "parquet"), tmp_path / "o.parquet", "-t", "0.41")
    apply(runner, sample("ls20", "test"), tmp_path / "o.npz", "-t", "0.41")
    assert pq.read_schema(tmp_path / "o.parquet").equals(
        pq.read_schema(sample("ls20", "test", "parquet"))
    )
    with np.load(tmp_path / "o.npz") as f:
        np.testing.assert_array_equal(
            _scores_of(pq.read_table(tmp_path / "o.parquet"), 10), f["logits"]
        )


def test_apply_temp_pt_keeps_tensor_dtype(
    runner: CliRunner, tmp_path: Path, small: tuple[np.ndarray, np.ndarray]
) -> None:
    torch = pytest.importorskip("torch")
    z, y = small
    src, out = tmp_path / "in.pt", tmp_path / "out.pt"
    extra = torch.arange(len(y))
    torch.save({"logits": torch.from_numpy(z), "labels": torch.from_numpy(y), "ids": extra}, src)
    apply(runner, src, out, "-t", str(T_APPLY))
    got = torch.load(out, weights_only=True)
    assert sorted(got) == ["ids", "labels", "logits"]
    assert got["logits"].dtype == torch.float32
    np.testing.assert_array_equal(
        got["logits"].numpy(), (z.astype(np.float64) / T_APPLY).astype(np.float32)
    )
    assert torch.equal(got["labels"], torch.from_numpy(y))
    assert torch.equal(got["ids"], extra)


def test_apply_temp_probabilities(
    runner: CliRunner, tmp_path: Path, small: tuple[np.ndarray, np.ndarray]
) -> None:
    z, y = small
    p = softmax(z.astype(np.float64))
    src, out = write_npz(tmp_path / "p.npz", probs=p, labels=y), tmp_path / "o.npz"
    apply(runner, src, out, "-t", str(T_APPLY))
    with np.load(out) as f:
        assert f.files == ["probs", "labels"]
        got = f["probs"]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, softmax(np.log(p) / T_APPLY), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got.argmax(axis=1), p.argmax(axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_apply_temp_binary_single_logit(
    runner: CliRunner, tmp_path: Path, rng: np.random.Generator, dtype: type
) -> None:
    z = rng.normal(scale=2.0, size=50).astype(dtype)
    y = (rng.random(50) < 0.5).astype(np.int64)
    src, out = write_npz(tmp_path / "b.npz", logits=z, labels=y), tmp_path / "o.npz"
    apply(runner, src, out, "-t", str(T_APPLY))
    with np.load(out) as f:
        got = f["logits"]
    assert got.shape == (50,) and got.dtype == dtype
    np.testing.assert_allclose(got, z.astype(np.float64) / T_APPLY, rtol=1e-6, atol=1e-7)


def test_apply_temp_calibrator_equals_temperature(runner: CliRunner, tmp_path: Path) -> None:
    cal = tmp_path / "cal.json"
    t = run_json(runner, "fit-temp", sample("hard"), "--out", cal, wrote=(cal,))["temperature"]
    src = sample("hard", "test")
    a = apply(runner, src, tmp_path / "a.npz", "--calibrator", cal)
    b = apply(runner, src, tmp_path / "b.npz", "--temperature", repr(t))
    assert a.stderr.replace("a.npz", "b.npz") == b.stderr
    with np.load(tmp_path / "a.npz") as fa, np.load(tmp_path / "b.npz") as fb:
        assert fa.files == fb.files
        for key in fa.files:
            np.testing.assert_array_equal(fa[key], fb[key])


# --------------------------------------------------------------------------------------------
# apply-temp: bad inputs


def _calibrator(doc: Any, raw: bool = False) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / "cal.json"
        path.write_text(doc if raw else json.dumps(doc), encoding="utf-8")
        return path

    return build


def _cal_doc(**changes: Any) -> dict[str, Any]:
    doc = {"calibkit_calibrator": 1, "method": "temperature", "temperature": 2.0, "n_classes": 10}
    doc.update(changes)
    return doc


APPLY_BAD = [
    pytest.param([], "give exactly one of --temperature and --calibrator", id="neither"),
    pytest.param(
        ["-t", "2", "--calibrator", _calibrator(_cal_doc())],
        "give exactly one of --temperature and --calibrator",
        id="both",
    ),
    pytest.param(
        ["--temperature", "0"], "temperature must be a finite number > 0; got 0.0", id="t-zero"
    ),
    pytest.param(
        ["--temperature", "-1"], "temperature must be a finite number > 0; got -1.0", id="t-neg"
    ),
    pytest.param(
        ["--temperature", "nan"], "temperature must be a finite number > 0; got nan", id="t-nan"
    ),
    pytest.param(
        ["--calibrator", _calibrator("not json", raw=True)],
        "{tmp}/cal.json: not valid JSON (Expecting value at line 1)",
        id="calibrator-not-json",
    ),
    pytest.param(
        ["--calibrator", _calibrator([2.0])],
        "{tmp}/cal.json: a calibrator must be a JSON object",
        id="calibrator-not-an-object",
    ),
    pytest.param(
        ["--calibrator", _calibrator(_cal_doc(calibkit_calibrator=2))],
        "{tmp}/cal.json: not a calibkit calibrator of format 1 (calibkit_calibrator = 2)",
        id="calibrator-wrong-version",
    ),
    pytest.param(
        ["--calibrator", _calibrator(_cal_doc(method="no-such-method"))],
        "{tmp}/cal.json: unknown calibration method 'no-such-method'",
        id="calibrator-wrong-method",
    ),
    pytest.param(
        ["--calibrator", _calibrator(_cal_doc(temperature=-2.0))],
        "{tmp}/cal.json: temperature must be a finite number > 0; got -2.0",
        id="calibrator-negative-temperature",
    ),
    pytest.param(
        ["--calibrator", _calibrator(_cal_doc(n_classes=3))],
        "{tmp}/cal.json: fitted on 3 classes, but {src} has 10",
        id="calibrator-other-classes",
    ),
    pytest.param(
        ["--calibrator", lambda tmp: tmp / "missing.json"],
        "{tmp}/missing.json: no such file",
        id="calibrator-missing",
    ),
    pytest.param(
        ["--out", lambda tmp: tmp / "out.parquet", "-t", "2"],
        "--out {tmp}/out.parquet must have the input's extension '.npz' "
        "(the output keeps the input's format)",
        id="out-other-extension",
    ),
]


@pytest.mark.parametrize(("args", "message"), APPLY_BAD)
def test_apply_temp_bad_input(
    runner: CliRunner, tmp_path: Path, args: list[Any], message: str
) -> None:
    src = _copy_val(tmp_path)
    out = tmp_path / "out.npz"
    built = [a(tmp_path) if callable(a) else a for a in args]
    if "--out" not in built:
        built = ["--out", out, *built]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(runner, "apply-temp", src, *built)
    assert_one_line_error(result, message.format(tmp=tmp_path, src=src))
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no temp file


def test_apply_temp_out_over_the_input_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    src = _copy_val(tmp_path)
    before = src.read_bytes()
    result = run(runner, "apply-temp", src, "--out", src, "-t", "2")
    assert_one_line_error(result, f"{src}: is also an input; refusing to overwrite it")
    assert src.read_bytes() == before


def test_apply_temp_bad_parquet_rows_leave_nothing(runner: CliRunner, tmp_path: Path) -> None:
    """Parquet rows are validated while the output is written: the partial file must go."""
    z = np.random.default_rng(0).normal(size=(100, 3))
    z[95, 1] = np.nan
    src = tmp_path / "in.parquet"
    pq.write_table(
        pa.table({**{f"logit_{k}": z[:, k] for k in range(3)}, "label": np.arange(100) % 3}),
        src,
        row_group_size=10,
    )
    result = run(runner, "apply-temp", src, "--out", tmp_path / "out.parquet", "-t", "2")
    assert_one_line_error(result, f"{src}: logits contain nan at row 95")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_apply_temp_calibrator_with_non_integer_n_classes(
    runner: CliRunner, tmp_path: Path
) -> None:
    cal = _calibrator(_cal_doc(n_classes="10"))(tmp_path)
    result = run(
        runner, "apply-temp", sample("hard"), "--out", tmp_path / "o.npz", "--calibrator", cal
    )
    message = assert_refused(result)
    assert message.startswith(f"{cal}: ")
    assert "fitted on 10 classes, but" not in message
    assert "n_classes" in message


def test_apply_temp_keeps_npz_compression(runner: CliRunner, tmp_path: Path) -> None:
    with np.load(sample("hard", "test")) as f:
        src = tmp_path / "c.npz"
        np.savez_compressed(src, logits=f["logits"], labels=f["labels"])
    apply(runner, src, tmp_path / "o.npz", "-t", "2")
    with zipfile.ZipFile(tmp_path / "o.npz") as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}


def test_apply_temp_never_writes_non_finite_logits(runner: CliRunner, tmp_path: Path) -> None:
    # float16 logits and T = 1e-4, the T that fit-temp writes when it clamps at its default t_min
    y = np.arange(30) % 3
    src = write_npz(tmp_path / "half.npz", logits=(8.0 * np.eye(3)[y]).astype(np.float16), labels=y)
    out = tmp_path / "o.npz"
    result = run(runner, "apply-temp", src, "--out", out, "--temperature", "0.0001")
    if result.exit_code == 2:  # refusing is fine, but then with one line and no file
        assert_refused(result)
        assert not out.exists()
        return
    assert_ok(result)
    with np.load(out) as f:
        assert np.isfinite(f["logits"]).all()
    assert_ok(run(runner, "ece", out))


# --------------------------------------------------------------------------------------------
# sweep-temp


def test_sweep_temp_json_schema_and_values(runner: CliRunner) -> None:
    hard, ls20 = sample("hard", "test"), sample("ls20", "test", "parquet")
    out = run_json(runner, "sweep-temp", f"hard={hard}", f"ls20={ls20}", "--temps", "0.5,1,2")
    assert set(out) == {"n_bins", "binning", "models"}
    assert (out["n_bins"], out["binning"]) == (15, "width")
    assert [m["name"] for m in out["models"]] == ["hard", "ls20"]
    for model, path in zip(out["models"], (hard, ls20), strict=True):
        assert set(model) == MODEL_KEYS
        assert model["source"] == str(path)
        assert model["temperatures"] == [0.5, 1.0, 2.0]
        assert model["fitted"] is None
        preds = read_predictions(path)
        logits = np.concatenate([s for s, _ in preds.chunks()]).astype(np.float64)
        labels = np.concatenate([y for _, y in preds.chunks()])
        assert model["n"] == len(labels)
        for i, t in enumerate(model["temperatures"]):
            ref = metrics_at(logits, labels, t)
            assert model["accuracy"] == pytest.approx(ref.accuracy, abs=TOL)
            for m in ("ece", "mce", "nll", "brier"):
                assert model[m][i] == pytest.approx(getattr(ref, m), abs=TOL), (m, t)
        for m in ("ece", "nll"):
            i = int(np.argmin(model[m]))
            assert model[f"best_{m}"] == {"temperature": model["temperatures"][i], m: model[m][i]}
        ece = run_json(runner, "ece", path)
        for m in ("ece", "nll", "brier"):
            assert model["at_t1"][m] == pytest.approx(ece[m], abs=TOL), m
            assert model[m][1] == pytest.approx(ece[m], abs=TOL), m


def test_sweep_temp_at_t1_off_the_grid(runner: CliRunner) -> None:
    path = sample("ls10", "test")
    model = run_json(runner, "sweep-temp", path, "--temps", "0.5,2")["models"][0]
    ece = run_json(runner, "ece", path)
    assert model["temperatures"] == [0.5, 2.0]
    for m in ("ece", "nll", "brier"):
        assert model["at_t1"][m] == pytest.approx(ece[m], abs=TOL), m


def test_sweep_temp_val_adds_the_fitted_point(runner: CliRunner) -> None:
    test, val = sample("hard", "test"), sample("hard")
    out = run_json(runner, "sweep-temp", f"hard={test}", "--val", f"hard={val}", "--steps", "5")
    fitted = out["models"][0]["fitted"]
    t = run_json(runner, "fit-temp", val)["temperature"]
    assert fitted["temperature"] == pytest.approx(t, rel=TOL)
    assert fitted["fitted_on"] == str(val)
    ref = metrics_at(*arrays(test), t)
    for m in ("ece", "nll", "brier"):
        assert fitted[m] == pytest.approx(getattr(ref, m), abs=TOL), m


@pytest.mark.parametrize("model", MODELS)
def test_sweep_temp_nll_minimum_is_next_to_the_fitted_t(runner: CliRunner, model: str) -> None:
    path = sample(model, "test")
    t_fit = run_json(runner, "fit-temp", path)["temperature"]
    args = ("--t-min", "0.2", "--t-max", "4", "--steps", "77")  # step 0.05
    sweep = run_json(runner, "sweep-temp", path, *args)["models"][0]
    step = sweep["temperatures"][1] - sweep["temperatures"][0]
    assert step == pytest.approx(0.05)
    assert abs(sweep["best_nll"]["temperature"] - t_fit) <= step + 1e-12


def test_sweep_temp_bare_path_is_named_after_its_stem(runner: CliRunner) -> None:
    out = run_json(runner, "sweep-temp", sample("ls05", "test"), "--steps", "3")
    assert out["models"][0]["name"] == "digits_ls05_test"


def test_sweep_temp_csv_is_the_json_as_a_tidy_table(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "sweep.csv"
    args = ("sweep-temp", f"a={sample('hard', 'test')}", f"b={sample('ls20', 'test')}")
    out = run_json(runner, *args, "--temps", "0.5,1,1.5,2", "--csv", path, wrote=(path,))
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["model", "temperature", "ece", "mce", "nll", "brier", "accuracy"]
    assert len(rows) == 1 + 2 * 4
    expected = [
        [m["name"], t, m["ece"][i], m["mce"][i], m["nll"][i], m["brier"][i], m["accuracy"]]
        for m in out["models"]
        for i, t in enumerate(m["temperatures"])
    ]
    got = [[r[0], *map(float, r[1:])] for r in rows[1:]]
    assert got == expected
    assert hidden_files(tmp_path) == []


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_sweep_temp_plots(runner: CliRunner, tmp_path: Path) -> None:
    models = (f"hard={sample('hard', 'test')}", f"ls20={sample('ls20', 'test')}")
    val = ("--val", f"hard={sample('hard')}")
    for suffix in ("png", "svg", "pdf"):
        path = tmp_path / f"sweep.{suffix}"
        result = run(runner, "sweep-temp", *models, *val, "--steps", "11", "--plot", path)
        assert_ok(result)
        assert path.stat().st_size > 0
    width, height = _png_size(tmp_path / "sweep.png")
    assert width > 800 and height > 400
    svg = (tmp_path / "sweep.svg").read_text(encoding="utf-8")
    assert svg.startswith("<?xml") or "<svg" in svg
    assert (tmp_path / "sweep.pdf").read_bytes().startswith(b"%PDF")
    assert hidden_files(tmp_path) == []


def test_sweep_temp_text_output(runner: CliRunner) -> None:
    result = run(runner, "sweep-temp", sample("hard", "test"), "--steps", "6")
    assert_ok(result)
    text = " ".join(result.stdout.split())  # the runner's console is 80 columns wide
    assert "temperature sweep: 6 temperatures from 0.5 to 3; ECE with 15 width bins" in text
    assert "digits_hard_test" in text and "lowest NLL on grid" in text


def _bad_npz(tmp: Path) -> str:
    path = tmp / "bad.npz"
    path.write_text("not an archive")
    return str(path)


SWEEP_BAD = [
    pytest.param(
        lambda tmp: [sample("hard", "test"), sample("hard", "test", "parquet")],
        "model name 'digits_hard_test' is given more than once; name them NAME=PATH",
        id="duplicate-stems",
    ),
    pytest.param(
        lambda tmp: [f"a={sample('hard', 'test')}", "--val", f"b={sample('hard')}"],
        "--val names 'b', which is not one of the models",
        id="val-unknown-model",
    ),
    pytest.param(
        lambda tmp: [sample("hard", "test"), "--temps", "0.5,x"],
        "--temps must be comma-separated numbers; got '0.5,x'",
        id="temps-not-numbers",
    ),
    pytest.param(
        lambda tmp: [sample("hard", "test"), "--temps", "0,1"],
        "temperatures must be finite numbers > 0",
        id="temps-zero",
    ),
    pytest.param(
        lambda tmp: [sample("hard", "test"), "--t-min", "2", "--t-max", "1"],
        "need 0 < t_min <= t_max; got t_min=2.0, t_max=1.0",
        id="t-min-above-t-max",
    ),
    pytest.param(
        lambda tmp: [_bad_npz(tmp)],
        "{tmp}/bad.npz: not a readable .npz archive (not a zip file)",
        id="unreadable-model",
    ),
    pytest.param(
        lambda tmp: [sample("hard", "test"), "--val", f"digits_hard_test={tmp}/missing.npz"],
        "{tmp}/missing.npz: no such file",
        id="missing-val-file",
    ),
]


@pytest.mark.parametrize("suffix", ["png", "svg"])
@pytest.mark.parametrize(("build", "message"), SWEEP_BAD)
def test_sweep_temp_bad_input_writes_no_plot(
    runner: CliRunner,
    tmp_path: Path,
    build: Callable[[Path], list[Any]],
    message: str,
    suffix: str,
) -> None:
    args = build(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    plot, table = tmp_path / f"sweep.{suffix}", tmp_path / "sweep.csv"
    result = run(runner, "sweep-temp", *args, "--plot", plot, "--csv", table, "--json")
    assert_one_line_error(result, message.format(tmp=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_sweep_temp_jpg_plot_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    plot = tmp_path / "x.jpg"
    result = run(
        runner, "sweep-temp", sample("hard", "test"), "--plot", plot, "--csv", tmp_path / "x.csv"
    )
    assert_one_line_error(
        result, f"{plot}: figure format must be one of .png, .svg, .pdf (by extension)"
    )
    assert list(tmp_path.iterdir()) == []


def test_sweep_temp_csv_and_plot_on_the_same_file_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    same = tmp_path / "out.png"
    result = run(runner, "sweep-temp", sample("hard", "test"), "--csv", same, "--plot", same)
    assert_refused(result)
    assert not same.exists()


def test_sweep_temp_duplicate_explicit_names_message(runner: CliRunner) -> None:
    a, b = sample("hard", "test"), sample("ls20", "test")
    message = assert_refused(run(runner, "sweep-temp", f"m={a}", f"m={b}"))
    assert "'m'" in message
    assert "name them NAME=PATH" not in message
