"""Fuzzing the readers: whatever a predictions file holds, calibkit reads it or refuses it.

The property, for ``.npz``, ``.parquet`` and ``.pt`` files alike: ``read_predictions(path)``
followed by ``summarize(...)`` either

* succeeds, with ``n`` equal to the rows read, ECE, MCE, RMSCE, accuracy and mean confidence
  finite and in ``[0, 1]``, Brier finite and in ``[0, 2]`` (up to ``2.0201`` for float16 rows,
  which may sum to ``1 + 1e-2``), NLL ``>= 0`` and never NaN (``+inf`` is allowed: a logit gap
  beyond float64's range) -- except for confidence-only files, whose NLL and Brier are NaN by
  design (they are reported as null); or
* raises :class:`calibkit.errors.InputError` whose message is one line starting ``"<path>: "``.

Any other exception (a traceback for the user) is a bug. Inputs are generated arrays of every
dtype numpy can save (floats of all widths and byte orders, integers, bool, complex, bytes and
str, datetimes, structured and void records, pickled objects), shapes of rank 0 to 3 with empty
dimensions, the key names calibkit knows (and others), values with NaN, inf, huge and negative
numbers; and valid files (the sample data and small generated ones) with random corruption:
flipped bytes, truncation, inserted bytes, zeroed and overwritten blocks.

Each test runs ``CALIBKIT_FUZZ_EXAMPLES`` examples (default 60, so the module takes a few
seconds). A long fuzzing session::

    CALIBKIT_FUZZ_EXAMPLES=20000 python -m pytest tests/property/test_fuzz_readers.py -q

Hypothesis keeps failing examples in ``.hypothesis/`` and replays them first on the next run;
add ``--hypothesis-seed=N`` for another sequence, or ``--hypothesis-show-statistics`` to see how
many examples were read and how many refused (the ``event`` lines).

Bugs found by this module are pinned at its end by deterministic tests marked
``xfail(strict=True)``. Inside the random tests an example that hits one of them is rejected
(see :data:`KNOWN_BUGS`), and the generators avoid two of them (integer probabilities; tensor
types numpy cannot hold), so that a known bug does not hide new ones.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from calibkit.errors import InputError
from calibkit.loaders import read_predictions
from calibkit.metrics import summarize

EXAMPLES = int(os.environ.get("CALIBKIT_FUZZ_EXAMPLES", "60"))
#: The default run draws the same examples every time (a CI run must not fail on an example no
#: earlier run drew); a long session (``CALIBKIT_FUZZ_EXAMPLES`` set) explores new ones.
EXPLORE = "CALIBKIT_FUZZ_EXAMPLES" in os.environ
settings.register_profile(
    "calibkit-fuzz",
    max_examples=EXAMPLES,
    derandomize=not EXPLORE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("calibkit-fuzz")

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"

# --------------------------------------------------------------------------------------------
# the property


#: Foreign exceptions known to escape calibkit: ``(function, exception type)``, each pinned by a
#: strict xfail test below (named in the comment). Inside hypothesis such an example is rejected
#: rather than failed, so that the fuzzing goes on looking for other bugs; once a bug is fixed,
#: its xfail test turns XPASS (a failure) and its entry here must go.
KNOWN_BUGS: list[tuple[str, type[BaseException]]] = []  # all found so far are fixed


def known_bug(err: BaseException) -> bool:
    functions = {
        frame.f_code.co_name
        for frame, _ in traceback.walk_tb(err.__traceback__)
        if f"{os.sep}calibkit{os.sep}" in frame.f_code.co_filename
    }
    return any(name in functions and isinstance(err, kind) for name, kind in KNOWN_BUGS)


def check_reads_or_refuses(path: Path, *, n_bins: int = 15) -> str:
    """Read and summarise ``path``; returns ``"read"`` or ``"refused"`` (else the test fails)."""
    try:
        source = read_predictions(path)
        summary = summarize(source, n_bins=n_bins)
    except InputError as err:
        refusal: InputError | None = err
    except Exception as err:
        if currently_in_test_context() and known_bug(err):
            reject()
        raise
    else:
        refusal = None
    if refusal is not None:
        message = str(refusal)
        if "\n" in message and "present: " in message and currently_in_test_context():
            reject()  # key names listed raw: test_key_names_with_control_characters
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        note(f"refused: {refusal.problem.split(' ')[0]}")
        return "refused"
    assert summary.n == source.n_rows
    assert summary.bins.count.sum() == summary.n
    for name in ("ece", "mce", "rmsce", "accuracy", "mean_confidence", "saturated_fraction"):
        value = getattr(summary, name)
        assert math.isfinite(value) and 0.0 <= value <= 1.0, (name, value)
    if source.kind == "confidence":  # no distribution: NLL and Brier unknown (reported as null)
        assert math.isnan(summary.nll) and math.isnan(summary.brier)
    else:
        assert not math.isnan(summary.nll) and summary.nll >= 0.0, summary.nll
        # rows may sum to 1 + 1e-2 (float16 tolerance, PROB_SUM_ATOL): sum p^2 <= (1 + 1e-2)^2
        assert math.isfinite(summary.brier) and 0.0 <= summary.brier <= 1.0201 + 1.0
    note(f"read: {source.kind}")
    return "read"


def note(what: str) -> None:
    """Count outcomes for ``--hypothesis-show-statistics`` (outside hypothesis: nothing)."""
    if currently_in_test_context():
        event(what)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh_path(workdir: Path, suffix: str) -> Path:
    """A new file name for each example (an earlier array may still be memory-mapped)."""
    fd, name = tempfile.mkstemp(suffix=suffix, dir=workdir)
    os.close(fd)
    return Path(name)


def check_bytes(workdir: Path, data: bytes, suffix: str) -> str:
    path = fresh_path(workdir, suffix)
    try:
        path.write_bytes(data)
        return check_reads_or_refuses(path)
    finally:
        path.unlink()


# --------------------------------------------------------------------------------------------
# random arrays in .npz files

SCORE_NAMES = ["logits", "logit", "LOGITS", "probs", "probabilities", "prob", "proba", "y_prob"]
SCORE_NAMES += ["y_proba", "Probs"]
LABEL_NAMES = ["labels", "label", "targets", "target", "y", "y_true", "Labels"]
CONFIDENCE_NAMES = ["confidence", "confidences", "conf", "correct", "is_correct", "correctness"]
OTHER_NAMES = ["scores", "x", "arr_0", "logit_0", "prob_1", "", "a/b", "logits.npy", "é", " y"]
ANY_NAME = st.sampled_from(SCORE_NAMES + LABEL_NAMES + CONFIDENCE_NAMES + OTHER_NAMES)

STRUCTURED = np.dtype([("a", "<f4"), ("b", "<i2")])
DTYPES = [
    "float16", "float32", "float64", "longdouble", ">f8", ">f4", ">f2",
    "int8", "int16", "int32", "int64", ">i4", "uint8", "uint16", "uint32", "uint64",
    "bool", "complex64", "complex128", "S4", "U4", "M8[s]", "m8[ms]", "V8", STRUCTURED, "O",
]  # fmt: skip
FLOAT_DTYPES = ["float16", "float32", "float64", ">f8", "float32", "float64"]

SPECIAL = [0.0, -0.0, 1.0, 0.5, 1e-300, 5e-324, 65504.0, 65520.0, 3.5e38, 1e308, -1e308]
SPECIAL += [2.0**63, 2.0**64, -(2.0**63), math.nan, math.inf, -math.inf]
ELEMENTS = st.one_of(
    st.integers(-2, 12).map(float),
    st.floats(0, 1),
    st.floats(-1e3, 1e3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL),
)


def convert(values: np.ndarray, dtype: Any) -> np.ndarray:
    """``values`` (float64) as ``dtype``, however lossy (casting NaN to int included)."""
    dt = np.dtype(dtype)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if dt.names:
            out = np.zeros(values.shape, dt)
            for name in dt.names:
                out[name] = values.astype(dt[name])
            return out
        if dt.kind == "V":
            return values.astype("<f8").view(dt)
        try:
            return values.astype(dt)
        except (ValueError, TypeError, OverflowError):
            return np.zeros(values.shape, dt)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@st.composite
def shapes_near(draw: st.DrawFn, canonical: tuple[int, ...]) -> tuple[int, ...]:
    """Usually ``canonical``; sometimes any shape of rank 0 to 3, empty dimensions included."""
    if draw(st.sampled_from(range(10))) < 8:  # sampled_from: hypothesis favours 0 in integers()
        return canonical
    return draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))


@st.composite
def random_array(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    values = draw(hnp.arrays(np.float64, shape, elements=ELEMENTS))
    return convert(values, draw(st.sampled_from(DTYPES)))


@st.composite
def score_array(draw: st.DrawFn, n: int, k: int, kind: str) -> np.ndarray:
    canonical = draw(st.sampled_from([(n, k), (n, k), (n,), (n, 1)]))
    shape = draw(shapes_near(canonical))
    if draw(st.integers(0, 2)) == 0:  # a third: any dtype, any values
        return draw(random_array(shape))
    z = draw(hnp.arrays(np.float64, shape, elements=st.floats(-30, 30)))
    if kind == "probs" and len(shape) >= 1 and shape[-1] >= 2:
        z = softmax(z)
    elif kind == "probs":
        z = 1 / (1 + np.exp(-z))
    arr = convert(z, draw(st.sampled_from(FLOAT_DTYPES)))
    if arr.size and draw(st.integers(0, 2)) == 0:  # one special value somewhere
        flat = arr.reshape(-1)
        with np.errstate(all="ignore"):  # 1e308 as float16 is inf: wanted
            flat[draw(st.integers(0, arr.size - 1))] = draw(st.sampled_from(SPECIAL))
    return arr


@st.composite
def label_array(draw: st.DrawFn, n: int, k: int) -> np.ndarray:
    soft = k >= 2 and draw(st.integers(0, 4)) == 0
    shape = draw(shapes_near((n, k) if soft else (n,)))
    if draw(st.integers(0, 3)) == 0:
        return draw(random_array(shape))
    if soft:
        z = draw(hnp.arrays(np.float64, shape, elements=st.floats(-5, 5)))
        return softmax(z) if len(shape) >= 1 and shape[-1] >= 1 else z
    top = max(k, 2)
    labels = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, top - 1)))
    dtype = draw(st.sampled_from(["int64", "int32", "uint8", "int8", "float64", "bool"]))
    return convert(labels.astype(np.float64), dtype)


@st.composite
def npz_contents(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n = draw(st.sampled_from([3, 1, 2, 5, 8, 0]))
    k = draw(st.sampled_from([3, 2, 1, 5, 0]))
    layout = draw(st.sampled_from(["scores", "scores", "scores", "confidence", "anything"]))
    arrays: dict[str, np.ndarray] = {}
    if layout == "scores":
        name = draw(st.sampled_from(SCORE_NAMES + OTHER_NAMES[:2]))
        kind = "probs" if name.lower().startswith(("prob", "y_prob")) else "logits"
        arrays[name] = draw(score_array(n, k, kind))
        arrays[draw(st.sampled_from(LABEL_NAMES + OTHER_NAMES[:2]))] = draw(label_array(n, k))
    elif layout == "confidence":
        conf = draw(hnp.arrays(np.float64, draw(shapes_near((n,))), elements=st.floats(0, 1)))
        hit = draw(
            hnp.arrays(np.float64, draw(shapes_near((n,))), elements=st.sampled_from([0, 1]))
        )
        arrays[draw(st.sampled_from(CONFIDENCE_NAMES[:3]))] = (
            conf if draw(st.booleans()) else draw(random_array(conf.shape))
        )
        arrays[draw(st.sampled_from(CONFIDENCE_NAMES[3:]))] = (
            hit if draw(st.booleans()) else draw(random_array(hit.shape))
        )
    extra = draw(
        st.dictionaries(
            ANY_NAME,
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4).flatmap(random_array),
            max_size=3 if layout == "anything" else 1,
        )
    )
    for name, arr in extra.items():
        arrays.setdefault(name, arr)
    return {name: avoid_known_bug(name, arr) for name, arr in arrays.items()}


PROB_NAMES = {"probs", "probabilities", "prob", "proba", "y_prob", "y_proba"}


def avoid_known_bug(name: str, arr: np.ndarray) -> np.ndarray:
    """Integer probabilities are not range-checked (pinned by
    :func:`test_integer_probabilities_are_range_checked`); store them as floats here, so that
    the random tests look for other bugs."""
    if name.lower() in PROB_NAMES and arr.dtype.kind in "iu":
        with np.errstate(all="ignore"):
            return arr.astype(np.float64)
    return arr


def save_npz(path: Path, arrays: dict[str, np.ndarray], *, compressed: bool) -> None:
    save = np.savez_compressed if compressed else np.savez
    with open(path, "wb") as fh:
        save(fh, **arrays)


@FUZZ
@given(arrays=npz_contents(), compressed=st.booleans())
def test_random_npz_is_read_or_refused(
    workdir: Path, arrays: dict[str, np.ndarray], compressed: bool
) -> None:
    path = fresh_path(workdir, ".npz")
    try:
        save_npz(path, arrays, compressed=compressed)
        check_reads_or_refuses(path)
    finally:
        path.unlink()


# --------------------------------------------------------------------------------------------
# byte corruption of valid files

N, K = 12, 3


def _logits(n: int = N, k: int = K) -> np.ndarray:
    return np.random.default_rng(7).normal(scale=2.0, size=(n, k))


def _labels(n: int = N, k: int = K) -> np.ndarray:
    return np.arange(n) % k


def _npz_bytes(compressed: bool, **arrays: Any) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _parquet_bytes(table: pa.Table, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def _list_column(values: np.ndarray) -> pa.Array:
    offsets = pa.array(np.arange(0, values.size + 1, values.shape[1], dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1)))


def _pt_bytes(make: Callable[[Any], Any]) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(make(torch), buf)
    return buf.getvalue()


def valid_files() -> list[tuple[str, str, bytes]]:
    """``(name, suffix, bytes)`` of valid predictions files, each read without error."""
    z, y = _logits(), _labels()
    p = softmax(z)
    files = [
        ("sample-npz", ".npz", (SAMPLE / "digits_hard_test.npz").read_bytes()),
        ("sample-parquet", ".parquet", (SAMPLE / "digits_hard_test.parquet").read_bytes()),
        ("npz-stored-f32", ".npz", _npz_bytes(False, logits=z.astype(np.float32), labels=y)),
        ("npz-deflated-probs", ".npz", _npz_bytes(True, probs=p, labels=y)),
        ("npz-binary", ".npz", _npz_bytes(False, logit=z[:, 0], y=y % 2)),
        ("npz-soft", ".npz", _npz_bytes(False, logits=z, labels=softmax(z / 3))),
        ("npz-confidence", ".npz", _npz_bytes(False, confidence=p.max(1), correct=y == 0)),
        (
            "parquet-wide",
            ".parquet",
            _parquet_bytes(pa.table({**{f"logit_{k}": z[:, k] for k in range(K)}, "label": y})),
        ),
        (
            "parquet-list",
            ".parquet",
            _parquet_bytes(pa.table({"logits": _list_column(z), "label": y}), row_group_size=5),
        ),
        (
            "parquet-fixed-size-list-probs",
            ".parquet",
            _parquet_bytes(
                pa.table(
                    {
                        "probs": pa.FixedSizeListArray.from_arrays(pa.array(p.reshape(-1)), K),
                        "label": y.astype(np.int32),
                    }
                ),
                compression="snappy",
            ),
        ),
        (
            "parquet-soft-list",
            ".parquet",
            _parquet_bytes(pa.table({"logits": _list_column(z), "labels": _list_column(p)})),
        ),
        (
            "parquet-binary-f32",
            ".parquet",
            _parquet_bytes(pa.table({"logit": z[:, 0].astype(np.float32), "y": y % 2})),
        ),
        (
            "parquet-confidence",
            ".parquet",
            _parquet_bytes(
                pa.table({"conf": p.max(1), "correct": (y == 0).astype(np.int8)}),
                compression="none",
            ),
        ),
    ]
    try:
        import torch  # noqa: F401
    except ImportError:  # pragma: no cover - torch is an optional extra
        return files
    files += [
        (
            "pt-f32",
            ".pt",
            _pt_bytes(lambda t: {"logits": t.tensor(z, dtype=t.float32), "labels": t.tensor(y)}),
        ),
        (
            "pt-bf16",
            ".pt",
            _pt_bytes(lambda t: {"logits": t.tensor(z).to(t.bfloat16), "labels": t.tensor(y)}),
        ),
        (
            "pt-f16-probs",
            ".pt",
            _pt_bytes(lambda t: {"probs": t.tensor(p).to(t.float16), "labels": t.tensor(y)}),
        ),
        (
            "pt-binary-extra",
            ".pt",
            _pt_bytes(
                lambda t: {
                    "logit": t.tensor(z[:, 0]),
                    "y": t.tensor(y % 2, dtype=t.int8),
                    "ids": t.arange(N),
                }
            ),
        ),
    ]
    return files


VALID = valid_files()


@pytest.mark.parametrize(("name", "suffix", "data"), VALID, ids=[v[0] for v in VALID])
def test_valid_files_are_read(workdir: Path, name: str, suffix: str, data: bytes) -> None:
    """Control: before corruption, every base file is read."""
    assert check_bytes(workdir, data, suffix) == "read"


# offsets: anywhere, near the start (headers, magic bytes) or near the end (zip directory,
# parquet footer); negative values count from the end
OFFSETS = st.one_of(st.integers(0, 2**31), st.integers(0, 255), st.integers(-512, -1))
CORRUPTIONS = st.one_of(
    st.tuples(st.just("flip"), OFFSETS, st.integers(1, 255)),
    st.tuples(st.just("truncate"), OFFSETS),
    st.tuples(st.just("insert"), OFFSETS, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("zero"), OFFSETS, st.integers(1, 64)),
    st.tuples(st.just("overwrite"), OFFSETS, st.binary(min_size=1, max_size=8)),
)


def corrupt(data: bytes, ops: list[tuple[Any, ...]]) -> bytes:
    buf = bytearray(data)
    for op, offset, *arg in ops:
        if not buf:
            break
        pos = offset % len(buf) if offset >= 0 else max(0, len(buf) + offset)
        if op == "flip":
            buf[pos] ^= arg[0]
        elif op == "truncate":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = arg[0]
        elif op == "zero":
            buf[pos : pos + arg[0]] = bytes(len(buf[pos : pos + arg[0]]))
        else:
            buf[pos : pos + len(arg[0])] = arg[0]
    return bytes(buf)


def rows_without_row_groups(data: bytes) -> bool:
    """Whether a parquet footer counts rows but lists no row groups."""
    try:
        meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    except Exception:
        return False
    return meta.num_rows > 0 and meta.num_row_groups == 0


VALID_BY_NAME = {name: (suffix, data) for name, suffix, data in VALID}


def _corruption_test(suffixes: tuple[str, ...]) -> Callable[..., None]:
    bases = [name for name, suffix, _ in VALID if suffix in suffixes]
    if not bases:  # .pt files need torch, an optional extra

        def skipped(workdir: Path) -> None:
            pytest.skip(f"no valid {'/'.join(suffixes)} files to corrupt (torch not installed)")

        return skipped

    @FUZZ
    @given(base=st.sampled_from(bases), ops=st.lists(CORRUPTIONS, min_size=1, max_size=4))
    def test(workdir: Path, base: str, ops: list[tuple[Any, ...]]) -> None:
        suffix, data = VALID_BY_NAME[base]
        check_bytes(workdir, corrupt(data, ops), suffix)

    return test


test_corrupted_npz_is_read_or_refused = _corruption_test((".npz",))
test_corrupted_parquet_is_read_or_refused = _corruption_test((".parquet",))
test_corrupted_pt_is_read_or_refused = _corruption_test((".pt",))


# --------------------------------------------------------------------------------------------
# random .pt files: a dict of tensors of the dtypes numpy can hold

PT_DTYPES = [
    "float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
    "uint16", "uint32", "bool", "complex64",
]  # fmt: skip


@FUZZ
@given(arrays=npz_contents(), dtypes=st.lists(st.sampled_from(PT_DTYPES), min_size=4, max_size=4))
def test_random_pt_is_read_or_refused(
    workdir: Path, arrays: dict[str, np.ndarray], dtypes: list[str]
) -> None:
    torch = pytest.importorskip("torch")
    obj: dict[str, Any] = {}
    for (name, arr), drawn in zip(arrays.items(), dtypes * 2, strict=False):
        # integer probabilities: a known bug (test_integer_probabilities_are_range_checked)
        dtype = (
            "float64" if name.lower() in PROB_NAMES and drawn.startswith(("int", "u")) else drawn
        )
        values = convert(arr, np.float64) if arr.dtype.kind in "fiub" else np.zeros(arr.shape)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            obj[name] = torch.from_numpy(np.ascontiguousarray(values)).to(getattr(torch, dtype))
    path = fresh_path(workdir, ".pt")
    try:
        torch.save(obj, path)
        check_reads_or_refuses(path)
    finally:
        path.unlink()


def _float8(torch: Any) -> Any:
    return torch.zeros(N, K).to(torch.float8_e4m3fn)


def _complex32(torch: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ComplexHalf support is experimental"
        return torch.zeros(N, K, dtype=torch.complex32)


def _sparse(torch: Any) -> Any:
    return torch.tensor(_logits()).to_sparse()


def _quantized(torch: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated
        return torch.quantize_per_tensor(torch.tensor(_logits()).float(), 0.1, 0, torch.quint8)


def _meta(torch: Any) -> Any:
    return torch.zeros(N, K, device="meta")


PT_BUG = (
    "calibkit bug: loaders/torch_pt.py _to_numpy calls Tensor.numpy() unguarded; tensors numpy "
    "cannot hold raise TypeError/NotImplementedError instead of InputError"
)


@pytest.mark.parametrize("entry", ["logits", "labels"])
@pytest.mark.parametrize(
    "make", [_float8, _complex32, _sparse, _quantized, _meta], ids=lambda f: f.__name__[1:]
)
def test_pt_tensor_numpy_cannot_hold(workdir: Path, make: Callable[[Any], Any], entry: str) -> None:
    torch = pytest.importorskip("torch")
    obj = {"logits": torch.tensor(_logits()), "labels": torch.tensor(_labels())}
    obj[entry] = make(torch)
    path = fresh_path(workdir, ".pt")
    torch.save(obj, path)
    # float8 is converted to float32 (which holds it exactly) and read; the rest are refused
    expected = ("read", "refused") if make is _float8 else ("refused",)
    assert check_reads_or_refuses(path) in expected


INT_PROBS_BUG = (
    "calibkit bug: predictions.validate_scores returns early for integer dtypes, so integer "
    "probabilities outside [0, 1] or not summing to 1 are accepted (ECE > 1, negative NLL)"
)


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".pt"])
@pytest.mark.parametrize(
    "probs", [[[2, 0], [3, -4], [0, 1]], [0, 0, -1]], ids=["two-columns", "binary"]
)
def test_integer_probabilities_are_range_checked(
    workdir: Path, suffix: str, probs: list[Any]
) -> None:
    p = np.array(probs, dtype=np.int64)
    y = np.array([0, 1, 1])
    path = fresh_path(workdir, suffix)
    if suffix == ".npz":
        save_npz(path, {"probs": p, "labels": y}, compressed=False)
    elif suffix == ".parquet":
        columns = {f"prob_{k}": p[:, k] for k in range(p.shape[1])} if p.ndim == 2 else {"prob": p}
        pq.write_table(pa.table({**columns, "label": y}), path)
    else:
        torch = pytest.importorskip("torch")
        torch.save({"probs": torch.tensor(p), "labels": torch.tensor(y)}, path)
    assert check_reads_or_refuses(path) == "refused"


BF16_BUG = (
    "calibkit bug: loaders/torch_pt.py converts bfloat16 to float32 before validation, so "
    "PROB_SUM_ATOL['bfloat16'] (1e-2) never applies and torch.softmax output in bfloat16 is "
    "refused ('probability rows must sum to 1; row 1 sums to 0.998047')"
)


def test_bfloat16_softmax_probabilities_are_read(workdir: Path) -> None:
    torch = pytest.importorskip("torch")
    probs = torch.softmax(torch.tensor(_logits(), dtype=torch.bfloat16), dim=1)
    path = fresh_path(workdir, ".pt")
    torch.save({"probs": probs, "labels": torch.tensor(_labels())}, path)
    assert check_reads_or_refuses(path) == "read"


LIST_LENGTH_BUG = (
    "calibkit bug: loaders/parquet.py _list_length reads the first row of a list column outside "
    "any try: pyarrow's OSError (unreadable page) or StopIteration (no row groups) escapes "
    "open_parquet instead of an InputError"
)


@pytest.mark.parametrize("column", ["logits", "labels"])
def test_parquet_list_column_unreadable_pages(workdir: Path, column: str) -> None:
    """One byte put before a valid file shifts every page away from where the footer says."""
    z = _logits()
    columns = {"logits": _list_column(z), "labels": _list_column(softmax(z))}
    if column == "logits":
        columns["labels"] = pa.array(_labels())
    else:
        columns["logits"] = pa.FixedSizeListArray.from_arrays(pa.array(z.reshape(-1)), K)
    path = fresh_path(workdir, ".parquet")
    path.write_bytes(b"\x00" + _parquet_bytes(pa.table(columns)))
    assert check_reads_or_refuses(path) == "refused"


def test_parquet_footer_with_rows_but_no_row_groups(workdir: Path) -> None:
    """The footer (Thrift compact) of a 12-row file holds ``num_rows`` (field 3, i64: ``16 18``),
    then ``row_groups`` (field 4, a list: ``19``) whose header says one struct (``1c``), then that
    struct's first field (``19``). Zeroing ``1c 19`` makes the list empty and ends the metadata:
    pyarrow opens a file of 12 rows and no row groups (as a fuzzed file did)."""
    data = bytearray(_parquet_bytes(pa.table({"logits": _list_column(_logits()), "y": _labels()})))
    footer_len = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - footer_len
    at = data.find(b"\x16\x18\x19\x1c", start)
    assert at > 0
    data[at + 3 : at + 5] = b"\x00\x00"
    assert rows_without_row_groups(bytes(data))
    path = fresh_path(workdir, ".parquet")
    path.write_bytes(bytes(data))
    assert check_reads_or_refuses(path) == "refused"


ZIP_VERSION_BUG = (
    "calibkit bug: loaders/npz.py _check_size opens the archive with zipfile.ZipFile catching "
    "only BadZipFile, OSError and ValueError; a member needing zip version > 6.3 raises "
    "NotImplementedError('zip file version 10.9')"
)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_needing_an_unsupported_zip_version(workdir: Path, compressed: bool) -> None:
    """'Version needed to extract' (offset 6 of a central directory header) set to 10.9."""
    data = bytearray(_npz_bytes(compressed, logits=_logits(), labels=_labels()))
    at = data.find(b"PK\x01\x02")
    data[at + 6 : at + 8] = (109).to_bytes(2, "little")
    path = fresh_path(workdir, ".npz")
    path.write_bytes(bytes(data))
    assert check_reads_or_refuses(path) == "refused"


UTF8_BUG = (
    "calibkit bug: loaders/parquet.py open_parquet reads pf.schema_arrow outside its try; a "
    "column name that is not UTF-8 raises UnicodeDecodeError instead of an InputError"
)


def test_parquet_column_name_not_utf8(workdir: Path) -> None:
    z = _logits()
    data = _parquet_bytes(
        pa.table({**{f"logit_{k}": z[:, k] for k in range(K)}, "label": _labels()})
    )
    assert b"\x05label" in data  # the name in the Thrift schema: its length, then its bytes
    path = fresh_path(workdir, ".parquet")
    path.write_bytes(data.replace(b"\x05label", b"\x05\x80abel"))
    assert check_reads_or_refuses(path) == "refused"


CONTROL_CHARACTERS_BUG = (
    "calibkit bug: loaders/keys.py _listing joins key and column names raw, so a name holding "
    "a newline (or a terminal escape) splits the one-line error ('keys present: labels, "
    "scores<newline>fake line ...')"
)


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".pt"])
def test_key_names_with_control_characters(workdir: Path, suffix: str) -> None:
    name = "scores\nfake line"
    path = fresh_path(workdir, suffix)
    if suffix == ".npz":
        save_npz(path, {name: _logits(), "labels": _labels()}, compressed=False)
    elif suffix == ".parquet":
        pq.write_table(pa.table({name: _logits()[:, 0], "label": _labels() % 2}), path)
    else:
        torch = pytest.importorskip("torch")
        torch.save({name: torch.tensor(_logits()), "labels": torch.tensor(_labels())}, path)
    assert check_reads_or_refuses(path) == "refused"
