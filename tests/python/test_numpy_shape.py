"""numpy's stacking, splitting, rearranging and product functions composed of
xcs ops (ember/xcs/_np_shape.py: atleast_nd, h/v/d/column_stack, array_split
and h/v/dsplit, rot90, broadcast_arrays, append/insert/delete, resize,
unravel_index/ravel_multi_index, meshgrid, tensordot/inner/vdot/kron/cross,
linalg.multi_dot/matrix_power, trapezoid, polyval, convolve/correlate,
select/choose): numpy's values, shapes and dtypes through numpy's own
functions, eagerly and under jit; gradients of the linear ones (the adjoint
probed one element at a time) and of the bilinear ones (finite differences);
vmap; errors and numpy's fallback for what xcs does not compute."""
import warnings

import numpy as np
import pytest

import ember.xcs as xcs
from ember.xcs import grad, jit, vmap

R = np.random.default_rng(11)  # fixed inputs: the table below is built once
A = R.standard_normal((4, 5))
A3 = R.standard_normal((2, 4, 5))
B = R.standard_normal((5, 3))
C = R.standard_normal((3, 6))
D = R.standard_normal((6, 2))
V = R.standard_normal(4)
W = R.standard_normal(5)
K = R.standard_normal(3)
S = np.array(2.5)
SQ = R.standard_normal((3, 3)) / 2
SQ3 = R.standard_normal((2, 3, 3)) / 2
V3 = R.standard_normal((5, 3))
U3 = R.standard_normal((5, 3))
V2 = R.standard_normal((5, 2))
INTS = R.integers(-9, 10, (4, 5))
FLAT = R.integers(0, 20, (3, 4))
I4, J5 = R.integers(0, 4, 6), R.integers(0, 5, 6)
CHOICE = R.integers(0, 3, (4, 5))

# name -> (function of Arrays, inputs); "~" in a name: compared to a tolerance (sums of products)
CASES = {
    "atleast_1d_0d": (np.atleast_1d, [S]), "atleast_1d_many": (lambda x, y: np.atleast_1d(x, y), [S, A]),
    "atleast_2d_0d": (np.atleast_2d, [S]), "atleast_2d_1d": (np.atleast_2d, [V]),
    "atleast_2d_3d": (np.atleast_2d, [A3]),
    "atleast_3d_0d": (np.atleast_3d, [S]), "atleast_3d_1d": (np.atleast_3d, [V]),
    "atleast_3d_many": (lambda x, y, z: np.atleast_3d(x, y, z), [V, A, A3]),
    "vstack_1d": (lambda x, y: np.vstack([x, y]), [V, V * 2]),
    "vstack_2d": (lambda x, y: np.vstack((x, y)), [A, A[:2]]),
    "vstack_dtype": (lambda x, y: np.vstack([x, y], dtype=np.float32), [V, V]),
    "hstack_unsafe": (lambda x, y: np.hstack([x, y], dtype=np.int32, casting="unsafe"), [V * 9, W * 9]),
    "vstack_promote": (lambda x, y: np.vstack([x, y]), [INTS, A.astype(np.float32)]),
    "hstack_1d": (lambda x, y: np.hstack([x, y]), [V, W]), "hstack_2d": (lambda x, y: np.hstack([x, y]), [A, A[:, :2]]),
    "hstack_0d": (lambda x, y: np.hstack([x, y]), [S, S]),
    "dstack": (lambda x, y: np.dstack([x, y]), [A, A]), "dstack_1d": (lambda x, y: np.dstack([x, y]), [V, V]),
    "column_stack": (lambda x, y: np.column_stack([x, y]), [V, V]),
    "column_stack_2d": (lambda x, y: np.column_stack([x, y]), [A, V]),
    "array_split": (lambda x: np.array_split(x, 3), [np.arange(10.0)]),
    "array_split_axis": (lambda x: np.array_split(x, 3, axis=1), [A]),
    "array_split_idx": (lambda x: np.array_split(x, [1, 3]), [A]),
    "array_split_past": (lambda x: np.array_split(x, [-2, 9], axis=1), [A]),
    "array_split_many": (lambda x: np.array_split(x, 6), [V]),
    "hsplit": (lambda x: np.hsplit(x, [2]), [A]), "hsplit_1d": (lambda x: np.hsplit(x, 2), [V]),
    "vsplit": (lambda x: np.vsplit(x, 2), [A]), "dsplit": (lambda x: np.dsplit(x, [1, 3]), [A3]),
    "rot90": (np.rot90, [A]), "rot90_2": (lambda x: np.rot90(x, 2), [A]), "rot90_3": (lambda x: np.rot90(x, 3), [A]),
    "rot90_-1": (lambda x: np.rot90(x, -1), [A]), "rot90_0": (lambda x: np.rot90(x, 4), [A]),
    "rot90_axes": (lambda x: np.rot90(x, 1, axes=(1, 2)), [A3]),
    "rot90_axes_r": (lambda x: np.rot90(x, 1, (2, 0)), [A3]),
    "broadcast_arrays": (np.broadcast_arrays, [A, V[:, None], S]),
    "append": (np.append, [A, W]), "append_axis": (lambda x, y: np.append(x, y, axis=0), [A, A[:1]]),
    "append_promote": (np.append, [INTS, V.astype(np.float32)]),
    "insert": (lambda x: np.insert(x, 2, 9.5), [V]), "insert_cast": (lambda x: np.insert(x, 1, 7.9), [INTS]),
    "insert_traced_values": (lambda x, v: np.insert(x, 1, v, axis=0), [A, W]),
    "insert_many": (lambda x: np.insert(x, [1, 3, 1], 0.5, axis=1), [A]),
    "insert_values": (lambda x, v: np.insert(x, [4, -1, 0], v, axis=1), [A, V[:3]]),
    "insert_slice": (lambda x: np.insert(x, slice(0, 5, 2), 7.0, axis=1), [A]),
    "insert_block": (lambda x, v: np.insert(x, [2], v, axis=1), [A, V[:, None]]),
    "insert_scalar_obj": (lambda x, v: np.insert(x, 2, v, axis=1), [A, V]),
    "insert_flat": (lambda x: np.insert(x, 19, -1.0), [A]),
    "delete": (lambda x: np.delete(x, 1), [V]), "delete_flat": (lambda x: np.delete(x, [0, 7, -1]), [A]),
    "delete_axis": (lambda x: np.delete(x, [0, 2], axis=1), [A]),
    "delete_slice": (lambda x: np.delete(x, slice(None, None, 2), axis=0), [A]),
    "delete_mask": (lambda x: np.delete(x, np.array([True, False, False, True, False]), axis=-1), [A3]),
    "resize": (lambda x: np.resize(x, (3, 5)), [V]), "resize_int": (lambda x: np.resize(x, 7), [A]),
    "resize_shrink": (lambda x: np.resize(x, (2, 2)), [INTS]), "resize_empty": (lambda x: np.resize(x, (0, 3)), [A]),
    "unravel_index": (lambda i: np.unravel_index(i, (4, 5)), [FLAT]),
    "unravel_index_F": (lambda i: np.unravel_index(i, (5, 2, 2), order="F"), [FLAT]),
    "unravel_index_i32": (lambda i: np.unravel_index(i, (20,)), [FLAT.astype(np.int32)]),
    "ravel_multi_index": (lambda i, j: np.ravel_multi_index((i, j), (4, 5)), [I4, J5]),
    "ravel_multi_index_F": (lambda i, j: np.ravel_multi_index((i, j), (4, 5), order="F"), [I4, J5]),
    "ravel_multi_index_wrap": (lambda i, j: np.ravel_multi_index((i, j), (3, 2), mode="wrap"), [I4 - 2, J5]),
    "ravel_multi_index_clip": (lambda i, j: np.ravel_multi_index((i, j), (3, 2), mode=("clip", "wrap")), [I4 - 2, J5]),
    "ravel_multi_index_b": (lambda i, j: np.ravel_multi_index((i[:, None], j[:2]), (4, 5)), [I4, J5]),
    "meshgrid": (np.meshgrid, [V, W]), "meshgrid_ij": (lambda x, y: np.meshgrid(x, y, indexing="ij"), [V, W]),
    "meshgrid_sparse": (lambda x, y, z: np.meshgrid(x, y, z, sparse=True), [V, W, K]),
    "meshgrid_3": (lambda x, y, z: np.meshgrid(x, y, z), [V, W, K]), "meshgrid_1": (np.meshgrid, [A]),
    "~tensordot": (lambda x, y: np.tensordot(x, y, axes=1), [A3, B]),
    "~tensordot_2": (np.tensordot, [A3, A]),
    "~tensordot_pairs": (lambda x, y: np.tensordot(x, y, axes=([0, 2], [1, 0])), [A3, R.standard_normal((5, 2, 3))]),
    "~tensordot_0": (lambda x, y: np.tensordot(x, y, axes=0), [V, W]),
    "~tensordot_int": (lambda x, y: np.tensordot(x, y, axes=([1], [0])), [INTS, B.astype(np.float32)]),
    "~inner": (np.inner, [A, A]), "~inner_1d": (np.inner, [V, V]), "~inner_0d": (np.inner, [S, A]),
    "~inner_3d": (np.inner, [A3, A]), "~vdot": (np.vdot, [A, A * 2]), "~vdot_int": (np.vdot, [INTS, INTS]),
    "~kron": (np.kron, [A, B]), "~kron_1d_2d": (np.kron, [V, A]), "~kron_0d": (np.kron, [A, S]),
    "~kron_int": (np.kron, [INTS[:2, :2], C.astype(np.float32)]),
    "~cross": (np.cross, [V3, U3]), "~cross_broadcast": (np.cross, [V3, U3[0]]),
    "~cross_axis": (lambda x, y: np.cross(x, y, axis=0), [V3.T, U3.T]),
    "~cross_axes": (lambda x, y: np.cross(x, y, axisa=0, axisc=0), [V3.T, U3]),
    "~cross_2": (np.cross, [V2, V3[:, :2]]), "~cross_2_3": (np.cross, [V2, U3]), "~cross_3_2": (np.cross, [V3, V2]),
    "~cross_int": (np.cross, [INTS[:, :3], V3[:4].astype(np.float32)]),
    "~multi_dot": (lambda x, y, z: np.linalg.multi_dot([x, y, z]), [A, B, C]),
    "~multi_dot_3b": (lambda x, y, z: np.linalg.multi_dot([x, y, z]), [C.T, B.T, A.T]),
    "~multi_dot_4": (lambda x, y, z, t: np.linalg.multi_dot([x, y, z, t]), [A, B, C, D]),
    "~multi_dot_1d": (lambda x, y, z, t: np.linalg.multi_dot([x, y, z, t]), [V, A, B, C[:, 0]]),
    "~multi_dot_1d_first": (lambda x, y, z: np.linalg.multi_dot([x, y, z]), [V, A, B]),
    "~multi_dot_2": (lambda x, y: np.linalg.multi_dot([x, y]), [A, B]),
    "~matrix_power_0": (lambda x: np.linalg.matrix_power(x, 0), [SQ]),
    "~matrix_power_1": (lambda x: np.linalg.matrix_power(x, 1), [SQ]),
    "~matrix_power_3": (lambda x: np.linalg.matrix_power(x, 3), [SQ]),
    "~matrix_power_7": (lambda x: np.linalg.matrix_power(x, 7), [SQ]),
    "~matrix_power_8": (lambda x: np.linalg.matrix_power(x, 8), [SQ3]),
    "~matrix_power_int": (lambda x: np.linalg.matrix_power(x, 5), [INTS[:3, :3] % 3]),
    "~trapezoid": (lambda y: np.trapezoid(y), [A]), "~trapezoid_dx": (lambda y: np.trapezoid(y, dx=0.5, axis=0), [A]),
    "~trapezoid_x": (lambda y, x: np.trapezoid(y, x), [A, np.sort(W)]),
    "~trapezoid_x0": (lambda y, x: np.trapezoid(y, x, axis=0), [A, np.sort(V)]),
    "~trapezoid_x2d": (lambda y, x: np.trapezoid(y, x, axis=1), [A, np.cumsum(np.abs(A), axis=1)]),
    "~trapezoid_int": (np.trapezoid, [INTS]), "~trapezoid_f32": (np.trapezoid, [A.astype(np.float32)]),
    "~polyval": (np.polyval, [K, A]), "~polyval_int": (np.polyval, [np.array([1, -2, 3]), INTS]),
    "~polyval_f32": (np.polyval, [K, A.astype(np.float32)]), "~polyval_2d_p": (np.polyval, [C[:, :4].T, K]),
    "~convolve": (np.convolve, [W, K]), "~convolve_same": (lambda a, v: np.convolve(a, v, "same"), [W, K]),
    "~convolve_valid": (lambda a, v: np.convolve(a, v, mode="valid"), [W, K]),
    "~convolve_swap": (lambda a, v: np.convolve(a, v, "same"), [K, W]),
    "~convolve_even": (lambda a, v: np.convolve(a, v, "same"), [W, V]),
    "~convolve_int": (np.convolve, [INTS[0], INTS[1, :3]]), "~convolve_mixed": (np.convolve, [INTS[0], K]),
    "~convolve_0d": (np.convolve, [W, S]),
    "~correlate": (np.correlate, [W, K]), "~correlate_full": (lambda a, v: np.correlate(a, v, "full"), [W, K]),
    "~correlate_same": (lambda a, v: np.correlate(a, v, "same"), [W, V]),
    "~correlate_swap": (lambda a, v: np.correlate(a, v, "full"), [K, W]),
    "~correlate_swap_same": (lambda a, v: np.correlate(a, v, "same"), [K, W]),
    "~correlate_swap_valid": (np.correlate, [K, W]),
    "select": (lambda x: np.select([x > 0.5, x < -0.5], [x, x * 2], -1.0), [A]),
    "select_f32": (lambda x: np.select([x > 0], [x], 1.5), [A.astype(np.float32)]),
    "select_broadcast": (lambda x, v: np.select([x > 0, v[:, None] > 0], [v[:, None], 3]), [A, V]),
    "select_int": (lambda x, i: np.select([x > 0], [i]), [A, INTS]),
    "choose": (lambda i, x: np.choose(i, [x, -x, x * 3]), [CHOICE, A]),
    "choose_array": (lambda i, x: np.choose(i, x), [CHOICE[0] % 2, A3[:, 0]]),
    "choose_broadcast": (lambda i, x: np.choose(i, [x, 0.5]), [CHOICE % 2, V[:, None]]),
    "choose_wrap": (lambda i, x: np.choose(i, [x, -x], mode="wrap"), [CHOICE - 1, A]),
    "choose_clip": (lambda i, x: np.choose(i, [x, -x], mode="clip"), [CHOICE * 2 - 2, A]),
}
if hasattr(np, "row_stack"):
    CASES["row_stack"] = (lambda x, y: np.row_stack([x, y]), [V, V])
if hasattr(np, "trapz"):
    CASES["~trapz"] = (lambda y: np.trapz(y), [A])


def _leaves(r):
    return [v for x in r for v in _leaves(x)] if isinstance(r, (list, tuple)) else [r]


def _cross_2(x, y):
    """numpy's cross with 2-vectors before numpy 2.5 (which refuses them;
    xcs keeps them): a missing z is 0, and two 2-vectors give the z alone."""
    pad = lambda a: np.concatenate([a, np.zeros(a.shape[:-1] + (1,), a.dtype)], -1) if a.shape[-1] == 2 else a
    c = np.cross(pad(x), pad(y))
    return c[..., 2] if x.shape[-1] == 2 and y.shape[-1] == 2 else c


REFERENCES = {"~cross_2": _cross_2, "~cross_2_3": _cross_2, "~cross_3_2": _cross_2}


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy(name, mode):
    f, args = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # row_stack, trapz
        want = REFERENCES.get(name, f)(*args)
        got = f(*[xcs.asarray(x) for x in args]) if mode == "eager" else jit(f)(*args)
    assert type(got) is type(want) or not isinstance(want, (list, tuple))
    got, want = _leaves(got), _leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert isinstance(g, xcs.Array)
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        if name.startswith("~") and w.dtype.kind == "f":
            tol = 1e-12 if w.dtype == np.float64 else 1e-6
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
        else:
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_convolve_correlate_every_length(mode, rng):
    """Every pair of lengths 1..6 (either longer), against numpy to rounding; one jit per mode."""
    for n in range(1, 7):
        for m in range(1, 7):
            a, v = rng.standard_normal(n), rng.standard_normal(m)
            for f in (np.convolve, np.correlate):
                got, want = np.asarray(f(xcs.asarray(a), v, mode)), f(a, v, mode)
                assert got.shape == want.shape
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    i = rng.integers(-3, 4, 7)
    np.testing.assert_array_equal(np.asarray(jit(lambda x, y: np.correlate(x, y, mode))(i, i[:4])),
                                  np.correlate(i, i[:4], mode))


def test_insert_delete_random_positions(rng):
    a = rng.standard_normal((5, 6))
    for _ in range(20):
        ax = int(rng.integers(0, 2))
        pos = rng.integers(-a.shape[ax], a.shape[ax] + 1, int(rng.integers(0, 5))).tolist()
        np.testing.assert_array_equal(np.asarray(np.insert(xcs.asarray(a), pos, -1.0, axis=ax)),
                                      np.insert(a, pos, -1.0, axis=ax))
        gone = sorted({p % a.shape[ax] for p in pos if p < a.shape[ax]})
        np.testing.assert_array_equal(np.asarray(np.delete(xcs.asarray(a), gone, axis=ax)),
                                      np.delete(a, gone, axis=ax))


K5 = np.array([0.5, -1.0, 2.0])
LINEAR = {
    "vstack": lambda x: np.vstack([x, x[:2] * 2]), "hstack": lambda x: np.hstack([x[0], x[1]]),
    "dstack": lambda x: np.dstack([x, x]), "column_stack": lambda x: np.column_stack([x[0], x[1]]),
    "array_split": lambda x: np.array_split(x, 3, axis=1)[1], "rot90": lambda x: np.rot90(x, 3),
    "broadcast_arrays": lambda x: np.broadcast_arrays(x[:, :1], x[0])[0] + np.broadcast_arrays(x[:, :1], x[0])[1],
    "append": lambda x: np.append(x, x[1]), "insert": lambda x: np.insert(x[1:], [0, 2, 2], x[0, :3], axis=1),
    "insert_block": lambda x: np.insert(x[:, 1:], 1, x[:, 0], axis=1),
    "delete": lambda x: np.delete(x, [1, 3], axis=1), "resize": lambda x: np.resize(x, (7, 4)),
    "meshgrid": lambda x: np.meshgrid(x[0], x[1, :2])[0] * 2 + np.meshgrid(x[0], x[1, :2])[1],
    "tensordot": lambda x: np.tensordot(x, A3, axes=([0, 1], [1, 2])), "inner": lambda x: np.inner(x, A),
    "vdot": lambda x: np.vdot(x, A), "kron": lambda x: np.kron(x, K5), "cross": lambda x: np.cross(x[:, :3], K5),
    "multi_dot": lambda x: np.linalg.multi_dot([B.T, x.T, A, B]),
    "trapezoid": lambda x: np.trapezoid(x, W, axis=1), "polyval": lambda x: np.polyval(x[0], V),
    "convolve": lambda x: np.convolve(x[0], K5, "same"), "correlate": lambda x: np.correlate(K5, x[1], "full"),
    "select": lambda x: np.select([A > 0, A < -1], [x, x * 2], 0.0),
    "choose": lambda x: np.choose(CHOICE, [x, -x, x * 3]),
}


@pytest.mark.parametrize("name", list(LINEAR))
def test_gradients_of_the_linear_ones(name, rng):
    f = LINEAR[name]
    x = rng.standard_normal((4, 5))
    w = rng.standard_normal(np.shape(f(x)))
    g = np.asarray(grad(lambda x: (f(x) * w).sum())(x))
    ref = np.array([(f(np.eye(x.size)[k].reshape(x.shape)) * w).sum() for k in range(x.size)]).reshape(x.shape)
    np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-10)


BILINEAR = {
    "tensordot": lambda x: np.tensordot(x[:2], x[2:], axes=([0], [0])), "inner": lambda x: np.inner(x[:2], x[2:]),
    "vdot": lambda x: np.vdot(x[:2], x[2:]), "kron": lambda x: np.kron(x[0], x[1:3]),
    "cross": lambda x: np.cross(x[:, :3], x[:, 2:]), "convolve": lambda x: np.convolve(x[0], x[1, :3], "same"),
    "correlate": lambda x: np.correlate(x[0, :2], x[1], "full"), "polyval": lambda x: np.polyval(x[0], x[1:]),
    "matrix_power": lambda x: np.linalg.matrix_power(x[:, :4] / 2, 5),
    "multi_dot": lambda x: np.linalg.multi_dot([x[1:, 0], x[1:], x.T, x[:, 1]]),
}


@pytest.mark.parametrize("name", list(BILINEAR))
def test_gradients_of_the_products(name, rng):
    """Against central differences (exact but for rounding on bilinear functions)."""
    f = BILINEAR[name]
    x = rng.standard_normal((4, 5))
    w = rng.standard_normal(np.shape(f(x)))
    g = np.asarray(grad(lambda x: (f(x) * w).sum())(x))
    eps, ref = 1e-6, np.zeros(x.size)
    for k in range(x.size):
        e = np.eye(x.size)[k].reshape(x.shape) * eps
        ref[k] = ((f(x + e) * w).sum() - (f(x - e) * w).sum()) / (2 * eps)
    np.testing.assert_allclose(g, ref.reshape(x.shape), rtol=1e-6, atol=1e-6)


def test_under_vmap(rng):
    a = rng.standard_normal((3, 6))
    k = rng.standard_normal(3)
    np.testing.assert_allclose(np.asarray(vmap(lambda v: np.convolve(v, k, "same"))(a)),
                               [np.convolve(r, k, "same") for r in a], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(vmap(np.correlate, in_axes=(0, None))(a, k)),
                               [np.correlate(r, k) for r in a], rtol=1e-12, atol=1e-14)
    b = rng.standard_normal((3, 2, 4))
    np.testing.assert_array_equal(np.asarray(vmap(np.rot90)(b)), np.rot90(b, axes=(1, 2)))
    np.testing.assert_array_equal(np.asarray(vmap(lambda v: np.insert(v, [1, 3], -1.0))(a)),
                                  np.insert(a, [1, 3], -1.0, axis=1))
    np.testing.assert_array_equal(np.asarray(vmap(lambda v: np.vstack([v, v]))(a)), np.stack([a, a], axis=1))
    c, d = rng.standard_normal((3, 5, 3)), rng.standard_normal((3, 5, 3))
    np.testing.assert_allclose(np.asarray(vmap(np.cross)(c, d)), np.cross(c, d), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(vmap(lambda m: np.tensordot(m, m, axes=([0], [0])))(b)),
                               np.einsum("bij,bik->bjk", b, b), rtol=1e-12, atol=1e-14)
    i = rng.integers(0, 12, (3, 4))
    got = vmap(lambda j: np.unravel_index(j, (3, 4)))(i)
    for g, w in zip(got, np.unravel_index(i, (3, 4))):
        np.testing.assert_array_equal(np.asarray(g), w)


def test_static_arguments_only_else_numpy(rng):
    """Traced positions, a negative matrix power, boolean cross products: numpy's own
    function on concrete arrays, XCSTracerError under jit."""
    a = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    where_ = np.array([1, 2])
    np.testing.assert_array_equal(np.asarray(np.insert(xcs.asarray(a[0]), xcs.asarray(where_), 9.0)),
                                  np.insert(a[0], where_, 9.0))
    np.testing.assert_array_equal(np.asarray(np.delete(xcs.asarray(a[0]), xcs.asarray(where_))),
                                  np.delete(a[0], where_))
    np.testing.assert_array_equal(np.asarray(np.array_split(xcs.asarray(a[0]), xcs.asarray(where_))[1]),
                                  np.array_split(a[0], where_)[1])
    np.testing.assert_allclose(np.asarray(np.linalg.matrix_power(xcs.asarray(a), -2)), np.linalg.matrix_power(a, -2),
                               rtol=1e-12)
    with pytest.raises(TypeError, match="boolean subtract"):
        np.cross(xcs.asarray(np.ones(3, bool)), np.ones(3, bool))
    with pytest.raises(xcs.XCSTracerError):
        jit(lambda x, i: np.insert(x, i, 9.0))(a[0], where_)
    with pytest.raises(xcs.XCSTracerError):
        jit(lambda x, i: np.delete(x, i))(a[0], where_)
    np.testing.assert_allclose(np.asarray(jit(lambda x: np.linalg.matrix_power(x, -3))(a)),
                               np.linalg.matrix_power(a, -3), rtol=1e-12)  # of the inverse, under jit too
    # positions known while tracing are fine
    np.testing.assert_array_equal(np.asarray(jit(lambda x: np.delete(x, where_))(a[0])), np.delete(a[0], where_))


def test_index_checks_on_concrete_indices():
    """numpy's range checks on concrete indices; under jit in-range indices compute."""
    with pytest.raises(xcs.XCSValueError, match="out of bounds"):
        np.unravel_index(xcs.asarray(np.array([3, 20])), (4, 5))
    with pytest.raises(xcs.XCSValueError, match="out of bounds"):
        np.unravel_index(xcs.asarray(np.array([-1])), (4, 5))
    with pytest.raises(xcs.XCSTypeError, match="only int indices"):
        np.unravel_index(xcs.asarray(np.array([1.0])), (4, 5))
    with pytest.raises(xcs.XCSValueError, match="invalid entry"):
        np.ravel_multi_index((xcs.asarray(np.array([4])), np.array([0])), (4, 5))
    with pytest.raises(xcs.XCSValueError, match="invalid entry"):
        np.choose(xcs.asarray(np.array([0, 3])), [np.ones(2), np.zeros(2)])
    with pytest.raises(xcs.XCSValueError, match="clipmode"):
        np.ravel_multi_index((xcs.asarray(np.array([1])), np.array([0])), (4, 5), mode="bad")
    i, j = np.array([3, 0, 2]), np.array([4, 1, 0])
    np.testing.assert_array_equal(np.asarray(jit(lambda a, b: np.ravel_multi_index((a, b), (4, 5)))(i, j)),
                                  np.ravel_multi_index((i, j), (4, 5)))
    np.testing.assert_array_equal(np.asarray(jit(lambda k: np.choose(k, [i, j]))(np.array([1, 0, 1]))),
                                  np.choose(np.array([1, 0, 1]), [i, j]))


def test_errors():
    xnp = xcs.numpy
    a = np.ones((4, 6))
    cases = [
        (xcs.XCSValueError, "number sections", lambda: xnp.array_split(a, 0)),
        (xcs.XCSValueError, "equal division", lambda: xnp.vsplit(a, 3)),
        (xcs.XCSValueError, "1 or more", lambda: xnp.hsplit(np.ones(()), 2)),
        (xcs.XCSValueError, "2 or more", lambda: xnp.vsplit(np.ones(3), 3)),
        (xcs.XCSValueError, "3 or more", lambda: xnp.dsplit(a, 3)),
        (xcs.XCSValueError, "Axes must be different", lambda: xnp.rot90(a, 1, (0, 0))),
        (xcs.XCSValueError, "len\\(axes\\)", lambda: xnp.rot90(a, 1, (0,))),
        (xcs.XCSValueError, "broadcast", lambda: xnp.broadcast_arrays(a, np.ones(4))),
        (IndexError, "out of bounds", lambda: xnp.insert(a[0], 9, 1.0)),
        (IndexError, "out of bounds", lambda: xnp.delete(a[0], 6)),
        (xcs.XCSValueError, "non-negative", lambda: xnp.resize(a, (-1, 2))),
        (xcs.XCSValueError, "indexing", lambda: xnp.meshgrid(a[0], indexing="yx")),
        (xcs.XCSValueError, "shape-mismatch", lambda: xnp.tensordot(a, a, axes=1)),
        (xcs.XCSValueError, "dimension must be 2 or 3", lambda: xnp.cross(a, a)),
        (xcs.XCSValueError, "at least two arrays", lambda: xnp.linalg.multi_dot([a])),
        (xcs.XCSValueError, "two-dimensional", lambda: xnp.linalg.multi_dot([a, a.T, np.ones((6, 2, 2))])),
        (xcs.XCSValueError, "square", lambda: xnp.linalg.matrix_power(a, 2)),
        (xcs.XCSTypeError, "integer", lambda: xnp.linalg.matrix_power(a[:4, :4], 1.5)),
        (xcs.XCSValueError, "cannot be empty", lambda: xnp.convolve(np.ones(0), a[0])),
        (xcs.XCSValueError, "cannot be empty", lambda: xnp.correlate(a[0], np.ones(0))),
        (xcs.XCSValueError, "mode must be", lambda: xnp.correlate(a[0], a[0], "wide")),
        (xcs.XCSValueError, "same length", lambda: xnp.select([a > 0], [a, a])),
        (xcs.XCSTypeError, "should be boolean", lambda: xnp.select([a], [a])),
        (xcs.XCSTypeError, "same_kind", lambda: xnp.vstack([a, a], dtype=np.int64)),
        (xcs.XCSTypeError, "'no'", lambda: xnp.hstack([a, a.astype(np.float32)], casting="no")),
        (xcs.XCSValueError, "casting must be", lambda: xnp.hstack([a, a], casting="any")),
    ]
    for exc, msg, f in cases:
        with pytest.raises(exc, match=msg):
            f()
    # numpy raises the same kinds of errors
    with pytest.raises(ValueError):
        np.vsplit(a, 3)
    with pytest.raises(TypeError):
        np.vstack([a, a], dtype=np.int64)


def test_linalg_namespace_and_modes():
    assert xcs.numpy.linalg.multi_dot is not None and xcs.numpy.linalg.matrix_power is not None
    a, v = np.arange(6.0), np.array([1.0, 2.0])
    # numpy's mode names, or (before numpy 2.5, which refuses them; xcs keeps them) 0 / 1 / 2
    for mode, name in (("full", "full"), (1, "same"), (0, "valid")):
        np.testing.assert_allclose(np.asarray(xcs.numpy.correlate(a, v, mode)), np.correlate(a, v, name))
    for mode, name in (("f", "full"), ("SAME", "same")):  # deprecated: the first letter, in any case
        with pytest.warns(DeprecationWarning, match="inexact matches"):
            np.testing.assert_allclose(np.asarray(np.correlate(xcs.asarray(a), v, mode)), np.correlate(a, v, name))
    # copy= is accepted by meshgrid, and numpy's dispatch reaches xcs for all of these
    x = xcs.asarray(a)
    assert all(isinstance(m, xcs.Array) for m in np.meshgrid(x, v, copy=False))
    assert isinstance(np.atleast_1d(x), xcs.Array) and isinstance(np.atleast_2d(x, x), tuple)
