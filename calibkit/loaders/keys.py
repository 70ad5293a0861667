"""Which stored array or column holds what: the name aliases every reader shares.

The name of a key or column says where the scores are and what they are called; a name that
says probabilities is read as probabilities, and under a name that says logits, rows that all lie
in [0, 1] and sum to 1 are read as probabilities (with a warning; see
:func:`calibkit.predictions.choose_kind`). ``--input`` forces either reading.

Aliases, tried in this order:

* logits: ``logits``, ``logit`` (parquet also: wide columns ``logit_0 .. logit_{K-1}``,
  seen as ``logit_*``)
* probabilities: ``probs``, ``probabilities``, ``prob``, ``proba``, ``y_prob``, ``y_proba``
  (parquet also: ``prob_0 .. prob_{K-1}``)
* labels: ``labels``, ``label``, ``targets``, ``target``, ``y``, ``y_true``

When both logits and probabilities are present, logits win (they keep more information).

Confidence-only rows (no logits or probabilities anywhere): ``confidence`` / ``confidences`` /
``conf`` plus ``correct`` / ``is_correct`` / ``correctness`` (see
:class:`~calibkit.predictions.ConfidenceRows`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from calibkit.errors import InputError
from calibkit.predictions import SCORE_KINDS, ScoreKind

__all__ = [
    "LABEL_ALIASES",
    "LOGIT_ALIASES",
    "PROB_ALIASES",
    "ReadOptions",
    "choose_keys",
    "choose_labels_key",
    "choose_scores_key",
    "confidence_keys",
    "kind_of_name",
]

LOGIT_ALIASES = ("logits", "logit", "logit_*")
PROB_ALIASES = ("probs", "probabilities", "prob", "proba", "y_prob", "y_proba", "prob_*")
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
    low = name.lower()
    if low in LOGIT_ALIASES:
        return "logits"
    if low in PROB_ALIASES:
        return "probs"
    return None


def shown(name: str) -> str:
    """A key or column name safe for a one-line message (control characters escaped).

    >>> shown("logits"), shown("a\\nb")
    ('logits', "'a\\\\nb'")
    """
    return name if name.isprintable() else repr(name)


def _listing(keys: Collection[str]) -> str:
    return ", ".join(shown(k) for k in sorted(keys)) if keys else "none"


def _missing(name: str, keys: Collection[str], source: str, what: str) -> InputError:
    return InputError(source, f"{what[:-1]} {name!r} not found; {what} present: {_listing(keys)}")


def choose_scores_key(
    keys: Collection[str], options: ReadOptions, source: str, *, what: str = "keys"
) -> tuple[str, ScoreKind]:
    """The key holding the scores, and what they are."""
    if options.scores_key is not None:
        if options.scores_key not in keys:
            raise _missing(options.scores_key, keys, source, what)
        kind = options.kind or options.key_kind or kind_of_name(options.scores_key)
        if kind is None:
            raise InputError(
                source,
                f"cannot tell whether {options.scores_key!r} holds logits or "
                "probabilities; say which with --input logits or --input probs",
            )
        return options.scores_key, kind
    lowered = {k.lower(): k for k in keys}
    for alias in LOGIT_ALIASES + PROB_ALIASES:
        if alias in lowered:
            key = lowered[alias]
            return key, options.kind or kind_of_name(key)  # type: ignore[return-value]
    raise InputError(
        source,
        f"no logits or probabilities found; {what} present: {_listing(keys)} "
        "(name them with --logits-key or --probs-key)",
    )


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
        source, f"no labels found; {what} present: {_listing(keys)} (name them with --labels-key)"
    )


def choose_keys(
    keys: Collection[str], options: ReadOptions, source: str, *, what: str = "keys"
) -> tuple[str, str, ScoreKind]:
    """Pick ``(scores_key, labels_key, kind)`` from the names present in a file."""
    scores_key, kind = choose_scores_key(keys, options, source, what=what)
    return scores_key, choose_labels_key(keys, options, source, what=what), kind


def confidence_keys(keys: Collection[str], options: ReadOptions) -> tuple[str, str] | None:
    """``(confidence_key, correct_key)`` for confidence-only files, else ``None``."""
    if options.scores_key is not None or options.kind is not None:
        return None
    lowered = {k.lower(): k for k in keys}
    if any(a in lowered for a in LOGIT_ALIASES + PROB_ALIASES):
        return None
    conf = next((lowered[a] for a in CONFIDENCE_ALIASES if a in lowered), None)
    hit = next((lowered[a] for a in CORRECT_ALIASES if a in lowered), None)
    return (conf, hit) if conf is not None and hit is not None else None
