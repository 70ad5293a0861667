"""The penultimate-layer projection (Müller et al. 2019, §2) and the reading of a last layer.

Hand-checked coordinates on a constructed plane, the affine plane (not one through the origin),
orthonormality and determinism of the basis, invariance to row order, the cluster numbers by
hand, the loader's key detection and checks (transposed weights, a wrong layer, the float32
rounding of a stored product), and a golden number on the sample data checked against an
independent formula written here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibkit.diagnostics.penultimate import (
    affine_plane,
    augment,
    cluster_stats,
    project,
    project_layer,
    require_examples,
    sample_indices,
    templates,
)
from calibkit.errors import InputError, UsageError
from calibkit.loaders.class_names import read_class_names
from calibkit.loaders.layer import LayerKeys, logits_mismatch, read_layer

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"

# Templates [w_k; b_k] of a 2-D model: (1, 1, 1), (3, 1, 1), (1, 4, 1). Their plane is
# {third coordinate = 1}, where every x~ = [x; 1] lies; its basis is e1, e2, its origin w~_0.
W = np.array([[1.0, 1.0], [3.0, 1.0], [1.0, 4.0]])
B = np.array([1.0, 1.0, 1.0])


def test_hand_checked_coordinates_on_a_known_plane() -> None:
    t = templates(W, B)
    plane = affine_plane(t, (0, 1, 2))
    np.testing.assert_allclose(plane.basis, [[1, 0], [0, 1], [0, 0]], atol=1e-15)
    x = np.array([[2.5, -1.0], [1.0, 1.0], [0.0, 7.0]])
    # B^T (x~ - w~_0): x - (1, 1)
    np.testing.assert_allclose(plane.coordinates(augment(x)), [[1.5, -2.0], [0, 0], [-1, 6]])
    np.testing.assert_allclose(plane.template_coordinates(t), [[0, 0], [2, 0], [0, 3]], atol=1e-15)


def test_the_plane_is_affine_not_through_the_origin() -> None:
    t = templates(W, B)
    plane = affine_plane(t, (0, 1, 2))
    xt = augment(np.array([[2.5, -1.0]]))
    np.testing.assert_allclose(plane.coordinates(xt), [[1.5, -2.0]])
    # the affine plane holds all three templates: w~_a + B c_k == w~_k
    rng = np.random.default_rng(3)
    t = rng.normal(size=(5, 7))
    plane = affine_plane(t, (4, 0, 2))
    back = plane.origin + plane.template_coordinates(t) @ plane.basis.T
    np.testing.assert_allclose(back, t[[4, 0, 2]], atol=1e-12)
    pts = [rng.normal(size=(20, 7)) + t[k] for k in (4, 0, 2)]
    affine = cluster_stats([plane.coordinates(p) for p in pts])
    # With the same B, B^T x~ (no "- w~_a") only shifts every point by B^T w~_a: every spread,
    # distance and ratio is the same. It is not the mistake.
    shifted = [p @ plane.basis for p in pts]
    for p, s in zip(pts, shifted, strict=True):
        np.testing.assert_allclose(s - plane.coordinates(p), [plane.origin @ plane.basis] * 20)
    same = cluster_stats(shifted)
    np.testing.assert_allclose(same.spread, affine.spread, rtol=1e-12)
    np.testing.assert_allclose(same.distances, affine.distances, rtol=1e-12)
    # The mistake is another plane: the span of the templates through the origin, the QR of
    # [w~_a, w~_b] (or the first two axes of the QR of all three templates, w~_a not
    # subtracted). Points project differently onto it: other numbers.
    for span in (np.stack([t[4], t[0]], axis=1), np.stack([t[4], t[0], t[2]], axis=1)):
        q = np.linalg.qr(span)[0][:, :2]
        assert not np.allclose(np.abs(q.T @ plane.basis), np.eye(2), atol=1e-3)  # another plane
        origin = cluster_stats([p @ q for p in pts])
        assert not np.isclose(affine.tightness, origin.tightness, rtol=1e-3)
        assert not np.allclose(affine.distances, origin.distances, rtol=1e-3)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 40))
def test_the_basis_is_orthonormal_and_its_signs_fixed(seed: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(4, d + 1)) * rng.uniform(0.1, 10)
    plane = affine_plane(t, (1, 3, 0))
    np.testing.assert_allclose(plane.basis.T @ plane.basis, np.eye(2), atol=1e-12)
    u, v = t[3] - t[1], t[0] - t[1]
    # axis 1 points from w~_a to w~_b; axis 2 towards w~_c and orthogonal to axis 1
    np.testing.assert_allclose(plane.basis[:, 0], u / np.linalg.norm(u), atol=1e-12)
    assert plane.basis[:, 1] @ v > 0
    tc = plane.template_coordinates(t)
    assert tc[1, 1] == pytest.approx(0, abs=1e-9 * np.linalg.norm(u)) and tc[1, 0] > 0
    assert tc[2, 1] > 0


def test_collinear_templates_are_refused() -> None:
    t = np.array([[0.0, 0, 1], [1, 1, 1], [2, 2, 1]])
    with pytest.raises(UsageError, match="lie on one line"):
        affine_plane(t, (0, 1, 2))
    with pytest.raises(InputError, match=r"^w\.npz: the templates of classes 0, 1, 2 lie on one"):
        affine_plane(t, (0, 1, 2), source="w.npz")


def _midpoint_templates(d: int = 64) -> np.ndarray:
    """Float32 templates where c is the float32 midpoint of a and b: on one line but for the
    rounding of c to float32."""
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(2, d + 1)).astype(np.float32)
    c = ((a.astype(np.float64) + b) / 2).astype(np.float32)
    return np.stack([a, b, c, rng.normal(size=d + 1).astype(np.float32)])


def test_templates_on_one_line_within_float32_rounding_are_refused() -> None:
    t = _midpoint_templates()
    r = np.linalg.qr(np.stack([t[1] - t[0], t[2] - t[0]], axis=1).astype(np.float64))[1]
    assert 0 < abs(r[1, 1]) / abs(r[0, 0]) < 1e-6  # not 0: float32 rounding noise
    with pytest.raises(UsageError, match=r"lie on one line \(within the rounding of float32"):
        affine_plane(t, (0, 1, 2))  # the unit roundoff of the float32 array
    with pytest.raises(UsageError, match="lie on one line"):
        affine_plane(t.astype(np.float64), (0, 1, 2), unit=2.0**-24)
    # a real (if narrow) plane of float32 templates is kept: c off the line by 1e-3 |b - a|
    off = t.astype(np.float64)
    normal = np.linalg.qr(np.stack([off[1] - off[0], off[3]], axis=1))[0][:, 1]
    off[2] += 1e-3 * np.linalg.norm(off[1] - off[0]) * normal
    plane = affine_plane(off.astype(np.float32), (0, 1, 2))
    np.testing.assert_allclose(plane.basis.T @ plane.basis, np.eye(2), atol=1e-12)
    # and through the layer functions: the float32 weights' unit roundoff is used
    rng = np.random.default_rng(0)
    with pytest.raises(UsageError, match="lie on one line"):
        project_layer(rng.normal(size=(9, 64)), t[:, :-1], t[:, -1], np.arange(9) % 4, (0, 1, 2))


def test_cluster_numbers_by_hand() -> None:
    # centres on an equilateral triangle of side 2; each cluster: two points at centre +- (1, 0)
    centres = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, np.sqrt(3.0)]])
    step = np.array([1.0, 0.0])
    groups = [np.stack([c + step, c - step]) for c in centres]
    s = cluster_stats(groups)
    np.testing.assert_allclose(s.spread, [1, 1, 1])
    np.testing.assert_allclose(s.distances, [2, 2, 2])
    assert s.tightness == pytest.approx(0.5)
    assert s.equidistance_cv == pytest.approx(0, abs=1e-15)
    # a right triangle 3-4-5: CV = std / mean of (3, 4, 5) (population std)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    s = cluster_stats([c[None, :] for c in centres])
    np.testing.assert_allclose(s.distances, [3, 4, 5])
    assert s.spread == (0.0, 0.0, 0.0)
    assert s.equidistance_cv == pytest.approx(np.std([3, 4, 5]) / 4)
    # an empty class: its numbers are NaN, never a silent 0 (project_layer refuses it)
    s = cluster_stats([np.zeros((0, 2)), np.ones((2, 2)), np.zeros((1, 2))])
    assert np.isnan(s.spread[0]) and np.isnan(s.distances[0]) and np.isnan(s.tightness)


def test_sampling_is_seeded_without_replacement_and_takes_all_of_a_small_class() -> None:
    labels = np.array([0] * 50 + [1] * 7 + [2] * 30)
    rows = sample_indices(labels, (2, 0, 1), 20, seed=5)
    assert [r.size for r in rows] == [20, 20, 7]
    for r, k in zip(rows, (2, 0, 1), strict=True):
        assert np.all(labels[r] == k) and np.unique(r).size == r.size
    np.testing.assert_array_equal(rows[2], np.flatnonzero(labels == 1))
    again = sample_indices(labels, (2, 0, 1), 20, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(rows, again, strict=True))
    other = sample_indices(labels, (2, 0, 1), 20, seed=6)
    assert not np.array_equal(rows[0], other[0])


def test_the_numbers_do_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(0)
    n, d, k = 300, 6, 4
    x = rng.normal(size=(n, d))
    y = rng.integers(0, k, size=n)
    w, b = rng.normal(size=(k, d)), rng.normal(size=k)
    t = templates(w, b)
    plane = affine_plane(t, (0, 2, 3))
    rows = sample_indices(y, (0, 2, 3), 30, seed=1)
    first = project(plane, t, x, rows)
    perm = rng.permutation(n)  # new row i is old row perm[i]
    where = np.argsort(perm)  # old row j is now at where[j]
    second = project(plane, t, x[perm], [where[r][::-1] for r in rows])  # same sample, any order
    for a, c in ((first.plane_stats, second.plane_stats), (first.full_stats, second.full_stats)):
        np.testing.assert_allclose(a.spread, c.spread, rtol=1e-12)
        np.testing.assert_allclose(a.distances, c.distances, rtol=1e-12)
        assert a.tightness == pytest.approx(c.tightness, rel=1e-12)


def test_the_full_space_spread_is_at_least_the_plane_spread() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(200, 9)), rng.integers(0, 3, size=200)
    p = project_layer(x, rng.normal(size=(3, 9)), rng.normal(size=3), y, (0, 1, 2), per_class=50)
    assert all(
        f >= s - 1e-12 for f, s in zip(p.full_stats.spread, p.plane_stats.spread, strict=True)
    )
    assert all(
        f >= s - 1e-12 for f, s in zip(p.full_stats.distances, p.plane_stats.distances, strict=True)
    )


# --- reading a last layer ----------------------------------------------------------------------


def _layer(n: int = 60, d: int = 8, k: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(k, d)).astype(np.float32)
    b = rng.normal(size=k).astype(np.float32)
    z = (x @ w.T + b).astype(np.float32)  # a float32 product, as a model stores it
    return {"features": x, "weight": w, "bias": b, "logits": z, "labels": np.arange(n) % k}


def test_a_float32_product_is_reproduced(tmp_path: Path) -> None:
    arrays = _layer(d=512)
    np.savez(tmp_path / "a.npz", **arrays)
    layer = read_layer(tmp_path / "a.npz")
    assert layer.has_logits and layer.keys["weight"] == "weight"
    assert layer.features.dtype == np.float64


def test_transposed_weights_are_caught_by_the_logits_even_when_square(tmp_path: Path) -> None:
    arrays = _layer(d=4, k=4)
    arrays["weight"] = arrays["weight"].T.copy()  # (K, D) == (D, K): only the logits tell
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(InputError, match=r"does not reproduce the logits .* wrong layer or transp"):
        read_layer(tmp_path / "a.npz")


def test_a_transposed_weight_by_shape(tmp_path: Path) -> None:
    arrays = _layer(d=8, k=4)
    arrays["weight"] = arrays["weight"].T.copy()
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(InputError, match=r"shape \(8, 4\) .* looks transposed"):
        read_layer(tmp_path / "a.npz")


def test_features_of_another_layer_are_caught(tmp_path: Path) -> None:
    arrays = _layer()
    arrays["features"] = np.maximum(arrays["features"], 0)  # e.g. before vs after a ReLU
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(InputError, match=r"max difference .* at row \d+, class \d+"):
        read_layer(tmp_path / "a.npz")


def test_the_tolerance_is_tight_relative_to_the_terms() -> None:
    a = _layer(d=64)
    x, w, b, z = (a[k].astype(np.float64) for k in ("features", "weight", "bias", "logits"))
    assert logits_mismatch(x, w, b, z, unit=2.0**-24) is None
    z[3, 1] += 1e-3 * (np.abs(x[3]) @ np.abs(w[1]))  # far beyond float32 rounding
    assert logits_mismatch(x, w, b, z, unit=2.0**-24) == (
        pytest.approx(abs(z[3, 1] - (x[3] @ w[1] + b[1]))),
        3,
        1,
    )


def test_a_state_dict_fc_weight_is_found_and_an_ambiguous_one_refused(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    a = _layer()
    np.savez(tmp_path / "f.npz", features=a["features"], labels=a["labels"], logits=a["logits"])
    w, b = torch.from_numpy(a["weight"]), torch.from_numpy(a["bias"])
    torch.save({"conv.weight": torch.zeros(8, 8), "fc.weight": w, "fc.bias": b}, tmp_path / "s.pt")
    layer = read_layer(tmp_path / "f.npz", weights_path=tmp_path / "s.pt")
    assert (layer.keys["weight"], layer.keys["bias"]) == ("fc.weight", "fc.bias")
    np.testing.assert_array_equal(layer.weight, a["weight"])
    # no alias: the one NAME.weight of shape (K, D)
    torch.save(
        {"conv.weight": torch.zeros(3, 3), "proj.weight": w, "proj.bias": b}, tmp_path / "g.pt"
    )
    layer = read_layer(tmp_path / "f.npz", weights_path=tmp_path / "g.pt")
    assert layer.keys["weight"] == "proj.weight"
    torch.save({"p.weight": w, "p.bias": b, "q.weight": w, "q.bias": b}, tmp_path / "two.pt")
    with pytest.raises(InputError, match=r"'p\.weight', 'q\.weight'; choose one with weight_key"):
        read_layer(tmp_path / "f.npz", weights_path=tmp_path / "two.pt")
    layer = read_layer(
        tmp_path / "f.npz", LayerKeys(weight="q.weight"), weights_path=tmp_path / "two.pt"
    )
    assert layer.keys["bias"] == "q.bias"
    torch.save({"fc.weight": w, "head.weight": w, "fc.bias": b}, tmp_path / "named.pt")
    with pytest.raises(InputError, match=r"'fc\.weight', 'head\.weight'; choose one"):
        read_layer(tmp_path / "f.npz", weights_path=tmp_path / "named.pt")


def test_ambiguous_features_and_missing_keys(tmp_path: Path) -> None:
    a = _layer()
    np.savez(tmp_path / "a.npz", **a, embeddings=a["features"])
    with pytest.raises(InputError, match="'features', 'embeddings'; choose one with features_key"):
        read_layer(tmp_path / "a.npz")
    assert read_layer(tmp_path / "a.npz", LayerKeys(features="embeddings")).keys["features"] == (
        "embeddings"
    )
    np.savez(tmp_path / "b.npz", features=a["features"], labels=a["labels"])
    with pytest.raises(InputError, match=r"no final-layer weight of shape \(K, 8\)"):
        read_layer(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", weight=a["weight"], bias=a["bias"], labels=a["labels"])
    with pytest.raises(InputError, match="no features found"):
        read_layer(tmp_path / "c.npz")


def test_wide_parquet_columns(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    a = _layer(d=12)
    cols = {f"feature_{i}": a["features"][:, i] for i in (3, 0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11)}
    pq.write_table(pa.table({**cols, "label": a["labels"]}), tmp_path / "f.parquet")
    np.savez(tmp_path / "w.npz", weight=a["weight"], bias=a["bias"])
    layer = read_layer(tmp_path / "f.parquet", weights_path=tmp_path / "w.npz")
    np.testing.assert_array_equal(layer.features, a["features"])  # columns in index order
    assert layer.keys["features"] == "feature_0..feature_11"


def test_class_names_key_is_a_plain_string_array(tmp_path: Path) -> None:
    a = _layer()
    names = np.array(["cat", "dog", "bird", "fish"])
    assert names.dtype.kind == "U"  # stored without pickling; loads with allow_pickle=False
    np.savez(tmp_path / "a.npz", **a, class_names=names)
    assert read_layer(tmp_path / "a.npz").class_names == ("cat", "dog", "bird", "fish")
    np.savez(tmp_path / "b.npz", **a, class_names=names[:3])
    with pytest.raises(InputError, match="must be 4 strings"):
        read_layer(tmp_path / "b.npz")
    (tmp_path / "n.txt").write_text("a\nb\n\nc\n")
    with pytest.raises(InputError, match="line 3 is empty"):
        read_class_names(tmp_path / "n.txt")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"bias": np.zeros(3, np.float32)}, r"bias 'bias' has shape \(3,\); expected \(4,\)"),
        ({"labels": np.full(60, 4)}, r"label 4 at row 0 is outside \[0, 4\)"),
        ({"labels": np.full(60, -1)}, r"label -1 at row 0 is outside"),
        ({"features": np.zeros((60, 8, 1), np.float32)}, r"expected \(N, D\)"),
        ({"features": np.full((60, 8), np.nan, np.float32)}, "non-finite"),
        ({"logits": np.zeros((60, 3), np.float32)}, r"expected \(60, 4\)"),
    ],
)
def test_bad_layers_are_one_message(tmp_path: Path, change: dict, match: str) -> None:
    a = {**_layer(), **change}
    np.savez(tmp_path / "a.npz", **a)
    with pytest.raises(InputError, match=match):
        read_layer(tmp_path / "a.npz")


def test_two_classes_are_too_few(tmp_path: Path) -> None:
    a = _layer(k=2)
    np.savez(tmp_path / "a.npz", **a)
    with pytest.raises(InputError, match="K = 2 classes; the projection needs >= 3"):
        read_layer(tmp_path / "a.npz")


# --- a golden number on the sample data ------------------------------------------------------

#: tightness and equidistance CV in the plane of classes 1, 3, 4 of digits_hard / ls10 (test
#: split, every example: 46 per class < 100), computed once by calibkit.
GOLDEN = {"hard": (0.23514, 0.25243), "ls10": (0.20516, 0.03750)}


def _independent(path: Path, classes: tuple[int, int, int]) -> tuple[float, float]:
    """Gram-Schmidt by hand, coordinates of [x; 1] - [w_a; b_a], spreads and distances."""
    d = np.load(path)
    x = d["features"].astype(np.float64)
    wt = np.hstack([d["weight"].astype(np.float64), d["bias"].astype(np.float64)[:, None]])
    xt = np.hstack([x, np.ones((len(x), 1))])
    a, b, c = (wt[k] for k in classes)
    e1 = (b - a) / np.linalg.norm(b - a)
    v = (c - a) - ((c - a) @ e1) * e1
    e2 = v / np.linalg.norm(v)
    spreads, centres = [], []
    for k in classes:
        rel = xt[d["labels"] == k] - a
        pts = np.column_stack([rel @ e1, rel @ e2])
        centre = pts.mean(axis=0)
        spreads.append(np.sqrt(((pts - centre) ** 2).sum(axis=1).mean()))
        centres.append(centre)
    dist = [np.hypot(*(centres[i] - centres[j])) for i, j in ((0, 1), (0, 2), (1, 2))]
    return float(np.mean(spreads) / np.mean(dist)), float(np.std(dist) / np.mean(dist))


@pytest.mark.parametrize("model", sorted(GOLDEN))
def test_golden_tightness_on_the_sample_data(model: str) -> None:
    path = SAMPLE / f"digits_{model}_penultimate_test.npz"
    layer = read_layer(path)
    p = project_layer(layer.features, layer.weight, layer.bias, layer.labels, (1, 3, 4))
    assert p.plane_stats.counts == p.available == (46, 46, 46)
    tightness, cv = _independent(path, (1, 3, 4))
    assert p.plane_stats.tightness == pytest.approx(tightness, rel=1e-10)
    assert p.plane_stats.equidistance_cv == pytest.approx(cv, rel=1e-10)
    assert (round(tightness, 5), round(cv, 5)) == GOLDEN[model]


# --- the reviewer's cases (#16) ---------------------------------------------------------------


def test_a_file_without_examples_is_refused(tmp_path: Path) -> None:
    a = _layer()
    np.savez(tmp_path / "a.npz", **{**a, "features": a["features"][:0], "logits": a["logits"][:0],
                                   "labels": a["labels"][:0]})  # fmt: skip
    with pytest.raises(InputError, match=r"a\.npz: features 'features' have no rows \(N = 0\)"):
        read_layer(tmp_path / "a.npz")


def test_the_nan_message_shows_plain_indices(tmp_path: Path) -> None:
    a = _layer()
    a["features"][3, 2] = np.nan
    np.savez(tmp_path / "a.npz", **a)
    with pytest.raises(InputError, match=r"1 non-finite values \(first at \(3, 2\)\)$"):
        read_layer(tmp_path / "a.npz")


def _tf32(a: np.ndarray) -> np.ndarray:
    """Round float32 to TF32's 10-bit mantissa (to nearest, ties away), as a GPU's TF32 matmul
    reads its inputs."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def _tf32_layer(d: int = 64) -> dict[str, np.ndarray]:
    a = _layer(d=d)
    x, w = (_tf32(a[k]).astype(np.float64) for k in ("features", "weight"))
    a["logits"] = (x @ w.T + a["bias"]).astype(np.float32)  # stored float32, computed in TF32
    return a


def test_tf32_logits_need_the_logits_precision(tmp_path: Path) -> None:
    a = _tf32_layer()
    assert not np.array_equal(_tf32(a["features"]), a["features"])  # the rounding is real
    np.savez(tmp_path / "a.npz", **a)
    with pytest.raises(InputError, match=r"checked at float32 precision\): wrong layer or .*"
                       r"lower precision \(TF32, autocast\): give logits_precision$"):  # fmt: skip
        read_layer(tmp_path / "a.npz")
    for precision in ("tf32", "float16", "bfloat16"):
        assert read_layer(tmp_path / "a.npz", logits_precision=precision).has_logits
    # a wrong layer is still caught at TF32's tolerance
    np.savez(tmp_path / "b.npz", **{**a, "features": np.maximum(a["features"], 0)})
    with pytest.raises(InputError, match=r"checked at tf32 precision"):
        read_layer(tmp_path / "b.npz", logits_precision="tf32")
    with pytest.raises(UsageError, match=r"logits_precision='fp8' must be one of auto, float32"):
        read_layer(tmp_path / "a.npz", logits_precision="fp8")


def test_the_logits_precision_sets_the_unit_roundoff(tmp_path: Path) -> None:
    import calibkit.loaders.layer as layer_module

    seen: list[float] = []
    real = layer_module.logits_mismatch

    def spy(*args: object, unit: float) -> object:
        seen.append(unit)
        return real(*args, unit=unit)  # type: ignore[arg-type]

    np.savez(tmp_path / "a.npz", **_layer())
    expected = {"auto": 2.0**-24, "float32": 2.0**-24, "tf32": 2.0**-11, "float16": 2.0**-11,
                "bfloat16": 2.0**-8, "float64": 2.0**-53}  # fmt: skip
    mp = pytest.MonkeyPatch()
    mp.setattr(layer_module, "logits_mismatch", spy)
    try:
        for precision in expected:
            try:
                read_layer(tmp_path / "a.npz", logits_precision=precision)
            except InputError:
                assert precision == "float64"  # float32 logits are not float64-exact
    finally:
        mp.undo()
    assert seen == list(expected.values())


def test_a_class_without_examples_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 5)), np.arange(30) % 3  # no class 3
    w, b = rng.normal(size=(4, 5)), rng.normal(size=4)
    with pytest.raises(UsageError, match="has no examples of class 3; choose classes present"):
        project_layer(x, w, b, y, (0, 1, 3))
    with pytest.raises(InputError, match=r"^f\.npz: the --train split has no examples of class "
                       r"dog \(index 3\)"):  # fmt: skip
        require_examples(y, (0, 3, 1), source="f.npz", names=["a", "b", "c", "dog"],
                         split="--train")  # fmt: skip
    require_examples(y, (0, 1, 2), source="f.npz")  # all present: nothing to say


def test_sparse_wide_columns_name_the_missing_one(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    a = _layer(d=6)
    cols = {f"feat_{i}": a["features"][:, i] for i in (0, 1, 2, 3, 5)}
    pq.write_table(pa.table({**cols, "label": a["labels"]}), tmp_path / "f.parquet")
    np.savez(tmp_path / "w.npz", weight=a["weight"][:, :5], bias=a["bias"])
    with pytest.raises(InputError, match=r"columns feat_0 \.\.\. feat_5 found, but column "
                       r"feat_4 is missing$"):  # fmt: skip
        read_layer(
            tmp_path / "f.parquet", LayerKeys(features="feat"), weights_path=tmp_path / "w.npz"
        )


def test_the_figure_draws_points_over_hollow_templates() -> None:
    pytest.importorskip("matplotlib")
    from calibkit.plotting.penultimate import plot_penultimate

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 5)), np.arange(60) % 3
    p = project_layer(x, rng.normal(size=(3, 5)), rng.normal(size=3), y, (0, 1, 2))
    fig = plot_penultimate({"m": {"test": p}}, class_names=["a", "b", "c"])
    ax = fig.axes[0]
    points = [c for c in ax.collections if len(c.get_offsets()) > 1]
    stars = [c for c in ax.collections if len(c.get_offsets()) == 1]
    assert len(points) == 3 and stars
    assert min(c.get_zorder() for c in points) > max(c.get_zorder() for c in stars)
    assert all(c.get_facecolor().size == 0 or c.get_facecolor()[0][3] == 0 for c in stars)
