"""The projection of Müller, Kornblith & Hinton (2019, §2) of penultimate-layer activations onto
the plane of three class templates, and how tight and equidistant the clusters are there.

The template of class ``k`` is ``w~_k = [w_k; b_k]`` (its row of the final layer's weight, with
its bias appended) and an example is ``x~ = [x; 1]``, so that the logit is ``z_k = w~_k . x~``.
For three classes ``a, b, c`` the three templates span an **affine** plane (through the three
points, not through the origin): its orthonormal basis ``B`` (``(D + 1, 2)``) is the ``Q`` of
the QR decomposition of ``[w~_b - w~_a, w~_c - w~_a]``, with the signs fixed so that ``R`` has a
positive diagonal (so the basis is unique: the first axis points from ``w~_a`` to ``w~_b`` and
the second towards ``w~_c``). An example's coordinates are ``B^T (x~ - w~_a)``; the templates
sit at ``(0, 0)``, ``(|w~_b - w~_a|, 0)`` and ``(R_12, R_22)``.

The numbers (:class:`ClusterStats`), per class ``k`` among ``a, b, c`` with sampled points
``p_i`` (in the plane, or in the full ``(D + 1)``-dimensional space):

* ``centre_k`` = the mean of the points; ``spread_k = sqrt(mean_i |p_i - centre_k|^2)``, the RMS
  distance of the points to their centre, in the units of the space;
* ``distance_{kl} = |centre_k - centre_l|`` for the three pairs ``ab, ac, bc``;
* ``tightness = mean_k spread_k / mean_{kl} distance_{kl}``: scale-free, so models whose weights
  have different norms (hard vs label smoothing) compare fairly; smaller is tighter;
* ``equidistance_cv = std_{kl} distance_{kl} / mean_{kl} distance_{kl}`` (population standard
  deviation of the three distances): 0 when the centres form an equilateral triangle.

Everything is computed in float64; nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibkit.errors import InputError, Message, Param, UsageError

__all__ = [
    "PAIRS",
    "ClusterStats",
    "Plane",
    "Projection",
    "affine_plane",
    "augment",
    "cluster_stats",
    "project",
    "project_layer",
    "require_examples",
    "sample_indices",
    "templates",
]

#: The pairs of the three chosen classes (positions 0, 1, 2 = a, b, c) whose centres' distances
#: are reported, in this order: ab, ac, bc.
PAIRS = ((0, 1), (0, 2), (1, 2))

Array = NDArray[np.float64]


def templates(weight: Any, bias: Any) -> Array:
    """``w~_k = [w_k; b_k]`` for every class: ``(K, D + 1)`` in float64."""
    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    return np.concatenate([w, b[:, None]], axis=1)


def augment(features: Any) -> Array:
    """``x~ = [x; 1]`` for every row: ``(N, D + 1)`` in float64."""
    x = np.asarray(features, dtype=np.float64)
    return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)


@dataclass(frozen=True, kw_only=True, eq=False)
class Plane:
    """The affine plane through the templates of ``classes``: ``origin`` (``w~_a``) and the
    orthonormal ``basis`` (``(D + 1, 2)``)."""

    classes: tuple[int, int, int]
    origin: Array
    basis: Array

    def coordinates(self, points: Any) -> Array:
        """``B^T (p - w~_a)`` of each row ``p`` of ``points`` (``(n, D + 1)``): ``(n, 2)``."""
        p = np.asarray(points, dtype=np.float64)
        return np.asarray((p - self.origin) @ self.basis, dtype=np.float64)

    def template_coordinates(self, all_templates: Array) -> Array:
        """Where the three templates lie in the plane: ``(3, 2)``, rows a, b, c."""
        return self.coordinates(all_templates[list(self.classes)])


def affine_plane(
    all_templates: Any,
    classes: Sequence[int],
    *,
    unit: float | None = None,
    source: str | None = None,
) -> Plane:
    """The plane through the templates of the three ``classes`` (rows of ``all_templates``).

    ``unit`` is the unit roundoff of the precision the weights were stored in (``2**-24`` for
    float32; default: that of ``all_templates``' dtype, float64 for integers). Raises
    :class:`~calibkit.errors.InputError` naming ``source`` (else
    :class:`~calibkit.errors.UsageError`), naming ``classes``, when the three templates are on
    one line within that rounding, where no plane is defined.
    """
    raw = np.asarray(all_templates)
    if unit is None:
        unit = float(np.finfo(raw.dtype if raw.dtype.kind == "f" else np.float64).eps / 2)
    t = raw.astype(np.float64)
    a, b, c = (int(k) for k in classes)
    origin = t[a]
    span = np.stack([t[b] - origin, t[c] - origin], axis=1)
    q, r = np.linalg.qr(span)
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    q = q * signs
    r = r * signs[:, None]
    # Rounding the stored weights to unit roundoff u moves each template t_k by at most
    # u |t_k| (entrywise |e_i| <= u |t_k,i|, so in norm too). The second direction
    # R_22 = distance of t_c - t_a from the line along t_b - t_a then moves by at most
    # |e_c - e_a| + |t_c - t_a| |e_b - e_a| / |t_b - t_a|
    #   <= u (|t_a| + |t_c|) + u (|t_a| + |t_b|) |t_c - t_a| / |t_b - t_a|
    # (the first: t_c - t_a itself; the second: the tilt of the line). An R_22 within that
    # bound (times 8 for the rounding of the computation that produced the weights) may be
    # rounding noise of three templates on one line: the "plane" would be noise. The same
    # bound (first term) applies to R_11 = |t_b - t_a|; float64 QR adds a few ulps of |span|.
    na, nb, nc = (float(np.linalg.norm(t[k])) for k in (a, b, c))
    r11, r22 = float(r[0, 0]), float(abs(r[1, 1]))
    scale = max(float(np.linalg.norm(span[:, 0])), float(np.linalg.norm(span[:, 1])))
    floor = 8 * float(np.finfo(np.float64).eps) * scale
    tol11 = 8 * unit * (na + nb) + floor
    tilt = float(np.linalg.norm(span[:, 1])) / r11 if r11 > 0 else np.inf
    tol22 = 8 * unit * ((na + nc) + (na + nb) * tilt) + floor
    if scale == 0 or r11 <= tol11 or r22 <= tol22:
        bits = {2.0**-24: "float32", 2.0**-53: "float64", 2.0**-11: "float16",
                2.0**-8: "bfloat16"}.get(unit, f"unit roundoff {unit:.3g}")  # fmt: skip
        problem = Message(
            f"the templates of classes {a}, {b}, {c} lie on one line (within the rounding "
            f"of {bits} weights): no plane; choose other "
        ) + Param("classes")
        if source is not None:
            raise InputError(source, problem)
        raise UsageError(problem)
    return Plane(classes=(a, b, c), origin=origin, basis=np.ascontiguousarray(q))


def require_examples(
    labels: Any,
    classes: Sequence[int],
    *,
    source: str | None = None,
    names: Sequence[str] | None = None,
    split: str | None = None,
) -> None:
    """Refuse (one message naming ``source``, the ``split`` when given, and the class) when one
    of ``classes`` has no example in ``labels``: its cluster, the distances to it and the
    tightness would be undefined, and a table of ``-`` says nothing of why."""
    y = np.asarray(labels)
    for k in classes:
        if not np.any(y == k):
            name = str(k) if names is None else names[int(k)]
            label = name if name == str(k) else f"{name} (index {k})"
            where = "" if split is None else f"the {split} split "
            text = f"{where}has no examples of class {label}; choose classes present in every file"
            problem = Message(text + " with ") + Param("classes")
            if source is not None:
                raise InputError(source, problem)
            raise UsageError(problem)


def sample_indices(
    labels: Any, classes: Sequence[int], per_class: int, seed: int
) -> tuple[NDArray[np.int64], ...]:
    """For each of ``classes``, the sorted row indices of up to ``per_class`` of its examples,
    drawn without replacement by ``numpy.random.default_rng(seed)`` (class after class, in the
    order given); all of them when a class has fewer."""
    if per_class < 1:
        raise UsageError(Param("per_class", per_class) + " must be >= 1")
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = []
    for k in classes:
        rows = np.flatnonzero(y == k).astype(np.int64)
        if rows.size > per_class:
            rows = np.sort(rng.choice(rows, size=per_class, replace=False)).astype(np.int64)
        out.append(rows)
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class ClusterStats:
    """How tight and equidistant three clusters are (see the module docstring)."""

    counts: tuple[int, int, int]
    #: RMS distance of each class's points to their centre (NaN for a class without points)
    spread: tuple[float, float, float]
    #: distances between the centres, pairs :data:`PAIRS` (ab, ac, bc)
    distances: tuple[float, float, float]
    tightness: float
    equidistance_cv: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "spread": list(self.spread),
            "centre_distances": dict(zip(("ab", "ac", "bc"), self.distances, strict=True)),
            "tightness": self.tightness,
            "equidistance_cv": self.equidistance_cv,
        }


def cluster_stats(groups: Sequence[Any]) -> ClusterStats:
    """:class:`ClusterStats` of three groups of points (each ``(n_k, d)``, any ``d``)."""
    if len(groups) != 3:
        raise ValueError(f"three groups of points, got {len(groups)}")
    points = [np.asarray(g, dtype=np.float64) for g in groups]
    nan = float("nan")
    centres: list[Array | None] = []
    spreads: list[float] = []
    for p in points:
        if p.shape[0] == 0:
            centres.append(None)
            spreads.append(nan)
            continue
        centre = p.mean(axis=0)
        centres.append(centre)
        spreads.append(float(np.sqrt(np.mean(np.sum((p - centre) ** 2, axis=1)))))
    distances = []
    for i, j in PAIRS:
        ci, cj = centres[i], centres[j]
        distances.append(nan if ci is None or cj is None else float(np.linalg.norm(ci - cj)))
    d = np.array(distances)
    mean_d = float(d.mean())
    tightness = float(np.mean(spreads)) / mean_d if mean_d > 0 else nan
    cv = float(d.std()) / mean_d if mean_d > 0 else nan
    return ClusterStats(
        counts=(points[0].shape[0], points[1].shape[0], points[2].shape[0]),
        spread=(spreads[0], spreads[1], spreads[2]),
        distances=(distances[0], distances[1], distances[2]),
        tightness=tightness,
        equidistance_cv=cv,
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class Projection:
    """One split of one model projected onto its plane."""

    plane: Plane
    #: per class a, b, c: the sampled rows' coordinates in the plane, ``(n_k, 2)``
    coords: tuple[Array, Array, Array]
    #: per class a, b, c: the sampled rows (indices into the split's arrays)
    rows: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]
    #: the templates of a, b, c in the plane, ``(3, 2)``
    template_coords: Array
    #: the clusters in the plane
    plane_stats: ClusterStats
    #: the same clusters in the full (D + 1)-dimensional space of ``x~``
    full_stats: ClusterStats
    #: how many examples of each class the split holds (before sampling)
    available: tuple[int, int, int]


def project(
    plane: Plane,
    all_templates: Any,
    features: Any,
    rows: Sequence[Any],
    *,
    available: Sequence[int] | None = None,
) -> Projection:
    """Project the ``rows`` (one index array per class a, b, c) of ``features`` onto ``plane``."""
    x = np.asarray(features)
    full = [augment(x[np.asarray(r, dtype=np.int64)]) for r in rows]
    coords = tuple(plane.coordinates(p) for p in full)
    kept = tuple(np.asarray(r, dtype=np.int64) for r in rows)
    counts = tuple(int(r.size) for r in kept) if available is None else tuple(available)
    return Projection(
        plane=plane,
        coords=(coords[0], coords[1], coords[2]),
        rows=(kept[0], kept[1], kept[2]),
        template_coords=plane.template_coordinates(np.asarray(all_templates, dtype=np.float64)),
        plane_stats=cluster_stats(coords),
        full_stats=cluster_stats(full),
        available=(int(counts[0]), int(counts[1]), int(counts[2])),
    )


def project_layer(
    features: Any,
    weight: Any,
    bias: Any,
    labels: Any,
    classes: Sequence[int],
    *,
    per_class: int = 100,
    seed: int = 0,
) -> Projection:
    """The whole §2 projection of one split: plane of ``classes``, ``per_class`` seeded examples
    of each, their coordinates and the cluster numbers."""
    t = templates(weight, bias)
    raw = [np.asarray(a) for a in (weight, bias)]
    units = [float(np.finfo(a.dtype).eps / 2) for a in raw if a.dtype.kind == "f"]
    plane = affine_plane(t, classes, unit=max(units, default=float(np.finfo(np.float64).eps / 2)))
    y = np.asarray(labels)
    require_examples(y, classes)
    rows = sample_indices(y, classes, per_class, seed)
    available = [int(np.count_nonzero(y == k)) for k in classes]
    return project(plane, t, features, rows, available=available)
