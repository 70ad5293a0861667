"""Which stored array or column holds what: the name aliases every reader shares.

The name of a key or column says where the scores are and what they are called; a name that
says probabilities is read as probabilities, and under a name that says logits, rows that all lie
in [0, 1] and sum to 1 are read as probabilities (with a warning; see
:func:`calibkit.sources.predictions.choose_kind`). ``--input`` forces either reading.

Aliases, tried in this order:

* logits: ``logits``, ``logit`` (parquet also: wide columns ``logit_0 .. logit_{K-1}`` or
  ``logits_0 ..``, with or without the underscore, seen as the family ``logit_*``)
* probabilities: ``probs``, ``probabilities``, ``prob``, ``proba``, ``y_prob``, ``y_proba``
  (parquet also: wide columns ``prob_0 ..``, ``probs_0 ..``, ``proba_0 ..``, ``p_0 ..`` or
  ``p0 ..``, ...)
* names that do not say which (parquet): wide columns ``score_0 ..`` / ``scores_0 ..`` and bare
  integers ``0 .. K-1`` (the column names ``pd.DataFrame(clf.predict_proba(X)).to_parquet``
  writes). They are found, but their kind is ``None`` ("unknown from the name"): the reader
  must be told (``--input``) or decide from the values.
* labels: ``labels``, ``label``, ``targets``, ``target``, ``y``, ``y_true``

When both logits and probabilities are present, logits win (they keep more information). A
family is named by its prefix (``--logits-key score`` reads ``score_0, score_1, ...``).

Confidence-only rows (no logits or probabilities anywhere): ``confidence`` / ``confidences`` /
``conf`` plus ``correct`` / ``is_correct`` / ``correctness`` (see
:class:`~calibkit.sources.predictions.ConfidenceRows`).

Parquet's numbered column families (``logit_0 .. logit_{K-1}``, ``p0 ..``, bare integers) are
found by :func:`families_of` and checked by :func:`choose_columns`: the numbers must run exactly
``0 .. K-1``, each spelled once, decided from the schema before any data is read. Everything here
works on names only; the arrays are :mod:`calibkit.readers`'.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from calibkit.errors import InputError, Param, UsageError
from calibkit.readers.names import listing, quoted, shown
from calibkit.sources.predictions import SCORE_KINDS, Predictions, ScoreKind

__all__ = [
    "LABEL_ALIASES",
    "LOGIT_ALIASES",
    "LOGIT_FAMILIES",
    "PROB_ALIASES",
    "PROB_FAMILIES",
    "UNKNOWN_FAMILIES",
    "Columns",
    "ReadOptions",
    "choose_columns",
    "choose_keys",
    "choose_labels_key",
    "choose_scores_key",
    "confidence_keys",
    "families_of",
    "family_key",
    "family_prefix",
    "keyed_predictions",
    "kind_of_family",
    "kind_of_name",
    "quoted",
    "require_kind",
    "shown",
]

LOGIT_ALIASES = ("logits", "logit")
PROB_ALIASES = ("probs", "probabilities", "prob", "proba", "y_prob", "y_proba")
#: Prefixes of numbered (wide) column families, by what the name says they hold; the empty
#: prefix is the bare integers ``0 .. K-1``.
LOGIT_FAMILIES = ("logits", "logit")
PROB_FAMILIES = ("probs", "prob", "proba", "probabilities", "y_prob", "y_proba", "p")
UNKNOWN_FAMILIES = ("scores", "score", "")
LABEL_ALIASES = ("labels", "label", "targets", "target", "y", "y_true")
CONFIDENCE_ALIASES = ("confidence", "confidences", "conf")
CORRECT_ALIASES = ("correct", "is_correct", "correctness")
#: ``length_normalize`` values (``--length-normalize``).
LENGTH_NORMALIZATIONS = ("none", "char", "token")


@dataclass(frozen=True)
class ReadOptions:
    """How to read a predictions file.

    Attributes
    ----------
    scores_key
        The key (npz, pt) or column or wide-column prefix (parquet) holding the scores.
    labels_key
        The key or column holding the labels.
    kind
        ``"logits"`` or ``"probs"``: what the scores are, overriding what the name says and
        what their values look like (``--input``).
    key_kind
        What ``scores_key`` is named as (``--logits-key`` / ``--probs-key``): like a key's own
        name, so probabilities under a logits name are still detected.
    labels_from_counts
        The labels are ``(N, K)`` counts (annotator votes), divided by their row sums
        (``--labels-from-counts``;
        :func:`~calibkit.sources.predictions.counts_to_distributions`).
    parse_confidence
        Record files: a confidence given as text (``"80%"``, ``"0.8"``, ``"8/10"``) is parsed
        (``--parse-confidence``; :func:`calibkit.loaders.records.parse_confidence`); without it
        text is refused.
    length_normalize
        lm-evaluation-harness samples: each choice's log-likelihood divided by its length,
        ``"char"`` (as lm-eval's ``acc_norm``) or ``"token"`` (when the records hold token
        counts), or ``"none"`` (``--length-normalize``).
    """

    scores_key: str | None = None
    labels_key: str | None = None
    kind: ScoreKind | None = None
    key_kind: ScoreKind | None = None
    labels_from_counts: bool = False
    parse_confidence: bool = False
    length_normalize: str = "none"

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in SCORE_KINDS:
            raise InputError(
                "options", f"input kind must be 'logits' or 'probs'; got {self.kind!r}"
            )
        if self.length_normalize not in LENGTH_NORMALIZATIONS:
            raise UsageError(
                Param("length_normalize") + f" must be one of {', '.join(LENGTH_NORMALIZATIONS)}; "
                f"got {self.length_normalize!r}"
            )


def kind_of_name(name: str) -> ScoreKind | None:
    """What a key or column name says its numbers are (``None``: the name does not say)."""
    low = name.lower()
    if low in LOGIT_ALIASES:
        return "logits"
    if low in PROB_ALIASES:
        return "probs"
    return None


def family_prefix(name: str) -> str:
    """The family a prefix names: lower case, one trailing underscore dropped.

    >>> family_prefix("Logit_"), family_prefix("p"), family_prefix("")
    ('logit', 'p', '')
    """
    low = name.lower()
    return low[:-1] if low.endswith("_") else low


def family_key(prefix: str) -> str:
    """The pseudo-key that stands for a numbered column family (``logit_*``; ``*`` for bare
    integers)."""
    return f"{prefix}_*" if prefix else "*"


def kind_of_family(prefix: str) -> ScoreKind | None:
    """What a family's prefix says its columns are (``None`` for ``score_*`` or bare integers)."""
    if prefix in LOGIT_FAMILIES:
        return "logits"
    if prefix in PROB_FAMILIES:
        return "probs"
    return None


def _missing(name: str, keys: Collection[str], source: str, what: str) -> InputError:
    return InputError(
        source, f"{what[:-1]} {quoted(name)} not found; {what} present: {listing(keys)}"
    )


def choose_scores_key(
    keys: Collection[str],
    options: ReadOptions,
    source: str,
    *,
    what: str = "keys",
    families: Collection[str] = (),
) -> tuple[str, ScoreKind | None]:
    """The key holding the scores, and what they are (``None``: the name does not say).

    ``families`` are the prefixes (see :func:`family_prefix`) of the numbered column families
    a parquet file holds; a family is returned as its :func:`family_key`. An exact key wins
    over a family of the same name; the parquet reader refuses that ambiguity itself.
    """
    fams = set(families)
    if options.scores_key is not None:
        name = options.scores_key
        if name in keys:
            return name, options.kind or options.key_kind or kind_of_name(name)
        prefix = family_prefix(name)
        if prefix in fams:
            return family_key(prefix), options.kind or options.key_kind or kind_of_family(prefix)
        raise _missing(name, keys, source, what)
    lowered = {k.lower(): k for k in keys}
    for aliases, prefixes, kind in (
        (LOGIT_ALIASES, LOGIT_FAMILIES, "logits"),
        (PROB_ALIASES, PROB_FAMILIES, "probs"),
        ((), UNKNOWN_FAMILIES, None),
    ):
        for alias in aliases:
            if alias in lowered:
                return lowered[alias], options.kind or kind  # type: ignore[return-value]
        for prefix in prefixes:
            if prefix in fams:
                return family_key(prefix), options.kind or kind  # type: ignore[return-value]
    raise InputError(
        source,
        f"no logits or probabilities found; {what} present: {listing(keys)} "
        "(name them with " + Param("scores_key") + ")",
    )


def require_kind(key: str, kind: ScoreKind | None, source: str) -> ScoreKind:
    """``kind``, or a one-line error asking the user to say what ``key`` holds."""
    if kind is None:
        raise InputError(
            source,
            f"cannot tell whether {key} holds logits or probabilities; say which with "
            + Param("kind", "logits")
            + " or "
            + Param("kind", "probs"),
        )
    return kind


def choose_labels_key(
    keys: Collection[str], options: ReadOptions, source: str, *, what: str = "keys"
) -> str:
    """The key holding the labels."""
    if options.labels_key is not None:
        if options.labels_key not in keys:
            raise _missing(options.labels_key, keys, source, what)
        return options.labels_key
    lowered = {k.lower(): k for k in keys}
    for alias in LABEL_ALIASES:
        if alias in lowered:
            return lowered[alias]
    raise InputError(
        source,
        f"no labels found; {what} present: {listing(keys)} (name them with "
        + Param("labels_key")
        + ")",
    )


def choose_keys(
    keys: Collection[str], options: ReadOptions, source: str, *, what: str = "keys"
) -> tuple[str, str, ScoreKind]:
    """Pick ``(scores_key, labels_key, kind)`` from the names present in a file.

    Refuses a key whose name does not say what it holds, unless ``options.kind`` does.
    """
    scores_key, kind = choose_scores_key(keys, options, source, what=what)
    kind = require_kind(quoted(scores_key), kind, source)
    return scores_key, choose_labels_key(keys, options, source, what=what), kind


def keyed_predictions(
    scores: Any,
    labels: Any,
    keys: tuple[str, str, ScoreKind],
    options: ReadOptions,
    source: str,
    **extra: Any,
) -> Predictions:
    """The arrays under the :func:`choose_keys` keys ``(scores_key, labels_key, kind)``
    validated as :class:`~calibkit.sources.predictions.Predictions`: ``options.kind``
    (``--input``) forces the kind; else the name says, and probabilities are detected.
    ``extra``: more arguments of :meth:`~calibkit.sources.predictions.Predictions.from_arrays`
    (``sum_atol``)."""
    scores_key, labels_key, kind = keys
    return Predictions.from_arrays(
        scores,
        labels,
        kind=options.kind,
        named=kind,
        forced_by="--input",
        source=source,
        score_key=scores_key,
        label_key=labels_key,
        labels_from_counts=options.labels_from_counts,
        **extra,
    )


def confidence_keys(
    keys: Collection[str], options: ReadOptions, families: Collection[str] = ()
) -> tuple[str, str] | None:
    """``(confidence_key, correct_key)`` for confidence-only files, else ``None``.

    A file with logits or probabilities (a key, or a named column family) is never read as
    confidence-only.
    """
    if options.scores_key is not None or options.kind is not None:
        return None
    lowered = {k.lower(): k for k in keys}
    if any(a in lowered for a in LOGIT_ALIASES + PROB_ALIASES):
        return None
    if any(p in families for p in LOGIT_FAMILIES + PROB_FAMILIES):
        return None
    conf = next((lowered[a] for a in CONFIDENCE_ALIASES if a in lowered), None)
    hit = next((lowered[a] for a in CORRECT_ALIASES if a in lowered), None)
    return (conf, hit) if conf is not None and hit is not None else None


# --------------------------------------------------------------------------------------------
# parquet: which columns hold what (numbered column families)

#: A column name ending in a number: the stem (prefix, maybe with ``_``) and the digits.
_NUMBERED = re.compile(r"^(.*?)(\d+)$", re.DOTALL)
#: Numbers with more significant digits than this cannot number a real column set; they get
#: distinct keys above any plausible class count, so the numbering check refuses them.
_MAX_DIGITS = 18


def families_of(names: list[str]) -> dict[str, dict[int, list[str]]]:
    """Numbered columns by family prefix (see :func:`family_prefix`):
    ``{prefix: {number: [names spelling that number]}}``; ``p_0`` and ``p0`` are one family."""
    out: dict[str, dict[int, list[str]]] = {}
    for i, name in enumerate(names):
        m = _NUMBERED.match(name)
        if m is None:
            continue
        stem, digits = m.groups()
        significant = digits.lstrip("0") or "0"
        # a number too long for int() is far beyond any column count: refused as sparse
        too_long = len(significant) > _MAX_DIGITS
        number = 10**_MAX_DIGITS + i if too_long else int(significant)
        out.setdefault(family_prefix(stem), {}).setdefault(number, []).append(name)
    return out


def _span(members: dict[int, list[str]]) -> str:
    """``p0 .. p9`` (or ``p0`` alone): how a family's columns are shown in a message."""
    first, last = members[min(members)][0], members[max(members)][0]
    return shown(first) if first == last else f"{shown(first)} .. {shown(last)}"


def _family_columns(members: dict[int, list[str]], source: str) -> tuple[str, ...]:
    """The columns of a family in class order, refusing duplicates, gaps and sparse numbers.

    Works on the numbers present only, so a name like ``logit_30000000`` costs nothing.
    """
    for number in sorted(members):
        spelled = members[number]
        if len(spelled) > 1:
            if len(set(spelled)) == 1:
                raise InputError(
                    source, f"column {quoted(spelled[0])} appears {len(spelled)} times"
                )
            both = " and ".join(quoted(n) for n in spelled[:2])
            raise InputError(
                source, f"columns {both} both number class {number}: rename or drop one"
            )
    numbers = sorted(members)
    k = len(numbers)
    if numbers[-1] != k - 1:
        missing = next(i for i, n in enumerate(numbers) if n != i)
        low = members[numbers[0]][0]
        digits = _NUMBERED.match(low).group(2)  # type: ignore[union-attr]
        stem = low[: len(low) - len(digits)]
        width = len(digits) if digits.startswith("0") and len(digits) > 1 else 1
        raise InputError(
            source,
            f"columns {shown(stem)}{0:0{width}d} .. {shown(members[numbers[-1]][0])} have a "
            f"gap: {shown(stem)}{missing:0{width}d} is missing",
        )
    return tuple(members[i][0] for i in range(k))


@dataclass(frozen=True)
class Columns:
    """Which columns hold the scores and the labels, and what the names say the scores are."""

    score_key: str  # a column name, or a family's key (``logit_*``)
    score_columns: tuple[str, ...]
    wide: bool
    kind: ScoreKind | None  # options.kind, else what the name says; None: the name does not say
    label_key: str

    @property
    def described(self) -> str:
        if self.wide:
            return f"the columns {shown(self.score_columns[0])} .. {shown(self.score_columns[-1])}"
        return f"column {quoted(self.score_key)}"


def _key_param(kind: ScoreKind | None, prefix: str) -> Param:
    """``scores_key=prefix``; on the command line, the key flag of ``kind``."""
    return Param("scores_key", prefix, alias="probs_key" if kind == "probs" else "logits_key")


def _chosen_family(key: str, families: dict[str, dict[int, list[str]]]) -> str | None:
    """The prefix of the family that a key from ``choose_scores_key`` stands for, else None."""
    prefix = "" if key == "*" else key[:-2] if key.endswith("_*") else None
    if prefix is None or prefix not in families or family_key(prefix) != key:
        return None
    return prefix


def choose_columns(names: list[str], options: ReadOptions, source: str) -> Columns:
    """Pick the score and label columns from a schema (nothing read), refusing ambiguity."""
    label_hint = options.labels_key if options.labels_key in names else None
    families = families_of([n for n in names if n != label_hint])
    score_key, kind = choose_scores_key(names, options, source, what="columns", families=families)
    family = _chosen_family(score_key, families)
    if family is not None:
        if score_key in names:
            raise InputError(
                source,
                f"column {quoted(score_key)} clashes with the columns "
                f"{_span(families[family])}: rename it",
            )
        score_columns = _family_columns(families[family], source)
        wide = True
    else:
        m = _NUMBERED.match(score_key)
        if m is not None:
            siblings = families.get(family_prefix(m.group(1)), {})
            if sum(len(spelled) for spelled in siblings.values()) > 1:
                # p0 next to p1: class 0's score, not a binary model's positive class
                stem = m.group(1)
                prefix = stem[:-1] if stem.endswith("_") else stem
                how = (
                    "name the prefix: " + _key_param(kind, shown(prefix))
                    if prefix
                    else "leave out the key and give " + Param("kind", kind or "logits|probs")
                )
                raise InputError(
                    source,
                    f"column {quoted(score_key)} is one of the columns {_span(siblings)}, "
                    "one per class, not a binary model's score; to read them all, " + how,
                )
        own = family_prefix(score_key)
        if own in families:
            raise InputError(
                source,
                f"both column {quoted(score_key)} and the columns {_span(families[own])} "
                "could hold the scores: drop or rename one",
            )
        score_columns = (score_key,)
        wide = False
    label_key = choose_labels_key(names, options, source, what="columns")
    if label_key in score_columns:
        raise InputError(source, f"column {quoted(label_key)} cannot be scores and labels")
    counts = Counter(names)
    for col in (*score_columns, label_key):
        if counts[col] > 1:
            raise InputError(source, f"column {quoted(col)} appears {counts[col]} times")
    return Columns(score_key, score_columns, wide, kind, label_key)
