"""Every count and input size calibkit takes has an upper bound (:mod:`calibkit.limits`), and
what grows with a count stays bounded below it.

Regressions: ``--bins 1000000`` on 360 rows ran for over 10 minutes and reached 4.2 GB (a rich
table row, a matplotlib bar and an outline per bin, and per-bin bootstrap sums of
replicates x bins); ``--bins`` of 2^63 - 1 was a traceback; ``--bootstrap`` had no upper bound;
a JSON or TOML file could be ``/dev/zero``. No test here measures time: each checks the bound
itself, or counts the rows, artists or cells that made the time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from calibkit import limits
from calibkit.cli import app
from calibkit.cli._common import FLAGS
from calibkit.errors import InputError, UsageError
from calibkit.io.textfile import load_toml, parse_json, read_small_text
from calibkit.metrics import bin_table, summarize
from calibkit.metrics.binning import MAX_BINS, check_n_bins
from calibkit.metrics.examples import ExampleStats
from calibkit.sources.predictions import Predictions
from calibkit.stats import bootstrap as bs

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "digits_hard_test.npz"


def stats(n: int, seed: int = 0) -> ExampleStats:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.3, 1.0, n)
    correct = rng.random(n) < conf
    return ExampleStats(
        confidence=conf,
        outcome=correct.astype(np.float64),
        correct=correct,
        log_prob=np.log(np.where(correct, conf, 1 - conf)),
        brier=(1 - conf) ** 2,
        saturated=np.zeros(n, dtype=bool),
    )


def preds(n: int = 360, k: int = 10, seed: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    return Predictions.from_arrays(rng.normal(0, 3, (n, k)), rng.integers(0, k, n))


# --------------------------------------------------------------------------------------------
# bins


@pytest.mark.parametrize("n_bins", [0, -1, MAX_BINS + 1, 10**6, 2**63 - 1, 2**200])
def test_bin_counts_outside_the_range_are_refused(n_bins: int) -> None:
    with pytest.raises(UsageError, match=f"from 1 to {MAX_BINS}; got {n_bins}$"):
        check_n_bins(n_bins)
    with pytest.raises(UsageError):  # before anything of size n_bins is allocated
        bin_table([0.5], [1], n_bins=n_bins)
    with pytest.raises(UsageError):
        summarize(preds(20), n_bins=n_bins)


@pytest.mark.parametrize("n_bins", [True, 1.5, "15", None])
def test_bin_counts_must_be_integers(n_bins: object) -> None:
    with pytest.raises(UsageError, match="must be an integer"):
        check_n_bins(n_bins)  # type: ignore[arg-type]


def test_the_largest_bin_count_works() -> None:
    assert check_n_bins(np.int64(MAX_BINS)) == MAX_BINS
    s = summarize(preds(), n_bins=MAX_BINS, binning="mass")
    assert s.n_bins == MAX_BINS and s.bins.count.sum() == 360


def test_the_cli_bound_is_the_library_bound() -> None:
    assert MAX_BINS == limits.MAX_BINS == 10_000


def test_the_bin_table_has_at_most_2n_plus_1_rows() -> None:
    """A rich table costs about a millisecond a row: 10^6 bins were 10 minutes of it."""
    from calibkit.report.tables import bins_table

    s = summarize(preds(), n_bins=MAX_BINS)
    table = bins_table(s.bins)
    filled = int((s.bins.count > 0).sum())
    assert table.row_count <= 2 * filled + 1
    cells = [list(col.cells) for col in table.columns]
    assert sum(int(c) for c in cells[2]) == 360  # every example is still in a row
    first, last = cells[0][0], cells[0][-1]
    assert first.startswith("1") and last.endswith(str(MAX_BINS))
    # runs of empty bins are one row each: "a-b" spanning them, with the range of the run
    runs = [(i, c) for i, c in enumerate(cells[0]) if "-" in c]
    assert runs, "no run of empty bins was joined"
    i, label = runs[0]
    lo, hi = (int(x) for x in label.split("-"))
    assert hi > lo and cells[3][i] == "empty"
    assert cells[1][i].endswith(f"{s.bins.upper[hi - 1]:.5f}]")


def test_small_bin_tables_keep_one_row_per_bin() -> None:
    from calibkit.report.tables import COLLAPSE_EMPTY_ABOVE, bins_table

    s = summarize(preds(30), n_bins=COLLAPSE_EMPTY_ABOVE)
    assert (s.bins.count == 0).sum() > 2
    assert bins_table(s.bins).row_count == COLLAPSE_EMPTY_ABOVE


def test_a_diagram_of_many_bins_has_an_artist_per_filled_bin_not_per_bin() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from calibkit.plotting.reliability import plot_reliability

    s = summarize(preds(), n_bins=MAX_BINS)
    filled = int((s.bins.count > 0).sum())
    fig = plot_reliability({"m": s})
    top, hist = fig.axes[0], fig.axes[1]
    assert len(top.patches) <= 2 * filled + (filled + 1)  # accuracy + gap bars, empty runs
    assert len(hist.patches) == filled
    assert sorted(p.get_height() for p in hist.patches) == sorted(s.bins.count[s.bins.count > 0])


# --------------------------------------------------------------------------------------------
# bootstrap


def test_replicates_above_the_maximum_are_refused() -> None:
    with pytest.raises(UsageError, match=r"must be <= 1000000; got 1000001"):
        bs.bootstrap_metrics(stats(10), replicates=limits.MAX_REPLICATES + 1)
    with pytest.raises(UsageError, match=r"must be >= 1; got 0"):
        bs.bootstrap_metrics(stats(10), replicates=0)
    with pytest.raises(UsageError, match="must be an integer"):
        bs.bootstrap_metrics(stats(10), replicates=10.0)  # type: ignore[arg-type]


def test_replicates_times_rows_is_bounded() -> None:
    """10^6 replicates of 100 000 rows: 1e11 resampled rows, refused before any is drawn."""
    s = stats(100_000)
    with pytest.raises(UsageError, match=r"would resample 1e\+11 rows.*at most 500000 replicates"):
        bs.bootstrap_metrics(s, replicates=1_000_000)
    with pytest.raises(UsageError, match="would resample"):  # both models count
        bs.paired_bootstrap(s, s, replicates=300_000)


@pytest.mark.parametrize("seed", [-1, 2**63, True, 0.5])
def test_seeds_outside_the_range_are_refused(seed: object) -> None:
    with pytest.raises(UsageError, match="seed must be an integer from 0 to 2"):
        bs.bootstrap_metrics(stats(10), replicates=10, seed=seed)  # type: ignore[arg-type]


def test_largest_seed_works() -> None:
    res = bs.bootstrap_metrics(stats(10), replicates=10, seed=limits.MAX_SEED)
    assert res.replicates["ece"].shape == (10,)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 1.5, float("nan")])
def test_interval_levels_outside_0_1_are_refused(level: float) -> None:
    res = bs.bootstrap_metrics(stats(10), replicates=10)
    with pytest.raises(UsageError, match=r"level must lie in \(0, 1\)"):
        res.interval("ece", level)


def test_a_batch_of_replicates_is_bounded_in_bins_too() -> None:
    """Regression: the per-bin sums of a batch are (replicates x M x 6) floats: 10 000 bins and
    1 000 replicates held 480 MB at once (2 GB for ``check``)."""
    for n, m in ((360, MAX_BINS), (10**6, 15), (10, 15)):
        size = bs._batch_size(n, 2000, m)
        assert size * max(n, 6 * m) <= bs._BATCH_CELLS
        # and a chunk's result (replicates x (3M + 3)) is bounded: more replicates, more passes
        plans = bs._plans(m, None, 2000, 0, 0)
        assert all(p.rows_out * (3 * m + 3) <= bs._RESULT_CELLS for p in plans)
        assert sum(p.stop - p.first for p in plans) == 2000
        assert [p.first for p in plans] == sorted({p.first for p in plans})


def test_many_bins_give_the_point_metrics_of_the_summary() -> None:
    """Only filled bins are multiplied out; empty ones still sum to 0."""
    p = preds()
    from calibkit.metrics.summary import collect_example_stats

    s = summarize(p, n_bins=MAX_BINS)
    point = bs.point_metrics(collect_example_stats(p), n_bins=MAX_BINS)
    assert point["ece"] == pytest.approx(s.ece, abs=1e-12)
    assert point["mce"] == pytest.approx(s.mce, abs=1e-12)
    res = bs.bootstrap_metrics(collect_example_stats(p), n_bins=MAX_BINS, replicates=50)
    assert np.isfinite(res.replicates["ece"]).all()


# --------------------------------------------------------------------------------------------
# command-line bounds the option parser does not know


def test_sweep_temperatures_times_bins_is_bounded(runner: CliRunner) -> None:
    result = runner.invoke(app, ["sweep-temp", str(SAMPLE), "--steps", "2000", "--bins", "10000"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "calibkit: error: 2000 temperatures x 10000 bins is 2e+07 per-bin sums per model, above "
        "the limit of 1e+07; use fewer temperatures or bins\n"
    )


def test_sweep_explicit_temperatures_are_bounded(runner: CliRunner) -> None:
    temps = ",".join(["1.5"] * (limits.MAX_TEMPERATURES + 1))
    result = runner.invoke(app, ["sweep-temp", str(SAMPLE), "--temps", temps])
    assert result.exit_code == 2, result.output
    assert result.stderr == "calibkit: error: --temps: at most 10000 temperatures; got 10001\n"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--bootstrap", "2000000"], "the number of bootstrap replicates must be <= 1000000"),
        (["--seed", str(2**63)], "the bootstrap seed must be an integer from 0 to 2**63 - 1"),
    ],
)
def test_ece_all_bootstrap_bounds(runner: CliRunner, args: list[str], line: str) -> None:
    result = runner.invoke(app, ["ece", str(SAMPLE), "--all", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"calibkit: error: {line}")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--bins", "20000"], "--bins must be from 1 to 10000; got 20000"),
        (["--bootstrap", "2000000"], "--bootstrap must be from 1 to 1000000; got 2000000"),
        (["--seed", str(2**63)], f"--seed must be from 0 to {2**63 - 1}; got {2**63}"),
    ],
)
def test_check_bounds(runner: CliRunner, args: list[str], line: str) -> None:
    result = runner.invoke(
        app, ["check", str(SAMPLE), "--baseline", str(SAMPLE), "--max-increase", "ece=1", *args]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr == f"calibkit: error: {line}\n"


# --------------------------------------------------------------------------------------------
# small text files


def test_a_file_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"1" * 11)
    with pytest.raises(InputError, match=r"x.json: larger than 10 bytes; not a baseline$"):
        read_small_text(path, "a baseline", limit=10)
    path.write_bytes(b"1" * 10)
    assert read_small_text(path, "a baseline", limit=10) == "1" * 10


def test_the_default_limit_is_16_mib(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    with open(path, "wb") as fh:
        fh.truncate(limits.MAX_TEXT_BYTES + 1)  # sparse: no 16 MiB written
    with pytest.raises(InputError, match="larger than 16 MiB; not a TOML file"):
        load_toml(path)


def test_character_devices_directories_and_missing_files(tmp_path: Path) -> None:
    if os.path.exists("/dev/zero"):
        with pytest.raises(InputError, match=r"^/dev/zero: is a character device; a c must be"):
            read_small_text("/dev/zero", "a c")  # opened read-only: nothing is written
    with pytest.raises(InputError, match="is a directory; a c must be a file"):
        read_small_text(tmp_path, "a c")
    with pytest.raises(InputError, match="no such file"):
        read_small_text(tmp_path / "missing.json", "a c")


def test_a_fifo_is_read_and_never_blocks_opening(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    import threading
    import time

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    assert read_small_text(fifo) == ""  # no writer: end of file at once, no hang

    def write() -> None:
        with open(fifo, "w") as fh:  # blocks until a reader opens the FIFO
            fh.write('{"a": 1}')

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    text, deadline = "", time.monotonic() + 60
    while not text and time.monotonic() < deadline:  # until the writer is there
        text = read_small_text(fifo)
        time.sleep(0.005)
    writer.join(timeout=60)
    assert text == '{"a": 1}'


def test_text_must_be_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("bins = 15 # caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 15\); not a TOML file"):
        load_toml(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 10**6, "nested too deeply"),
        ('{"a":' * 10**5, "nested too deeply"),
        ("7" * 5001, "an integer with too many digits"),
        ('{"n": -' + "9" * 4301 + "}", "an integer with too many digits"),
        ("{", "Expecting property name enclosed in double quotes at line 1"),
    ],
)
def test_hostile_json_is_one_input_error(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=rf"^x\.json: not valid JSON \({problem}\)$"):
        parse_json(text, "x.json")


def test_calibrator_from_json_uses_the_same_checks() -> None:
    from calibkit.calibrators.temperature import TemperatureScaler

    with pytest.raises(InputError, match=r"^c: not valid JSON \(nested too deeply\)$"):
        TemperatureScaler.from_json("[" * 10**6, source="c")


# --------------------------------------------------------------------------------------------
# torch devices and dtypes


def test_check_device_refuses_what_calibkit_cannot_compute_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch = pytest.importorskip("torch")
    from calibkit.engine.torch_backend import check_device

    assert check_device("cpu").type == "cpu"
    with pytest.raises(UsageError, match=r"^device='meta': calibkit computes on cpu or cuda"):
        check_device("meta")
    with pytest.raises(UsageError, match=r"^device='bogus': not a torch device"):
        check_device("bogus")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1").index == 1
    with pytest.raises(UsageError, match=r"only 2 CUDA devices \(cuda:0 to cuda:1\)"):
        check_device("cuda:2")


def test_longdouble_chunks_reach_torch_as_float64() -> None:
    pytest.importorskip("torch")
    from calibkit.engine.torch_backend import _torch_ready, check_device, torch_chunk_sums

    z = np.random.default_rng(1).standard_normal((50, 4))
    y = np.arange(50) % 4
    assert _torch_ready(z.astype(np.longdouble)).dtype == np.float64
    assert _torch_ready(z.astype(np.float32)).dtype == np.float32
    kw = {"kind": "logits", "n_classes": 4, "n_bins": 15, "binning": "width",
          "binary_mode": "top-label", "device": check_device("cpu")}  # fmt: skip
    a = torch_chunk_sums(z, y, **kw)  # type: ignore[arg-type]
    b = torch_chunk_sums(z.astype(np.longdouble), y, **kw)  # type: ignore[arg-type]
    assert a.sum_log_prob == pytest.approx(b.sum_log_prob, rel=1e-12)


# --------------------------------------------------------------------------------------------
# configuration


def test_gate_config_bounds_flags() -> None:
    from calibkit.gate.config import gate_config

    with pytest.raises(UsageError) as info:
        gate_config({"bins": 0, "max_ece": 0.1})
    assert str(info.value) == "bins must be from 1 to 10000; got 0"  # the settings key
    assert info.value.render(FLAGS) == "--bins must be from 1 to 10000; got 0"
    assert gate_config({"bins": MAX_BINS, "max_ece": 0.1}).n_bins == MAX_BINS


def test_limits_and_start_up_modules_import_nothing() -> None:
    """``calibkit.limits`` is usable by the option declarations without numpy, and importing
    ``calibkit`` (which the console script does before calibkit can install its signal
    handlers) runs no import at all."""
    code = (
        "import sys; before = set(sys.modules)\n"
        "import calibkit._entry, calibkit.limits\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "['calibkit', 'calibkit._entry', 'calibkit.limits']"
