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
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from calibkit.errors import InputError, Param
from calibkit.sources.predictions import SCORE_KINDS, ScoreKind

__all__ = [
    "LABEL_ALIASES",
    "LOGIT_ALIASES",
    "LOGIT_FAMILIES",
    "PROB_ALIASES",
    "PROB_FAMILIES",
    "UNKNOWN_FAMILIES",
    "ReadOptions",
    "choose_keys",
    "choose_labels_key",
    "choose_scores_key",
    "confidence_keys",
    "family_key",
    "family_prefix",
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
    """

    scores_key: str | None = None
    labels_key: str | None = None
    kind: ScoreKind | None = None
    key_kind: ScoreKind | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in SCORE_KINDS:
            raise InputError(
                "options", f"input kind must be 'logits' or 'probs'; got {self.kind!r}"
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


#: Longest name a message shows whole; longer ones are clipped in the middle.
NAME_LIMIT = 64
#: Most names a message lists ("keys present: ...").
LISTING_LIMIT = 30


def _clipped(name: str) -> str:
    if len(name) <= NAME_LIMIT:
        return name
    return f"{name[: NAME_LIMIT - 24]}...{name[-12:]} ({len(name)} characters)"


def shown(name: str) -> str:
    """A key or column name safe for a one-line message (control characters escaped, a very
    long name clipped in the middle).

    >>> shown("logits"), shown("a\\nb")
    ('logits', "'a\\\\nb'")
    >>> shown("logit_" + "9" * 5000)
    'logit_9999999999999999999999999999999999...999999999999 (5006 characters)'
    """
    name = _clipped(name)
    return name if name.isprintable() else repr(name)


def quoted(name: str) -> str:
    """A name in quotes for a message, like ``repr``, clipped as :func:`shown` clips it.

    >>> quoted("p0"), quoted("a\\nb")
    ("'p0'", "'a\\\\nb'")
    """
    return repr(_clipped(name))


def _listing(keys: Collection[str]) -> str:
    if not keys:
        return "none"
    names = sorted(keys)
    listed = ", ".join(shown(k) for k in names[:LISTING_LIMIT])
    if len(names) > LISTING_LIMIT:
        listed += f", ... ({len(names)} in all)"
    return listed


def _missing(name: str, keys: Collection[str], source: str, what: str) -> InputError:
    return InputError(
        source, f"{what[:-1]} {quoted(name)} not found; {what} present: {_listing(keys)}"
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
        f"no logits or probabilities found; {what} present: {_listing(keys)} "
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
        f"no labels found; {what} present: {_listing(keys)} (name them with "
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
