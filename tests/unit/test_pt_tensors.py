"""``.pt`` entries: plain tensors only, read without calling methods the file can replace.

``torch.load(weights_only=True)`` still rebuilds a tensor's instance ``__dict__`` from the file,
so a file can set ``detach`` (or ``numpy``, ``cpu``, ...) on a tensor object to any value the safe
loader allows; reading the tensor then called that value instead of the method (a traceback).
Every file is built here, in ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import calibkit
from calibkit.cli import app
from calibkit.errors import InputError

torch = pytest.importorskip("torch")


def _save(path: Path, logits, labels=None) -> Path:
    if labels is None:
        labels = torch.tensor([0, 1, 2, 1])
    torch.save({"logits": logits, "labels": labels}, path)
    return path


def _logits() -> torch.Tensor:
    return torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.0]])


@pytest.mark.parametrize(
    ("name", "value"),
    [("detach", 1), ("cpu", "x"), ("numpy", 0), ("to", None), ("__torch_function__", 1.5)],
)
def test_a_replaced_tensor_method_is_one_line(tmp_path, name, value) -> None:
    tensor = _logits()
    setattr(tensor, name, value)
    path = _save(tmp_path / "hostile.pt", tensor)
    assert name in vars(torch.load(path, weights_only=True)["logits"])  # the loader keeps it
    result = CliRunner().invoke(app, ["ece", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"calibkit: error: {path}: entry 'logits' is a tensor whose {name!r} attribute the "
        "file replaces (a crafted file); save plain tensors"
    ]
    assert result.stdout == ""


def test_a_replaced_method_on_the_labels_or_a_parameter(tmp_path) -> None:
    labels = torch.tensor([0, 1, 2, 1])
    labels.detach = 7
    path = _save(tmp_path / "labels.pt", _logits(), labels)
    with pytest.raises(InputError, match="entry 'labels' is a tensor whose 'detach' attribute"):
        calibkit.read_predictions(path)
    param = torch.nn.Parameter(_logits())
    param.is_complex = 1
    path = _save(tmp_path / "param.pt", param)
    with pytest.raises(InputError, match="entry 'logits' is a tensor whose 'is_complex'"):
        calibkit.read_predictions(path)


def test_apply_temp_refuses_before_writing(tmp_path) -> None:
    tensor = _logits()
    tensor.is_floating_point = 0  # what apply-temp's writer would call
    path = _save(tmp_path / "hostile.pt", tensor)
    out = tmp_path / "out.pt"
    result = CliRunner().invoke(
        app, ["apply-temp", str(path), "--temperature", "2", "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1
    assert "'is_floating_point' attribute the file replaces" in result.stderr
    assert not out.exists()


def test_plain_tensors_parameters_and_harmless_attributes_are_read(tmp_path) -> None:
    expected = _logits().numpy()
    for name, logits in [
        ("plain", _logits()),
        ("param", torch.nn.Parameter(_logits(), requires_grad=True)),
        ("buffer", torch.nn.Buffer(_logits())),  # carries `persistent` and `_is_buffer`
        ("view", torch.cat([_logits(), _logits()], 1)[:, ::2][:, :3]),
    ]:
        path = _save(tmp_path / f"{name}.pt", logits)
        preds = calibkit.load_predictions(path)
        if name == "view":
            expected_view = torch.cat([_logits(), _logits()], 1)[:, ::2][:, :3].numpy()
            np.testing.assert_array_equal(preds.scores, expected_view)
        else:
            np.testing.assert_array_equal(preds.scores, expected)


def test_a_tensor_subclass_is_refused_by_the_safe_loader(tmp_path) -> None:
    path = _save(tmp_path / "sub.pt", _logits().as_subclass(_Subclass))
    result = CliRunner().invoke(app, ["ece", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"calibkit: error: {path}: holds pickled Python objects, which calibkit never loads "
        "(save a dict of tensors)"
    ]


class _Subclass(torch.Tensor):
    def detach(self):  # pragma: no cover - never called: the loader refuses the class
        raise AssertionError("a method from the file's class ran")
