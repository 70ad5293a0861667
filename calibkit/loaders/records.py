"""Predictions from record files (``.jsonl``, ``.json``, ``.csv``): LLM evaluation outputs.

A ``.jsonl`` / ``.json`` file holds one JSON object per line, or one JSON array of records
(:mod:`calibkit.readers.jsonl`; a problem names ``line N``, or ``record N`` of an array).

The records of a file are one of three layouts, told apart by their fields (the first record
decides, every record must follow it; a record that fits two layouts is refused):

lm-evaluation-harness samples (``samples_<task>_<date>.jsonl``, written by ``--log_samples``)
    Also ``samples_<task>_<date>.json`` (JSON Lines; lm-eval's name from May to June 2024) and
    ``<model_args>_<task>.jsonl`` holding one JSON array (v0.4.0 to v0.4.2; its task named by
    the ``results.json`` beside it, :func:`task_of`).
    One record per question: ``doc_id``, ``doc``, ``target``, ``arguments`` (per choice the
    context and the continuation: ``{"gen_args_0": {"arg_0": ctx, "arg_1": cont}, ...}``, or a
    list of pairs), ``resps`` / ``filtered_resps`` (per choice ``[loglikelihood, is_greedy]``,
    written as text by lm-eval, ``[[ll, greedy]]`` in ``resps``), ``filter`` and the metrics
    (``acc``, ``acc_norm``, ...). The per-choice log-likelihoods of ``filtered_resps`` (else
    ``resps``) are the logits of a ``K``-way classification, ``K`` the question's own number of
    choices (ragged: :meth:`~calibkit.sources.predictions.Predictions.from_ragged`); the label is
    ``target``: an index (lm-eval writes it as text, ``"2"``), or a choice's text, or a letter
    ``A``.. when no choice's text is that letter. ``--length-normalize char`` divides each
    log-likelihood by its choice's length in characters, as lm-eval's ``acc_norm`` does (the
    continuation without the target delimiter, one leading space, that ``acc_norm`` does not
    count); ``token`` by a ``token_counts`` list in the record (lm-eval does not write one).
    ``acc_mutual_info`` records (``2K`` requests, the second ``K`` unconditional: an empty
    context and the same continuations, with or without the target delimiter) are read from
    their first ``K``. A log-likelihood above 0 is refused. Several filters in one file, a
    generation task (text responses) or a one-choice task are refused. A directory (its
    ``.jsonl`` files and ``samples_*.json`` files) or a glob pattern of samples files is one
    data set; the column ``task`` names each row's file's task; a generation task's file there
    is left out, with one warning naming each, unless every file is one (then it is refused).

Confidence rows (``.jsonl``, ``.csv``)
    A ``confidence`` (or ``confidences``, ``conf``) in ``[0, 1]`` and ``correct`` (or
    ``is_correct``, ``correctness``): ``0``/``1``, a number in ``[0, 1]``, ``true``/``false``
    (JSON booleans, or the words, any case) or ``yes``/``no``. A confidence given as text is
    refused unless ``parse_confidence`` (``--parse-confidence``, :func:`parse_confidence`).
    Two aliases of one field (``correct`` and ``is_correct``) that disagree are refused.

Top-k log-probabilities (OpenAI chat completions, legacy completions, vLLM)
    ``logprobs`` in the record, or in ``choices[0]``, or in ``response.body.choices[0]`` (an
    OpenAI batch output line): chat style ``logprobs.content[i] = {token, logprob,
    top_logprobs: [{token, logprob}, ...]}`` or the legacy ``logprobs.tokens``,
    ``token_logprobs`` and ``top_logprobs: [{token: logprob}]``. The answer is the first token;
    its confidence is ``exp(logprob)``, not renormalised over the top-k; the mass the top-k
    leave, ``1 - sum exp(top-k)``, is kept per row as the column ``tail_mass``. A top-k whose
    probabilities sum above ``1 + TOPK_SUM_ATOL`` is refused; vLLM's ``-9999.0`` (its ``-inf``)
    is probability 0, never a log-probability, and an answer whose own log-probability is that
    sentinel is refused (its confidence is unknown). ``correct`` is the record's ``correct``
    (as above), else whether the answer token, stripped, equals the record's ``target`` or
    ``answer`` (stripped). An answer that is the target only over several generated tokens
    (``"Par"``, ``"is"`` for ``"Paris"``) is refused: scored on its first token it would count
    as wrong; multi-token answers are written as confidence rows.

Every problem is one :class:`~calibkit.errors.InputError` naming the file and the line. The
other scalar fields of the records (nested ones by dotted path, ``doc.subject``) are the
source's columns, for ``--group-by``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calibkit.errors import InputError, Param
from calibkit.io.paths import SHARD_SUFFIXES, is_pattern, is_samples_file
from calibkit.loaders.keys import (
    CONFIDENCE_ALIASES,
    CORRECT_ALIASES,
    LOGIT_ALIASES,
    LOGIT_FAMILIES,
    PROB_ALIASES,
    PROB_FAMILIES,
    UNKNOWN_FAMILIES,
    ReadOptions,
    confidence_keys,
    families_of,
)
from calibkit.readers import check_file
from calibkit.readers.names import listing, shown
from calibkit.readers.records import check_size, columns_of
from calibkit.sources.groups import MemoryColumns
from calibkit.sources.predictions import ConfidenceRows, Predictions, PredictionSource

__all__ = [
    "RESULTS_FILE",
    "SAMPLES_SUFFIXES",
    "TOPK_SUM_ATOL",
    "VLLM_SENTINEL",
    "known_tasks",
    "layout_of",
    "parse_confidence",
    "read_csv",
    "read_jsonl",
    "read_record_files",
    "read_records",
    "read_samples_files",
    "record_files",
    "task_of",
]

#: vLLM writes ``-9999.0`` for a log-probability of ``-inf``: probability 0.
VLLM_SENTINEL = -9999.0
#: How far above 1 the probabilities of a top-k list may sum (API log-probabilities are rounded).
TOPK_SUM_ATOL = 1e-3
#: A log-probability this far above 0 is refused (rounding can give ``1e-7`` for a sure token).
_LOGPROB_ATOL = 1e-6

Record = dict[str, Any]
#: Records and where each is, as messages name it (``line 3``, ``record 17``).
Numbered = list[tuple[str, Record]]
#: A source and its other columns (``{name: 1-D array}``).
Loaded = tuple[Any, dict[str, Any]]


def _with_columns(src: Any, columns: Mapping[str, Any]) -> Any:
    """``src`` (:class:`Predictions` or :class:`ConfidenceRows`) holding the records' other
    fields as its columns, for ``--group-by``."""
    return dataclasses.replace(src, columns=MemoryColumns(columns))


# --------------------------------------------------------------------------------------------
# reading


def _records(path: Path, source: str, fmt: str) -> Numbered:
    check_size(path, source)
    out: Numbered
    if fmt == "csv":
        from calibkit.readers.csvfile import iter_records

        out = [(f"line {number}", record) for number, record in iter_records(path, source)]
    else:
        from calibkit.readers.jsonl import iter_labelled

        out = list(iter_labelled(path, source))
    if not out:
        raise InputError(source, "holds no records")
    return out


def read_jsonl(path: Path, options: ReadOptions, source: str) -> PredictionSource:
    """The predictions of a ``.jsonl`` file (module docstring)."""
    return _with_columns(*read_records(path, options, source))  # type: ignore[no-any-return]


def read_csv(path: Path, options: ReadOptions, source: str) -> PredictionSource:
    """The predictions of a ``.csv`` file: confidence rows (module docstring)."""
    return _with_columns(*read_records(path, options, source))  # type: ignore[no-any-return]


def read_records(path: Path, options: ReadOptions, source: str) -> Loaded:
    """The predictions of one record file (its format from the suffix: ``.csv``, else JSON
    Lines) and its other fields as columns ``{name: 1-D array}``."""
    _no_key_options(options, source)
    fmt = "csv" if path.suffix.lower() == ".csv" else "jsonl"
    records = _records(path, source, fmt)
    layout = layout_of(records[0][1], source, records[0][0], options)
    if layout == "lm-eval":
        return _lm_eval([(path, source, records)], options, source)
    _not_lm_eval_options(options, source)
    if layout == "topk":
        return _topk(records, source)
    return _confidence_rows(records, options, source)


def _no_key_options(options: ReadOptions, source: str) -> None:
    """Refuse the options that name keys or force a kind: a record file's layout names its
    fields (module docstring)."""
    given: list[Param] = []
    if options.scores_key is not None:
        if options.key_kind == "probs":
            given.append(Param("scores_key", options.scores_key, alias="probs_key"))
        else:
            given.append(Param("scores_key", options.scores_key, alias="logits_key"))
    if options.labels_key is not None:
        given.append(Param("labels_key", options.labels_key))
    if options.kind is not None:
        given.append(Param("kind", options.kind))
    if options.labels_from_counts:
        given.append(Param("labels_from_counts", True))
    if given:
        raise InputError(
            source,
            given[0] + " does not apply to record files (.jsonl, .csv): their layout names the "
            "fields read",
        )


def _not_lm_eval_options(options: ReadOptions, source: str) -> None:
    if options.length_normalize != "none":
        raise InputError(
            source,
            Param("length_normalize", options.length_normalize)
            + " applies to lm-evaluation-harness samples only",
        )


#: The suffixes of lm-evaluation-harness samples files: ``.jsonl`` (and v0.4.0 to v0.4.2's JSON
#: arrays), ``.json`` (JSON Lines, as lm-eval named them from May to June 2024).
SAMPLES_SUFFIXES = (".jsonl", ".json")


def record_files(spec: str) -> list[Path] | None:
    """The lm-evaluation-harness samples files a directory or a glob pattern names (sorted,
    hidden ones left out): a directory's ``.jsonl`` files and ``samples_*.json`` files, or a
    pattern's matches when each is a ``.jsonl`` or ``.json`` file; ``None`` when ``spec`` names
    none (a single file, or shards of another format)."""
    path = Path(spec)
    if path.is_dir():
        try:
            listed = [p for p in path.iterdir() if not p.name.startswith(".") and p.is_file()]
        except OSError:
            return None
        found = sorted(p for p in listed if is_samples_file(p))
        shards = sorted(p for p in listed if p.suffix.lower() in SHARD_SUFFIXES)
        if found and shards:
            raise InputError(
                spec,
                f"mixes {found[0].suffix} record files and {shards[0].suffix} shards "
                f"({found[0].name}, {shards[0].name}); a directory holds one data set",
            )
        return found or None
    if is_pattern(spec):
        import glob

        matches = sorted(Path(p) for p in glob.glob(os.fspath(spec)) if Path(p).is_file())
        if matches and all(p.suffix.lower() in SAMPLES_SUFFIXES for p in matches):
            return matches
    return None


def read_record_files(files: Sequence[Path], options: ReadOptions, source: str) -> PredictionSource:
    """Several lm-evaluation-harness samples files as one data set (in sorted order), the task
    of each row in the column ``task``."""
    return _with_columns(*read_samples_files(files, options, source))  # type: ignore[no-any-return]


def read_samples_files(files: Sequence[Path], options: ReadOptions, source: str) -> Loaded:
    """:func:`read_record_files`, the columns apart (``{name: 1-D array}``).

    A file of a generation task (its first record's responses are generated text) is left out,
    with one warning naming every such file, when another file is of a multiple-choice task
    (an lm-eval output directory often holds both); when every file is, the first one's error
    is raised.
    """
    _no_key_options(options, source)
    parts = []
    generation = []
    for path in files:
        name = os.fspath(path)
        check_file(path, name)
        records = _records(path, name, "jsonl")
        layout = layout_of(records[0][1], name, records[0][0], options)
        if layout != "lm-eval":
            raise InputError(
                name,
                f"holds {_LAYOUT_NAMES[layout]}; a directory or pattern of record files is read "
                "as lm-evaluation-harness samples (samples_<task>_<date>.jsonl) only",
            )
        if _generation_record(records[0][1]):
            generation.append((path, name, records))
        else:
            parts.append((path, name, records))
    import warnings

    if not parts:
        parts = generation[:1]  # its first record's error, as for one file
    elif generation:
        warnings.warn(
            f"{source}: left out {len(generation)} of {len(files)} samples files, generation "
            "tasks without per-choice log-likelihoods: "
            + ", ".join(_printable(path.name) for path, _, _ in generation),
            UserWarning,
            stacklevel=2,
        )
    runs: dict[str, list[Path]] = {}
    for path, _, _ in parts:
        runs.setdefault(task_of(path), []).append(path)
    again = {task: paths for task, paths in runs.items() if len(paths) > 1}
    if again:
        task, paths = next(iter(again.items()))
        more = f" (and {len(again) - 1} other task(s) in several)" if len(again) > 1 else ""
        last = paths[-1]
        date = _DATE.search(last.name[: -len(last.suffix)] if last.suffix else last.name)
        example = (
            f"; to read one run, give its files, e.g. "
            f"{_printable(os.fspath(last.parent / f'samples_*_{date.group(1)}{last.suffix}'))}"
            if date
            else ""
        )
        # several runs of one task (lm-eval writes a dated file per run): pooling them would
        # count every question once per run, a silent change of N and of every interval
        raise InputError(
            source,
            f"task {shown(task)} is in {len(paths)} samples files{more}, runs of the same "
            f"questions{example}",
        )
    return _lm_eval(parts, options, source)


def _printable(text: str) -> str:
    """A file's name or path for a message: whole, control characters escaped."""
    return text if text.isprintable() else repr(text)


# --------------------------------------------------------------------------------------------
# layouts

_LAYOUT_NAMES = {
    "lm-eval": "lm-evaluation-harness samples",
    "confidence": "confidence rows",
    "topk": "top-k log-probabilities",
}


def _lower_keys(record: Record) -> dict[str, str]:
    return {str(k).lower(): k for k in record}


def _logprobs_of(record: Record) -> Any:
    """The ``logprobs`` object of a record (module docstring), or ``None``."""
    if isinstance(record.get("logprobs"), Mapping):
        return record["logprobs"]
    response = record.get("response")
    body = response.get("body") if isinstance(response, Mapping) else None
    for holder in (record, body):
        if not isinstance(holder, Mapping):
            continue
        choices = holder.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            lp = choices[0].get("logprobs")
            if isinstance(lp, Mapping):
                return lp
    return None


def layout_of(record: Record, source: str, line: int | str, options: ReadOptions) -> str:
    """``"lm-eval"``, ``"confidence"`` or ``"topk"``: the layout of ``record`` (module
    docstring); a record of none, or of two, is refused. ``line``: where the record is, a line
    number or as a message names it (``"record 3"``)."""
    if not isinstance(line, str):
        line = f"line {line}"
    keys = _lower_keys(record)
    found = []
    if "doc_id" in keys and ("filtered_resps" in keys or "resps" in keys):
        found.append("lm-eval")
    if confidence_keys(list(record), options) is not None:
        found.append("confidence")
    if _logprobs_of(record) is not None:
        found.append("topk")
    if len(found) > 1:
        raise InputError(
            source,
            f"{line}: the record holds both {_LAYOUT_NAMES[found[0]]} and "
            f"{_LAYOUT_NAMES[found[1]]}: drop the fields of one",
        )
    if not found:
        families = families_of(list(keys))
        scores = [k for k in keys if k in LOGIT_ALIASES + PROB_ALIASES] + [
            f"{p}_*" for p in families if p in LOGIT_FAMILIES + PROB_FAMILIES + UNKNOWN_FAMILIES
        ]
        hint = (
            f" (record files hold LLM evaluations; for {scores[0]} scores write .npz or .parquet)"
            if scores
            else ""
        )
        raise InputError(
            source,
            f"{line}: a record of no known layout; expected lm-evaluation-harness samples "
            "(doc_id, filtered_resps), confidence rows (confidence, correct) or top-k "
            f"log-probabilities (logprobs); fields present: {listing(list(record))}{hint}",
        )
    return found[0]


# --------------------------------------------------------------------------------------------
# values


_FRACTION = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+)\s*/\s*([0-9]*\.?[0-9]+)\s*$")
_PERCENT = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+)\s*%\s*$")
_NUMBER = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")
_NOT_FINITE = re.compile(r"^\s*[-+]?(inf|infinity|nan)\s*$", re.IGNORECASE)


def parse_confidence(text: str) -> float | None:
    """A confidence written as text: ``"80%"`` / ``"80 %"`` (a percentage), ``"0.8"`` /
    ``".8"`` (a number), ``"8/10"`` (a fraction); ``None`` for anything else. The value is not
    checked against ``[0, 1]`` here (``"80"`` is 80, never guessed to be a percentage; ``"-0.1"``
    is -0.1 and ``"inf"`` infinity, for the caller to refuse as out of range or not finite).

    >>> [parse_confidence(t) for t in ("80%", "80 %", "0.8", ".8", "8/10", "high", "1/0")]
    [0.8, 0.8, 0.8, 0.8, 0.8, None, None]
    >>> [parse_confidence(t) for t in ("-0.1", "inf")]
    [-0.1, inf]
    """
    if _NOT_FINITE.match(text):
        return float(text)
    m = _PERCENT.match(text)
    if m:
        return float(m.group(1)) / 100
    m = _FRACTION.match(text)
    if m:
        den = float(m.group(2))
        return None if den == 0 else float(m.group(1)) / den
    m = _NUMBER.match(text)
    if m:
        return float(m.group(1))
    return None


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _confidence(value: Any, name: str, line: str, source: str, parse: bool) -> float:
    if value is None:
        raise InputError(source, f"{line}: {name} is missing (null or empty)")
    if isinstance(value, str):
        if not parse:
            raise InputError(
                source,
                f"{line}: {name} {_shown(value)} is text; to read confidences such as "
                '"80%" or "8/10", give ' + Param("parse_confidence", True),
            )
        parsed = parse_confidence(value)
        if parsed is None:
            raise InputError(
                source,
                f"{line}: {name} {_shown(value)} is not a number, a percentage or a fraction",
            )
        if not math.isfinite(parsed):
            raise InputError(source, f"{line}: {name} {_shown(value)} is not finite")
        number = parsed
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(source, f"{line}: {name} {_shown(value)} is not a number")
    else:
        number = float(value)
    if not (0.0 <= number <= 1.0):  # NaN fails too
        raise InputError(source, f"{line}: {name} must lie in [0, 1]; found {_shown(value)}")
    return number


_TRUE = ("true", "yes")
_FALSE = ("false", "no")


def _correct(value: Any, name: str, line: str, source: str) -> float:
    """A correctness value: a boolean, a number in [0, 1], or true/false/yes/no (any case)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        if 0.0 <= float(value) <= 1.0:
            return float(value)
    elif isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return 1.0
        if word in _FALSE:
            return 0.0
        if word in ("0", "1"):
            return float(word)
    if value is None:
        raise InputError(source, f"{line}: {name} is missing (null or empty)")
    raise InputError(
        source,
        f"{line}: {name} must be 0 or 1, a number in [0, 1], true/false or yes/no; "
        f"found {_shown(value)}",
    )


def _field(record: Record, aliases: Sequence[str]) -> str | None:
    keys = _lower_keys(record)
    return next((keys[a.lower()] for a in aliases if a.lower() in keys), None)


def _agreeing(
    record: Record,
    name: str,
    aliases: Sequence[str],
    read: Callable[[Any, str, str, str], float],
    line: str,
    source: str,
) -> float:
    """``read(record[name])``, refused when another alias of the field (any case) holds a
    different value (null or empty aside): which one is meant cannot be told."""
    value = float(read(record[name], name, line, source))
    lowered = {a.lower() for a in aliases}
    for other in record:
        if (
            other != name
            and str(other).lower() in lowered
            and record[other] is not None  # an empty alias says nothing
            and float(read(record[other], str(other), line, source)) != value
        ):
            raise InputError(
                source,
                f"{line}: {name} {_shown(record[name])} and {other} "
                f"{_shown(record[other])} disagree; keep one of the two fields",
            )
    return value


# --------------------------------------------------------------------------------------------
# confidence rows


def _confidence_rows(records: Numbered, options: ReadOptions, source: str) -> Loaded:
    pair = confidence_keys(list(records[0][1]), options)
    assert pair is not None  # layout_of saw them
    conf_name, hit_name = pair
    conf = np.empty(len(records))
    hit = np.empty(len(records))

    def read_conf(value: Any, name: str, line: str, source: str) -> float:
        return _confidence(value, name, line, source, options.parse_confidence)

    for i, (line, record) in enumerate(records):
        for name in (conf_name, hit_name):
            if name not in record:
                raise InputError(source, f"{line}: no {name!r} field")
        conf[i] = _agreeing(record, conf_name, CONFIDENCE_ALIASES, read_conf, line, source)
        hit[i] = _agreeing(record, hit_name, CORRECT_ALIASES, _correct, line, source)
    rows = ConfidenceRows.from_arrays(conf, hit, source=source)
    others = [r for _, r in records]
    columns = {k: v for k, v in columns_of(others).items() if k not in (conf_name, hit_name)}
    return rows, columns


# --------------------------------------------------------------------------------------------
# top-k log-probabilities


def _logprob(value: Any, what: str, line: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(source, f"{line}: {what} {_shown(value)} is not a number")
    x = float(value)
    if math.isnan(x) or x > _LOGPROB_ATOL:
        raise InputError(source, f"{line}: {what} {_shown(value)} is not a log-probability (<= 0)")
    return min(x, 0.0)


def _answer_and_topk(lp: Mapping[str, Any], line: str, source: str) -> tuple[Any, Any, list[Any]]:
    """``(answer token, its logprob, [top-k logprobs])`` of the first answer token."""
    content = lp.get("content")
    if isinstance(content, list):  # chat completions (OpenAI, vLLM)
        if not content or not isinstance(content[0], Mapping):
            raise InputError(source, f"{line}: logprobs.content holds no tokens")
        first = content[0]
        if "logprob" not in first:
            raise InputError(source, f"{line}: logprobs.content[0] has no 'logprob'")
        top = first.get("top_logprobs") or []
        if not isinstance(top, list):
            raise InputError(source, f"{line}: logprobs.content[0].top_logprobs is not a list")
        values = []
        for entry in top:
            if not isinstance(entry, Mapping) or "logprob" not in entry:
                raise InputError(
                    source, f"{line}: a top_logprobs entry has no 'logprob': {_shown(entry)}"
                )
            values.append(entry["logprob"])
        return first.get("token"), first["logprob"], values
    tokens, token_lps = lp.get("tokens"), lp.get("token_logprobs")
    if isinstance(token_lps, list):  # legacy completions
        if not token_lps:
            raise InputError(source, f"{line}: logprobs.token_logprobs is empty")
        top = lp.get("top_logprobs") or []
        first_top = top[0] if isinstance(top, list) and top else {}
        if first_top is None:
            first_top = {}
        if not isinstance(first_top, Mapping):
            raise InputError(
                source, f"{line}: logprobs.top_logprobs[0] is not a {{token: logprob}} map"
            )
        token = tokens[0] if isinstance(tokens, list) and tokens else None
        return token, token_lps[0], list(first_top.values())
    raise InputError(
        source,
        f"{line}: logprobs holds neither 'content' (chat completions) nor "
        "'token_logprobs' (completions)",
    )


def _topk(records: Numbered, source: str) -> Loaded:
    n = len(records)
    conf = np.empty(n)
    hit = np.empty(n)
    tail = np.empty(n)
    answers: list[Any] = []
    for i, (line, record) in enumerate(records):
        lp = _logprobs_of(record)
        if lp is None:
            raise InputError(source, f"{line}: no 'logprobs' (the first record has them)")
        token, answer_lp, top = _answer_and_topk(lp, line, source)
        if isinstance(answer_lp, (int, float)) and float(answer_lp) <= VLLM_SENTINEL:
            raise InputError(
                source,
                f"{line}: the answer token's log-probability is {answer_lp} (vLLM's "
                "sentinel for -inf): its confidence is unknown",
            )
        conf[i] = math.exp(_logprob(answer_lp, "the answer's logprob", line, source))
        mass = 0.0
        for value in top:
            if isinstance(value, (int, float)) and float(value) <= VLLM_SENTINEL:
                continue  # vLLM's -inf: probability 0
            mass += math.exp(_logprob(value, "a top_logprobs logprob", line, source))
        if mass > 1.0 + TOPK_SUM_ATOL:
            raise InputError(
                source,
                f"{line}: the top-k probabilities sum to {mass:.6g}, above 1: "
                "not log-probabilities of one distribution",
            )
        tail[i] = max(0.0, 1.0 - mass) if top else math.nan
        hit[i] = _topk_correct(record, token, line, source)
        answers.append(token if isinstance(token, str) else None)
    rows = ConfidenceRows.from_arrays(conf, hit, source=source)
    columns = columns_of(r for _, r in records)
    columns["tail_mass"] = tail
    columns["answer_token"] = np.array(["" if a is None else a for a in answers], dtype=str)
    return rows, columns


def _topk_correct(record: Record, token: Any, line: str, source: str) -> float:
    name = _field(record, CORRECT_ALIASES)
    if name is not None:
        return _agreeing(record, name, CORRECT_ALIASES, _correct, line, source)
    gold_name = _field(record, ("target", "answer"))
    other = _field(record, ("answer",))
    if (
        gold_name is not None
        and other is not None
        and other != gold_name
        and str(record[gold_name]).strip() != str(record[other]).strip()
    ):
        raise InputError(
            source,
            f"{line}: {gold_name} {_shown(record[gold_name])} and {other} "
            f"{_shown(record[other])} disagree; keep one of the two fields",
        )
    if gold_name is None:
        raise InputError(
            source,
            f"{line}: no 'correct' field, and no 'target' or 'answer' to compare the "
            "answer token with",
        )
    gold = record[gold_name]
    if not isinstance(token, str):
        raise InputError(source, f"{line}: the answer token is not text: {_shown(token)}")
    if gold is None or isinstance(gold, (list, dict)):
        raise InputError(source, f"{line}: {gold_name} {_shown(gold)} is not one answer")
    text = str(gold).strip()
    if token.strip() != text:
        _refuse_multi_token(_generated_tokens(record), text, gold_name, line, source)
    return float(token.strip() == text)


def _generated_tokens(record: Record) -> list[str]:
    """The generated tokens of a top-k record, in order (those that are text)."""
    lp = _logprobs_of(record)
    if lp is None:
        return []
    content = lp.get("content")
    tokens: Any = (
        [e.get("token") for e in content if isinstance(e, Mapping)]
        if isinstance(content, list)
        else lp.get("tokens")
    )
    return [t for t in tokens if isinstance(t, str)] if isinstance(tokens, list) else []


def _refuse_multi_token(
    tokens: list[str], gold: str, gold_name: str, line: str, source: str
) -> None:
    """Refuse an answer that is the target only over several tokens: scored on its first token
    it would count as wrong, with the first token's probability (module docstring)."""
    joined = ""
    for m, token in enumerate(tokens, start=1):
        joined += token
        if m > 1 and gold and joined.strip() == gold:
            shown = ", ".join(_shown(t) for t in tokens[:m])
            raise InputError(
                source,
                f"{line}: the answer spans {m} tokens ({shown}) that make the {gold_name} "
                f"{_shown(gold)}; calibkit scores the first generated token only, so it would "
                "count as wrong: write confidence rows (confidence, correct) for multi-token "
                "answers",
            )


# --------------------------------------------------------------------------------------------
# lm-evaluation-harness samples

_DATE = re.compile(r"_(\d{4}-\d{2}-\d{2}T\d{2}[-:]\d{2}[-:]\d{2}(?:\.\d+)?)$")


def task_of(path: Path, known: Collection[str] = ()) -> str:
    """The task of a samples file, from its name ``samples_<task>_<date>.jsonl`` (lm-eval's
    ``date_id``: ``datetime.now().isoformat()`` with ``:`` as ``-``); a file of lm-eval v0.4.0 to
    v0.4.2, named ``<model_args>_<task>.jsonl``, is of the longest ``known`` task its name ends
    with (``_<task>``; the tasks of the ``results.json`` beside it, :func:`known_tasks`), else of
    its whole name.

    >>> task_of(Path("samples_mmlu_anatomy_2024-05-13T14-27-02.123456.jsonl"))
    'mmlu_anatomy'
    >>> task_of(Path("my_run.jsonl"))
    'my_run'
    >>> task_of(Path("pretrained__gpt2_arc_easy.jsonl"), {"easy", "arc_easy", "hellaswag"})
    'arc_easy'
    """
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    if stem.startswith("samples_"):
        stem = stem[len("samples_") :]
        m = _DATE.search(stem)
        return stem[: m.start()] if m and m.start() > 0 else stem
    ends = [t for t in known if t and stem.endswith("_" + t) and len(stem) > len(t) + 1]
    if ends:
        return max(ends, key=len)
    m = _DATE.search(stem)
    return stem[: m.start()] if m and m.start() > 0 else stem


#: lm-eval v0.4.0 to v0.4.2 wrote its results here, beside the samples files.
RESULTS_FILE = "results.json"
#: A results file larger than this is not read for task names (they are only names).
_RESULTS_LIMIT = 16 * 2**20


def known_tasks(directory: Path) -> frozenset[str]:
    """The task names (``configs`` keys) of lm-eval's ``results.json`` in ``directory``, for
    naming the tasks of v0.4.0 to v0.4.2 samples files (:func:`task_of`); none when there is no
    such file, or it is not one (it only names tasks: nothing is refused for it)."""
    import json

    path = directory / RESULTS_FILE
    try:
        if not path.is_file() or path.stat().st_size > _RESULTS_LIMIT:
            return frozenset()
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return frozenset()
    configs = doc.get("configs") if isinstance(doc, Mapping) else None
    if not isinstance(configs, Mapping):
        return frozenset()
    return frozenset(k for k in configs if isinstance(k, str))


def _pair(value: Any) -> Any:
    """``[ll, greedy]`` from ``[ll, greedy]`` or ``[[ll, greedy]]`` (``resps``), else ``None``."""
    while isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _arguments(record: Record) -> list[tuple[str, str]] | None:
    """Per request ``(context, continuation)``, from either layout lm-eval writes."""
    args = record.get("arguments")
    pairs: list[Any]
    if isinstance(args, Mapping):
        pairs = []
        for key in sorted(args, key=lambda k: int(k.rsplit("_", 1)[-1]) if k[-1:].isdigit() else 0):
            entry = args[key]
            if not isinstance(entry, Mapping):
                return None
            pairs.append((entry.get("arg_0"), entry.get("arg_1")))
    elif isinstance(args, list):
        pairs = [tuple(a) if isinstance(a, list) and len(a) == 2 else (None, None) for a in args]
    else:
        return None
    if all(isinstance(c, str) and isinstance(x, str) for c, x in pairs):
        return [(str(c), str(x)) for c, x in pairs]
    return None


def _choice_text(continuation: str) -> str:
    """A choice's text: the continuation less lm-eval's default target delimiter (one space)."""
    return continuation[1:] if continuation.startswith(" ") else continuation


def _label(target: Any, texts: list[str] | None, k: int, line: str, source: str) -> int:
    """The index of the gold choice (module docstring)."""
    if isinstance(target, bool) or target is None:
        raise InputError(source, f"{line}: target {_shown(target)} is not a choice")
    if isinstance(target, list):
        raise InputError(
            source,
            f"{line}: target {_shown(target)} names several gold choices; one per "
            "question is needed",
        )
    if isinstance(target, float) and target.is_integer():
        target = int(target)
    if isinstance(target, int):
        if 0 <= target < k:
            return target
        raise InputError(source, f"{line}: target {target} is outside [0, {k}) for {k} choices")
    if not isinstance(target, str):
        raise InputError(source, f"{line}: target {_shown(target)} is not a choice")
    text = target.strip()
    by_text = [] if texts is None else [i for i, t in enumerate(texts) if t.strip() == text]
    index = int(text) if text.isdigit() else None
    if len(by_text) > 1:
        raise InputError(source, f"{line}: target {_shown(target)} is the text of several choices")
    if by_text and index is not None and index < k and index != by_text[0]:
        raise InputError(
            source,
            f"{line}: target {_shown(target)} is both the index {index} and the text of "
            f"choice {by_text[0]}: cannot tell which",
        )
    if by_text:
        return by_text[0]
    if index is not None:
        if index < k:
            return index
        raise InputError(
            source,
            f"{line}: target {_shown(target)} is neither a choice index in [0, {k}) nor the "
            "text of a choice"
            + ("" if texts is not None else " (the record gives no choice's text)"),
        )
    if len(text) == 1 and "A" <= text <= "Z" and ord(text) - ord("A") < k:
        return ord(text) - ord("A")
    raise InputError(
        source,
        f"{line}: target {_shown(target)} is neither a choice's index nor a choice's text",
    )


def _lengths(
    record: Record, texts: list[str] | None, k: int, how: str, line: str, source: str
) -> np.ndarray:
    if how == "char":
        if texts is None:
            raise InputError(
                source,
                f"{line}: "
                + Param("length_normalize", "char")
                + " needs each choice's continuation ('arguments'); this record has none",
            )
        lengths = np.array([len(t) for t in texts], dtype=np.float64)
    else:
        counts = record.get("token_counts")
        if counts is None and isinstance(record.get("doc"), Mapping):
            counts = record["doc"].get("token_counts")
        if counts is None:
            raise InputError(
                source,
                f"{line}: "
                + Param("length_normalize", "token")
                + " needs a 'token_counts' list (one per choice) in each record; lm-eval's "
                "samples do not hold token counts (use char)",
            )
        if (
            not isinstance(counts, list)
            or len(counts) != k
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in counts)
        ):
            raise InputError(source, f"{line}: token_counts must be {k} integers, one per choice")
        lengths = np.array(counts, dtype=np.float64)
    if (lengths <= 0).any():
        i = int(np.argmax(lengths <= 0))
        raise InputError(
            source,
            f"{line}: choice {i} has length 0: its log-likelihood cannot be normalised",
        )
    return lengths


_GENERATION = (
    "holds generated text, not [log-likelihood, is_greedy] pairs: a generation task has no "
    "per-choice log-likelihoods to calibrate"
)


def _generated(resp: Any, record: Record) -> bool:
    """Whether a response is a generation task's text (``"The answer is 4"``; ``"4"`` too when
    the request holds generation arguments, ``{"until": ...}``, unlike a loglikelihood_rolling
    task's one log-likelihood): a multiple-choice response is a ``[ll, is_greedy]`` pair."""
    while isinstance(resp, list) and len(resp) == 1:
        resp = resp[0]
    if not isinstance(resp, str):
        return False
    args = record.get("arguments")
    first: Any = None
    if isinstance(args, Mapping):
        entry = args.get("gen_args_0")
        first = entry.get("arg_1") if isinstance(entry, Mapping) else None
    elif isinstance(args, list) and args and isinstance(args[0], list) and len(args[0]) == 2:
        first = args[0][1]
    return _number(resp) is None or isinstance(first, Mapping)


def _mutual_info_layout(args: list[tuple[str, str]]) -> bool:
    """Whether ``2K`` requests are ``acc_mutual_info``'s: ``K`` conditional ones, then the same
    ``K`` continuations with an empty context. lm-eval before 0.4.9 writes the unconditional
    continuations without the target delimiter (``" Paris"``, then ``"Paris"``), later ones
    with it; the delimiter is whatever prefix the two halves differ by, the same for all ``K``."""
    k = len(args) // 2
    if len(args) % 2 or k < 2 or any(c.strip() for c, _ in args[k:]):
        return False
    prefixes = set()
    for (_, cond), (_, uncond) in zip(args[:k], args[k:], strict=True):
        if not cond.endswith(uncond):
            return False
        prefixes.add(cond[: len(cond) - len(uncond)])
    return len(prefixes) == 1


def _generation_record(record: Record) -> bool:
    """Whether the record's responses are generated text (a generation task), as
    :func:`_lm_eval_record` refuses them: the first response that is not a
    ``[log-likelihood, is_greedy]`` pair decides."""
    key = "filtered_resps" if "filtered_resps" in record else "resps"
    resps = record.get(key)
    if not isinstance(resps, list) or not resps:
        return False
    for resp in resps:
        pair = _pair(resp)
        if pair is None or _number(pair[0]) is None:
            return _generated(resp, record)
    return False


def _lm_eval_record(
    record: Record, line: str, options: ReadOptions, source: str
) -> tuple[np.ndarray, int]:
    """One question's (log-likelihoods, gold index)."""
    key = "filtered_resps" if "filtered_resps" in record else "resps"
    resps = record.get(key)
    if not isinstance(resps, list) or not resps:
        raise InputError(source, f"{line}: {key} is not a list of responses")
    lls = []
    for i, resp in enumerate(resps):
        pair = _pair(resp)
        value = None if pair is None else _number(pair[0])
        if value is None:
            if _generated(resp, record):
                raise InputError(source, f"{line}: {key} {_GENERATION}")
            if pair is None:
                raise InputError(
                    source,
                    f"{line}: {key}[{i}] is {_shown(resp)}, not a [log-likelihood, "
                    "is_greedy] pair (a multiple-choice task's response)",
                )
            raise InputError(source, f"{line}: {key}[{i}] has the log-likelihood {_shown(pair[0])}")
        if not math.isfinite(value):
            raise InputError(source, f"{line}: choice {i} has a log-likelihood of {value}")
        if value > _LOGPROB_ATOL:
            raise InputError(
                source,
                f"{line}: choice {i} has a log-likelihood of {_shown(pair[0])}, above 0: "
                "not the log-probability of a continuation",
            )
        lls.append(value)
    args = _arguments(record)
    if args is not None and len(args) != len(lls):
        args = None
    k = len(lls)
    if args is not None and _mutual_info_layout(args):  # acc_mutual_info: + K unconditional
        k //= 2
        lls, args = lls[:k], args[:k]
    elif "acc_mutual_info" in record or "acc_mutual_info" in (record.get("metrics") or ()):
        raise InputError(
            source,
            f"{line}: an acc_mutual_info record whose {k} requests are not K conditional "
            "ones then the same K with an empty context: cannot tell its choices",
        )
    if k < 2:
        raise InputError(
            source,
            f"{line} has {k} choice: a question needs at least 2 (a loglikelihood task "
            "scores one continuation; only multiple-choice tasks can be calibrated)",
        )
    texts = None if args is None else [_choice_text(x) for _, x in args]
    if texts is not None and len({x for _, x in args or []}) == 1 and k > 1:
        texts = None  # multiple_input tasks: the choices are in the contexts
    if texts is None:
        doc = record.get("doc")
        choices = doc.get("choices") if isinstance(doc, Mapping) else None
        if (
            isinstance(choices, list)
            and len(choices) == k
            and all(isinstance(c, str) for c in choices)
        ):
            texts = list(choices)
    if "target" not in record:
        raise InputError(source, f"{line}: no 'target' field")
    label = _label(record["target"], texts, k, line, source)
    z = np.array(lls, dtype=np.float64)
    if options.length_normalize != "none":
        z = z / _lengths(record, texts, k, options.length_normalize, line, source)
    return z, label


def _lm_eval(
    parts: Sequence[tuple[Path, str, Numbered]], options: ReadOptions, source: str
) -> Loaded:
    rows: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    flat: list[Record] = []
    tasks: list[str] = []
    for path, name, records in parts:
        filters = sorted({str(r.get("filter")) for _, r in records if "filter" in r})
        if len(filters) > 1:
            for line, record in records:  # a generation task's filters are not the problem
                field = "filtered_resps" if "filtered_resps" in record else "resps"
                resps = record.get(field)
                if isinstance(resps, list) and resps and _generated(resps[0], record):
                    raise InputError(name, f"{line}: {field} {_GENERATION}")
            raise InputError(
                name,
                f"holds {len(filters)} filters ({', '.join(map(repr, filters))}); one filter's "
                "records are one data set: split the file by its 'filter' field",
            )
        task = task_of(path, () if path.name.startswith("samples_") else known_tasks(path.parent))
        seen: dict[Any, str] = {}
        for line, record in records:
            if "doc_id" not in record:
                raise InputError(name, f"{line}: no 'doc_id' (the first record has one)")
            doc_id = record["doc_id"]
            key = doc_id if isinstance(doc_id, (int, str)) else repr(doc_id)
            if key in seen:
                raise InputError(
                    name, f"{line}: doc_id {_shown(doc_id)} appears again ({seen[key]})"
                )
            seen[key] = line
            z, y = _lm_eval_record(record, line, options, name)
            rows.append(z)
            labels.append(y)
            names.append(line if len(parts) == 1 else f"{name} {line}")
            flat.append(
                {
                    k: v
                    for k, v in record.items()
                    if k not in ("resps", "filtered_resps", "arguments")
                }
            )
            tasks.append(task)
    how = {"none": "", "char": ", per character", "token": ", per token"}[options.length_normalize]
    preds = Predictions.from_ragged(
        rows,
        np.array(labels, dtype=np.int64),
        source=source,
        reason=f"named: lm-evaluation-harness per-choice log-likelihoods{how}",
        row_names=names,
    )
    columns = columns_of(flat)
    columns["task"] = np.array(tasks, dtype=str)
    return preds, columns
