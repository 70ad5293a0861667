"""Parquet confidence rows whose confidences are text ("80%", "8/10"): --parse-confidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibkit.errors import InputError
from calibkit.loaders import ReadOptions, read_predictions


def _rows(path, confidence, correct=None) -> None:
    correct = [1, 0, 1][: len(confidence)] if correct is None else correct
    pd.DataFrame({"confidence": confidence, "correct": correct}).to_parquet(path)


def _read(path, parse: bool = True):
    src = read_predictions(path, ReadOptions(parse_confidence=parse))
    conf = np.concatenate([c for c, _ in src.chunks(2)])
    hit = np.concatenate([y for _, y in src.chunks(2)])
    return src, conf, hit


def test_text_confidences_are_parsed_like_record_files(tmp_path) -> None:
    path = tmp_path / "c.parquet"
    _rows(path, ["80%", " 0.9 ", "8/10"])
    src, conf, hit = _read(path)
    assert src.kind == "confidence"
    assert conf.tolist() == [0.8, 0.9, 0.8]
    assert hit.tolist() == [1.0, 0.0, 1.0]


def test_numbers_are_read_as_before_with_the_flag(tmp_path) -> None:
    path = tmp_path / "n.parquet"
    _rows(path, [0.25, 0.5, 1.0])
    assert _read(path)[1].tolist() == [0.25, 0.5, 1.0]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["80%", None, "8/10"], r"row 1: 'confidence' is missing \(null\)"),
        (["80%", "high", "8/10"], r"row 1: 'confidence' 'high' is not a number"),
        (["80%", "170%", "8/10"], r"must lie in \[0, 1\]; row 1 has 1.7"),
    ],
)
def test_bad_text_is_one_error_naming_the_row(tmp_path, values, message) -> None:
    path = tmp_path / "bad.parquet"
    _rows(path, values)
    with pytest.raises(InputError, match=message):
        _read(path)


def test_text_without_the_flag_names_it(tmp_path) -> None:
    path = tmp_path / "t.parquet"
    _rows(path, ["80%", "0.9", "8/10"])
    with pytest.raises(InputError, match=r"holds text.*parse_confidence=True"):
        _read(path, parse=False)
