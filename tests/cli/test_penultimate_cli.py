"""`calibkit penultimate`: the JSON and table on the sample data, the figure, and one-line errors
(exit 2) for every bad input, crafted here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _cli import invoke, one_error_line, run_json
from typer.testing import CliRunner

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def _sample(model: str, split: str = "test") -> Path:
    return SAMPLE / f"digits_{model}_penultimate_{split}.npz"


def _layer(path: Path, n: int = 60, d: int = 8, k: int = 4, **change: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(k, d)).astype(np.float32)
    b = rng.normal(size=k).astype(np.float32)
    arrays = {"features": x, "weight": w, "bias": b, "logits": (x @ w.T + b).astype(np.float32),
              "labels": np.arange(n) % k}  # fmt: skip
    np.savez(path, **{**arrays, **change})
    return path


def test_json_on_the_sample_data_with_train_rows(runner: CliRunner) -> None:
    doc = run_json(
        runner, "penultimate", f"hard={_sample('hard')}", f"ls10={_sample('ls10')}",
        "--train", f"ls10={_sample('ls10', 'train')}",
    )  # fmt: skip
    assert [c["index"] for c in doc["classes"]] == [1, 3, 4]  # most frequent test labels
    assert (doc["per_class"], doc["seed"]) == (100, 0)
    hard, ls10 = doc["models"]
    assert list(hard["splits"]) == ["test"] and list(ls10["splits"]) == ["train", "test"]
    test = hard["splits"]["test"]
    assert test["available"] == test["sampled"] == [46, 46, 46]
    assert test["plane"]["tightness"] == pytest.approx(0.23514, abs=5e-6)
    assert set(test["plane"]["centre_distances"]) == {"ab", "ac", "bc"}
    assert test["full"]["tightness"] > test["plane"]["tightness"]
    assert test["templates"][0] == [0.0, 0.0]
    train = ls10["splits"]["train"]
    assert train["sampled"] == [91, 91, 90] and train["file"].endswith("ls10_penultimate_train.npz")


def test_per_class_draws_a_seeded_sample(runner: CliRunner) -> None:
    args = ("penultimate", str(_sample("hard")), "--per-class", "10")
    a = run_json(runner, *args, "--seed", "1")["models"][0]["splits"]["test"]
    b = run_json(runner, *args, "--seed", "1")["models"][0]["splits"]["test"]
    c = run_json(runner, *args, "--seed", "2")["models"][0]["splits"]["test"]
    assert a["sampled"] == [10, 10, 10] and a["available"] == [46, 46, 46]
    assert a == b and a["plane"] != c["plane"]


def test_class_names_from_a_file(runner: CliRunner, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("".join(f"digit{i}\n" for i in range(10)))
    doc = run_json(
        runner, "penultimate", str(_sample("hard")), "--class-names", names,
        "--classes", "digit0,digit8,7",
    )  # fmt: skip
    assert doc["classes"] == [{"index": 0, "name": "digit0"}, {"index": 8, "name": "digit8"},
                              {"index": 7, "name": "digit7"}]  # fmt: skip


def test_table_and_figure(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "fig.png"
    result = invoke(
        runner, "penultimate", f"hard={_sample('hard')}", f"ls20={_sample('ls20')}",
        "--train", f"hard={_sample('hard', 'train')}", "--out", out, "--own-axes",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr == f"calibkit: wrote {out}\n"
    assert "tightness" in result.stdout and "ls20" in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_parquet_with_weights_from_a_state_dict(runner: CliRunner, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    d = np.load(_sample("hard"))
    x = d["features"]
    pq.write_table(
        pa.table({"features": pa.array(list(x), type=pa.list_(pa.float32())),
                  "labels": d["labels"]}), tmp_path / "f.parquet",
    )  # fmt: skip
    state = {"fc.weight": torch.from_numpy(d["weight"]), "fc.bias": torch.from_numpy(d["bias"])}
    torch.save(state, tmp_path / "model.pt")
    doc = run_json(
        runner, "penultimate", tmp_path / "f.parquet", "--weights", tmp_path / "model.pt"
    )
    ref = run_json(runner, "penultimate", _sample("hard"))
    assert (
        doc["models"][0]["splits"]["test"]["plane"] == ref["models"][0]["splits"]["test"]["plane"]
    )


def test_transposed_weights_are_one_line(runner: CliRunner, tmp_path: Path) -> None:
    w = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    path = _layer(tmp_path / "t.npz", weight=w)
    msg = one_error_line(invoke(runner, "penultimate", path), path)
    assert "looks transposed" in msg


def test_a_wrong_layer_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    path = _layer(tmp_path / "w.npz", features=np.ones((60, 8), np.float32))
    msg = one_error_line(invoke(runner, "penultimate", path), path)
    assert msg.startswith("features @ weight.T + bias does not reproduce the logits 'logits'")
    assert "wrong layer or transposed weights; logits computed in lower precision" in msg


def test_ambiguous_features_name_the_option(runner: CliRunner, tmp_path: Path) -> None:
    path = _layer(tmp_path / "a.npz", activations=np.zeros((60, 8), np.float32))
    msg = one_error_line(invoke(runner, "penultimate", path), path)
    assert msg.endswith("'features', 'activations'; choose one with --features-key")


def test_two_classes_are_one_line(runner: CliRunner, tmp_path: Path) -> None:
    path = _layer(tmp_path / "k2.npz", k=2)
    msg = one_error_line(invoke(runner, "penultimate", path), path)
    assert "K = 2 classes" in msg


def test_a_missing_weight_suggests_the_options(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "f.npz"
    np.savez(path, features=np.zeros((5, 3)), labels=np.zeros(5, int))
    msg = one_error_line(invoke(runner, "penultimate", path), path)
    assert "--weight-key or give the final layer in a file of its own (--weights)" in msg


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--classes", "1,2"], "--classes 1,2 names 2 classes; give exactly 3"),
        (["--classes", "1,2,12"], "--classes 1,2,12: class 12 is out of range [0, 10)"),
        (["--train", "other=x.npz"], "--train names 'other', which is not one of the models"),
        (["--out", "fig.jpg"], "fig.jpg: figure format must be one of .png, .svg, .pdf (by "
                               "extension)"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line(runner: CliRunner, extra: list[str], message: str) -> None:
    result = invoke(runner, "penultimate", f"hard={_sample('hard')}", *extra)
    assert one_error_line(result) == message


def test_train_of_another_model_is_refused(runner: CliRunner) -> None:
    train = _sample("ls10", "train")
    result = invoke(runner, "penultimate", f"hard={_sample('hard')}", "--train", f"hard={train}")
    assert "--train must be the same model" in one_error_line(result, train)


def test_class_names_of_the_wrong_count(runner: CliRunner, tmp_path: Path) -> None:
    names = tmp_path / "n.txt"
    names.write_text("a\nb\nc\n")
    result = invoke(runner, "penultimate", _sample("hard"), "--class-names", names)
    assert one_error_line(result, names) == "holds 3 class names for 10 classes"


def test_the_figure_never_replaces_an_input(runner: CliRunner, tmp_path: Path) -> None:
    names = tmp_path / "names.png"  # a class-names file that happens to end in .png
    names.write_text("".join(f"c{i}\n" for i in range(10)))
    before = names.read_bytes()
    result = invoke(runner, "penultimate", _sample("hard"), "--class-names", names, "--out", names)
    one_error_line(result)
    assert names.read_bytes() == before


# --- the reviewer's cases (#16) ---------------------------------------------------------------


def test_a_file_without_examples_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    path = _layer(tmp_path / "empty.npz", n=0)
    msg = one_error_line(invoke(runner, "penultimate", path), path)
    assert msg == "features 'features' have no rows (N = 0): no examples"
    # also as the second model or a --train split
    result = invoke(
        runner, "penultimate", _sample("hard"), "--train", f"{_sample('hard').stem}={path}"
    )
    assert one_error_line(result, path).startswith("features 'features' have no rows")


def test_templates_on_one_line_name_the_file(runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, d = 60, 8
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(4, d)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    w[2] = ((w[0].astype(np.float64) + w[1]) / 2).astype(np.float32)
    b[2] = np.float32((float(b[0]) + float(b[1])) / 2)
    good = _layer(tmp_path / "good.npz")
    line = tmp_path / "line.npz"
    np.savez(line, features=x, weight=w, bias=b, labels=np.arange(n) % 4)
    result = invoke(runner, "penultimate", good, line, "--classes", "0,1,2")
    msg = one_error_line(result, line)
    assert msg == (
        "the templates of classes 0, 1, 2 lie on one line (within the rounding of float32 "
        "weights): no plane; choose other --classes"
    )
    assert invoke(runner, "penultimate", good, line, "--classes", "0,1,3").exit_code == 0


def test_tf32_logits_are_accepted_with_the_logits_precision(
    runner: CliRunner, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    n, d = 60, 64
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(4, d)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)

    def tf32(a: np.ndarray) -> np.ndarray:  # round to a 10-bit mantissa, to nearest
        bits = a.view(np.uint32)
        return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)

    z = (tf32(x).astype(np.float64) @ tf32(w).astype(np.float64).T + b).astype(np.float32)
    path = tmp_path / "tf32.npz"
    np.savez(path, features=x, weight=w, bias=b, logits=z, labels=np.arange(n) % 4)
    msg = one_error_line(invoke(runner, "penultimate", path), path)
    assert msg.startswith("features @ weight.T + bias does not reproduce the logits 'logits'")
    assert msg.endswith(
        "checked at float32 precision): wrong layer or transposed weights; logits computed in "
        "lower precision (TF32, autocast): give --logits-precision"
    )
    result = invoke(runner, "penultimate", path, "--logits-precision", "tf32")
    assert result.exit_code == 0, result.output
    bad = invoke(runner, "penultimate", path, "--logits-precision", "fp8")
    assert one_error_line(bad).startswith("--logits-precision fp8 must be one of auto, float32")


def test_a_class_without_examples_names_the_file(runner: CliRunner, tmp_path: Path) -> None:
    full = _layer(tmp_path / "full.npz")
    labels = np.arange(60) % 3  # classes 0, 1, 2 only: no 3
    short = _layer(tmp_path / "short.npz", labels=labels)
    msg = one_error_line(invoke(runner, "penultimate", full, short, "--classes", "0,1,3"), short)
    assert msg == (
        "has no examples of class 3; choose classes present in every file with --classes"
    )
    train = _layer(tmp_path / "train.npz", labels=labels)
    result = invoke(
        runner, "penultimate", f"m={full}", "--train", f"m={train}", "--classes", "3,0,1"
    )
    assert one_error_line(result, train).startswith("the --train split has no examples of class 3")


def test_a_repeated_weights_file_names_the_option(runner: CliRunner, tmp_path: Path) -> None:
    a = _layer(tmp_path / "a.npz")
    result = invoke(runner, "penultimate", a, "--weights", a, "--weights", a)
    assert one_error_line(result) == (
        "--weights: model name 'a' is given more than once; name them NAME=PATH"
    )


def test_the_table_names_the_pairs_by_class(runner: CliRunner) -> None:
    result = invoke(runner, "penultimate", _sample("hard"))
    assert result.exit_code == 0, result.output
    assert "centre dist 1-3 / 1-4 / 3-4" in result.stdout
    assert "ab / ac / bc" not in result.stdout
