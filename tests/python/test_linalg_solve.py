"""numpy.linalg's solve, inv, cholesky, slogdet, det, eigh, eigvalsh, svd,
svdvals, pinv, matrix_rank, tensorsolve, tensorinv and the spectral / nuclear norms on xcs (ops of
kind LINALG: LU with partial pivoting, the Cholesky factor from the lower
triangle, Jacobi rotations for eigh and svd): numpy's values and dtypes
eagerly and under jit, over batches that broadcast (eigen- and singular
vectors up to sign: checked through the decompositions they make);
gradients against finite differences; vmap against a loop; numpy's errors
(singular matrices, not positive definite, shapes)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import fd_grad

import ember.xcs as xcs
from ember.xcs import grad, jit, vmap


def well_conditioned(rng, *shape):
    """Random square matrices with a dominant diagonal (condition ~ a few)."""
    n = shape[-1]
    return rng.standard_normal(shape) + n * np.eye(n)


def spd(rng, *shape):
    x = rng.standard_normal(shape)
    return x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])


CASES = {
    "solve": (np.linalg.solve, lambda r: (well_conditioned(r, 5, 5), r.standard_normal((5, 3)))),
    "solve_vec": (np.linalg.solve, lambda r: (well_conditioned(r, 4, 4), r.standard_normal(4))),
    "solve_batch": (np.linalg.solve, lambda r: (well_conditioned(r, 2, 3, 4, 4), r.standard_normal((3, 4, 2)))),
    "solve_pivots": (np.linalg.solve, lambda r: (r.standard_normal((6, 6)), r.standard_normal((6, 2)))),
    "inv": (np.linalg.inv, lambda r: (well_conditioned(r, 3, 5, 5),)),
    "cholesky": (np.linalg.cholesky, lambda r: (spd(r, 2, 6, 6),)),
    "cholesky_lower_only": (np.linalg.cholesky, lambda r: (np.tril(spd(r, 5, 5)) + np.triu(r.standard_normal((5, 5)), 1),)),
    "slogdet": (lambda a: np.linalg.slogdet(a)[1], lambda r: (r.standard_normal((4, 5, 5)),)),
    "slogdet_sign": (lambda a: np.linalg.slogdet(a).sign, lambda r: (r.standard_normal((4, 5, 5)),)),
    "det": (np.linalg.det, lambda r: (r.standard_normal((3, 4, 4)),)),
    "det_int": (np.linalg.det, lambda r: (r.integers(-3, 4, (4, 4)),)),
    "solve_f32": (np.linalg.solve, lambda r: (well_conditioned(r, 5, 5).astype(np.float32),
                                              r.standard_normal((5, 2)).astype(np.float32))),
    "empty_batch": (np.linalg.inv, lambda r: (np.zeros((0, 3, 3)),)),
    # 64 rows or more: LAPACK's where the BLAS build has it
    "solve_big": (np.linalg.solve, lambda r: (well_conditioned(r, 2, 80, 80), r.standard_normal((80, 3)))),
    "solve_big_f32": (np.linalg.solve, lambda r: (well_conditioned(r, 70, 70).astype(np.float32),
                                                  r.standard_normal((70, 70)).astype(np.float32))),
    "cholesky_big": (np.linalg.cholesky, lambda r: (spd(r, 3, 70, 70),)),
    # a batch of 8 or more: xcs's loops up to 256 rows (lapack.h)
    "solve_big_batch": (np.linalg.solve, lambda r: (well_conditioned(r, 8, 70, 70), r.standard_normal((8, 70, 2)))),
    "slogdet_big_batch": (lambda a: np.linalg.slogdet(a)[1], lambda r: (well_conditioned(r, 9, 66, 66),)),
    "eigvalsh_lapack": (np.linalg.eigvalsh, lambda r: (spd(r, 3, 9, 9),)),  # from 8 rows: syevd
    "svdvals_lapack": (lambda a: np.linalg.svd(a, compute_uv=False), lambda r: (r.standard_normal((2, 30, 25)),)),
    "cholesky_big_f32": (np.linalg.cholesky, lambda r: (spd(r, 65, 65).astype(np.float32),)),
    "slogdet_big": (lambda a: np.linalg.slogdet(a)[1], lambda r: (r.standard_normal((2, 66, 66)),)),
    # LA_THREADED_MIN (512) or more: LAPACK on OpenBLAS's threads
    "solve_threaded": (np.linalg.solve, lambda r: (well_conditioned(r, 520, 520), r.standard_normal((520, 5)))),
    "eigvalsh_threaded": (np.linalg.eigvalsh, lambda r: (spd(r, 520, 520) - 520 * np.eye(520),)),
    "svdvals_threaded": (lambda a: np.linalg.svd(a, compute_uv=False), lambda r: (r.standard_normal((530, 520)),)),
    "slogdet_big_sign": (lambda a: np.linalg.slogdet(a).sign, lambda r: (r.standard_normal((4, 66, 66)),)),
    "eigvalsh": (np.linalg.eigvalsh, lambda r: (spd(r, 3, 6, 6) - 8 * np.eye(6),)),
    "eigvalsh_upper": (lambda a: np.linalg.eigvalsh(a, UPLO="U"), lambda r: (np.triu(spd(r, 5, 5)) + np.tril(r.standard_normal((5, 5)), -1),)),
    "svdvals_wide": (lambda a: np.linalg.svd(a, compute_uv=False), lambda r: (r.standard_normal((2, 3, 7)),)),
    "svdvals_tall_f32": (lambda a: np.linalg.svd(a, compute_uv=False), lambda r: (r.standard_normal((9, 4)).astype(np.float32),)),
    # the values alone (ops EIGVALSH, SVDVALS): Jacobi below 4 / 12 rows, LAPACK's jobz='N' from there
    "eigvalsh_jacobi": (np.linalg.eigvalsh, lambda r: (spd(r, 4, 3, 3) - 4 * np.eye(3),)),
    "eigvalsh_jacobi_f32": (np.linalg.eigvalsh, lambda r: ((spd(r, 2, 2) - 2 * np.eye(2)).astype(np.float32),)),
    "eigvalsh_lapack_f32": (np.linalg.eigvalsh, lambda r: ((spd(r, 3, 4, 4) - 5 * np.eye(4)).astype(np.float32),)),
    "svdvals_lapack_f32": (np.linalg.svdvals, lambda r: (r.standard_normal((2, 13, 17)).astype(np.float32),)),
    "svdvals_edge": (np.linalg.svdvals, lambda r: (r.standard_normal((3, 12, 11)),)),
    "svdvals_empty": (np.linalg.svdvals, lambda r: (np.zeros((3, 0, 4)),)),
    "eigvalsh_empty": (np.linalg.eigvalsh, lambda r: (np.zeros((2, 0, 0)),)),
    "pinv": (np.linalg.pinv, lambda r: (r.standard_normal((2, 4, 6)),)),
    "pinv_rank_deficient": (np.linalg.pinv, lambda r: (r.standard_normal((6, 2)) @ r.standard_normal((2, 5)),)),
    "matrix_rank": (np.linalg.matrix_rank, lambda r: (np.stack([r.standard_normal((6, k)) @ r.standard_normal((k, 5)) for k in (1, 3, 5)]),)),
    "norm_2": (lambda a: np.linalg.norm(a, 2, axis=(1, 2)), lambda r: (r.standard_normal((3, 4, 5)),)),
    "norm_-2": (lambda a: np.linalg.norm(a, -2), lambda r: (r.standard_normal((5, 4)),)),
    "norm_nuc_keepdims": (lambda a: np.linalg.norm(a, "nuc", axis=(0, 2), keepdims=True), lambda r: (r.standard_normal((4, 2, 6)),)),
    # QR: Householder with LAPACK's signs, so numpy's Q and R themselves
    "qr_q_tall": (lambda a: np.linalg.qr(a)[0], lambda r: (r.standard_normal((2, 6, 4)),)),
    "qr_r_tall": (lambda a: np.linalg.qr(a).R, lambda r: (r.standard_normal((6, 4)),)),
    "qr_q_wide": (lambda a: np.linalg.qr(a).Q, lambda r: (r.standard_normal((3, 5)),)),
    "qr_r_wide": (lambda a: np.linalg.qr(a, mode="r"), lambda r: (r.standard_normal((3, 5)),)),
    "qr_complete_wide": (lambda a: np.linalg.qr(a, mode="complete")[0], lambda r: (r.standard_normal((3, 5)),)),
    "qr_f32": (lambda a: np.linalg.qr(a)[1], lambda r: (r.standard_normal((5, 5)).astype(np.float32),)),
    "qr_big_q": (lambda a: np.linalg.qr(a)[0], lambda r: (r.standard_normal((2, 90, 70)),)),  # LAPACK's
    "qr_big_r_wide": (lambda a: np.linalg.qr(a)[1], lambda r: (r.standard_normal((66, 100)),)),
    # numpy 2's array-API names in numpy.linalg
    "cond": (np.linalg.cond, lambda r: (r.standard_normal((3, 4, 4)),)),
    "cond_fro": (lambda a: np.linalg.cond(a, "fro"), lambda r: (r.standard_normal((4, 4)),)),
    "cond_-2": (lambda a: np.linalg.cond(a, -2), lambda r: (r.standard_normal((4, 4)),)),
    "matrix_norm": (lambda a: np.linalg.matrix_norm(a, ord=2, keepdims=True), lambda r: (r.standard_normal((3, 4, 5)),)),
    "vector_norm": (lambda a: np.linalg.vector_norm(a, axis=(0, 2), keepdims=True, ord=1),
                    lambda r: (r.standard_normal((3, 4, 5)),)),
    "vector_norm_all": (np.linalg.vector_norm, lambda r: (r.standard_normal((3, 4)),)),
    "vecdot": (np.linalg.vecdot, lambda r: (r.standard_normal((3, 4)), r.standard_normal((3, 4)))),
    "linalg_trace": (lambda a: np.linalg.trace(a, offset=1), lambda r: (r.standard_normal((2, 4, 4)),)),
    "linalg_diagonal": (np.linalg.diagonal, lambda r: (r.standard_normal((2, 3, 4)),)),
    "matrix_transpose": (np.linalg.matrix_transpose, lambda r: (r.standard_normal((2, 3, 4)),)),
    "lstsq_x": (lambda a, b: np.linalg.lstsq(a, b)[0], lambda r: (r.standard_normal((7, 3)), r.standard_normal((7, 2)))),
    "lstsq_resid": (lambda a, b: np.linalg.lstsq(a, b)[1], lambda r: (r.standard_normal((7, 3)), r.standard_normal(7))),
    # tensors read as the square matrices they flatten to
    "tensorsolve": (np.linalg.tensorsolve, lambda r: (well_conditioned(r, 24, 24).reshape(6, 4, 2, 3, 4),
                                                      r.standard_normal((6, 4)))),
    "tensorsolve_axes": (lambda a, b: np.linalg.tensorsolve(a, b, axes=(0, 2)),  # axes 0, 2 of a moved last
                         lambda r: (well_conditioned(r, 12, 12).reshape(2, 6, 3, 4).transpose(2, 0, 3, 1),
                                    r.standard_normal((2, 6)))),
    "tensorinv": (np.linalg.tensorinv, lambda r: (well_conditioned(r, 24, 24).reshape(4, 6, 8, 3),)),
    "tensorinv_ind1": (lambda a: np.linalg.tensorinv(a, ind=1), lambda r: (well_conditioned(r, 24, 24).reshape(24, 8, 3),)),
}


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy(name, mode, rng):
    f, make = CASES[name]
    args = make(rng)
    want = np.asarray(f(*args))
    got = f(*[xcs.asarray(a) for a in args]) if mode == "eager" else jit(f)(*args)
    assert isinstance(got, xcs.Array)
    got = np.asarray(got)
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = 2e-5 if want.dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_singular_and_not_positive_definite():
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    for f in (np.linalg.solve, jit(np.linalg.solve)):
        with pytest.raises(xcs.XCSValueError, match="Singular matrix"):
            np.asarray(f(xcs.asarray(a), np.ones(2)))
    # numpy's own exception class too: code written for numpy catches them
    for f in (lambda: np.linalg.inv(xcs.asarray(a)), lambda: jit(np.linalg.cholesky)(-np.eye(2)),
              lambda: np.linalg.cholesky(xcs.asarray(np.ones((70, 70))))):
        with pytest.raises(np.linalg.LinAlgError) as e:
            np.asarray(f())
        assert isinstance(e.value, xcs.XCSLinAlgError) and isinstance(e.value, xcs.XCSValueError)
    with pytest.raises(ValueError, match="not positive definite"):  # an XCSValueError is a ValueError, as LinAlgError
        np.asarray(np.linalg.cholesky(xcs.asarray(-np.eye(3))))
    big = np.ones((70, 70))  # rank 1, through LAPACK where the build has it
    with pytest.raises(xcs.XCSValueError, match="Singular matrix"):
        np.asarray(np.linalg.inv(xcs.asarray(big)))
    with pytest.raises(ValueError, match="not positive definite"):
        np.asarray(np.linalg.cholesky(xcs.asarray(big)))
    assert float(np.linalg.slogdet(xcs.asarray(big)).sign) == 0.0
    s = np.linalg.slogdet(xcs.asarray(a))  # singular: (0, -inf), as numpy
    assert float(s.sign) == 0.0 and float(s.logabsdet) == -np.inf
    assert float(np.linalg.det(xcs.asarray(a))) == 0.0
    with pytest.raises(xcs.XCSShapeError, match="inv: the last 2 dimensions of the array must be square"):
        np.linalg.inv(xcs.asarray(np.ones((2, 3))))
    with pytest.raises(xcs.XCSShapeError, match="cholesky: 1-dimensional array given; the array must be at least two"):
        np.linalg.cholesky(xcs.asarray(np.ones(3)))
    with pytest.raises(xcs.XCSShapeError, match="solve: b must be"):
        np.linalg.solve(xcs.asarray(np.eye(3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="tensorinv: Invalid ind argument"):
        np.linalg.tensorinv(xcs.asarray(np.eye(4).reshape(2, 2, 2, 2)), ind=0)
    with pytest.raises(ValueError, match=r"tensorsolve: Input arrays must satisfy the requirement prod\(a.shape"):
        np.linalg.tensorsolve(xcs.asarray(np.ones((2, 3, 4))), np.ones(2))


def assert_fd(g, f, x, eps=1e-6):
    """g against central differences of f at x, within their rounding: about
    machine-eps * |f(x)| / eps (a determinant's f is large), times 10."""
    ref = fd_grad(f, x, eps)
    noise = 10 * 2.2e-16 * (1 + abs(float(np.asarray(f(x))))) / eps
    np.testing.assert_allclose(np.asarray(g), ref, rtol=1e-6, atol=max(1e-7, noise))


def test_gradients(rng):
    a, b = well_conditioned(rng, 4, 4), rng.standard_normal((4, 2))
    w = rng.standard_normal((4, 2))
    ga, gb = (np.asarray(v) for v in grad(lambda a, b: (np.linalg.solve(a, b) * w).sum(), argnums=(0, 1))(a, b))
    assert_fd(ga, lambda x: (np.linalg.solve(x, b) * w).sum(), a)
    assert_fd(gb, lambda x: (np.linalg.solve(a, x) * w).sum(), b)
    m = rng.standard_normal((4, 4))
    for f in (lambda x: np.linalg.slogdet(x)[1], lambda x: np.linalg.det(x), lambda x: (np.linalg.inv(x) * m).sum()):
        assert_fd(np.asarray(grad(f)(a)), f, a)
    # cholesky reads the lower triangle: the gradient is there (the upper is 0)
    s = spd(rng, 5, 5)
    v = rng.standard_normal((5, 5))
    f = lambda x: (np.linalg.cholesky(x) * v).sum()  # noqa: E731
    g = np.asarray(grad(f)(s))
    assert_fd(g, f, s)
    assert np.all(np.triu(g, 1) == 0)
    # through a symmetric parametrisation (a Gaussian log-likelihood's use)
    x0 = rng.standard_normal((3, 3))
    h = lambda x: np.log(np.diagonal(np.linalg.cholesky(x @ x.T + 3 * np.eye(3)))).sum()  # noqa: E731
    assert_fd(np.asarray(grad(h)(x0)), h, x0)


def test_vmap_and_batch_broadcasting(rng):
    a, bs = well_conditioned(rng, 3, 3), rng.standard_normal((6, 3))
    got = np.asarray(vmap(lambda b: np.linalg.solve(a, b))(bs))  # a shared, b per example
    np.testing.assert_allclose(got, np.stack([np.linalg.solve(a, b) for b in bs]), rtol=1e-12)
    as_ = well_conditioned(rng, 6, 2, 3, 3)
    got = np.asarray(vmap(lambda x: np.linalg.solve(x, np.ones((3, 1))))(as_))  # a per example, batched inside
    np.testing.assert_allclose(got, np.linalg.solve(as_, np.ones((3, 1))), rtol=1e-12)
    got = np.asarray(vmap(grad(lambda x: np.linalg.slogdet(x)[1]))(as_[:, 0]))
    np.testing.assert_allclose(got, np.swapaxes(np.linalg.inv(as_[:, 0]), -1, -2), rtol=1e-10)


def test_half_and_float32(rng):
    a = well_conditioned(rng, 4, 4)
    for dt in (np.float32, np.float16):
        got = np.linalg.inv(xcs.asarray(a.astype(dt)))
        assert np.asarray(got).dtype == dt  # solved in float32, rounded back (numpy refuses 16-bit floats)
        np.testing.assert_allclose(np.asarray(got).astype(np.float64), np.linalg.inv(a.astype(dt).astype(np.float64)),
                                   rtol=5e-3 if dt == np.float16 else 1e-5, atol=1e-3 if dt == np.float16 else 1e-6)


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_eigh_and_svd_vectors(mode, rng):
    """The vectors make the decompositions (up to their signs, LAPACK's differ):
    a v = v diag(w) with v orthogonal; a = u diag(s) vh with u, vh orthonormal."""
    s = spd(rng, 3, 7, 7) - 9 * np.eye(7)
    w, v = (np.asarray(t) for t in (np.linalg.eigh(xcs.asarray(s)) if mode == "eager" else jit(np.linalg.eigh)(s)))
    np.testing.assert_allclose(w, np.linalg.eigvalsh(s), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s @ v, v * w[..., None, :], atol=1e-11)
    np.testing.assert_allclose(np.swapaxes(v, -1, -2) @ v, np.broadcast_to(np.eye(7), v.shape), atol=1e-13)
    for shape in ((5, 3), (3, 5), (2, 4, 4), (6, 1)):
        a = rng.standard_normal(shape)
        f = lambda x: np.linalg.svd(x, full_matrices=False)  # noqa: E731
        u, sv, vh = (np.asarray(t) for t in (f(xcs.asarray(a)) if mode == "eager" else jit(f)(a)))
        k = min(shape[-2:])
        assert u.shape == shape[:-1] + (k,) and vh.shape == shape[:-2] + (k, shape[-1])
        np.testing.assert_allclose(sv, np.linalg.svd(a, compute_uv=False), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose((u * sv[..., None, :]) @ vh, a, atol=1e-12)
        np.testing.assert_allclose(np.swapaxes(u, -1, -2) @ u, np.broadcast_to(np.eye(k), sv.shape[:-1] + (k, k)), atol=1e-12)
    # big ones: LAPACK's syevd / gesdd where the build has it (eigh from 8 rows, svd from 24)
    big = spd(rng, 2, 70, 70) - 70 * np.eye(70)
    w, v = (np.asarray(t) for t in np.linalg.eigh(xcs.asarray(big)))
    np.testing.assert_allclose(w, np.linalg.eigvalsh(big), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(big @ v, v * w[..., None, :], atol=1e-9)
    for shape in ((66, 80), (90, 64)):
        wide = rng.standard_normal(shape)
        u, sv, vh = (np.asarray(t) for t in np.linalg.svd(xcs.asarray(wide), full_matrices=False))
        np.testing.assert_allclose(sv, np.linalg.svd(wide, compute_uv=False), rtol=1e-10)
        np.testing.assert_allclose((u * sv) @ vh, wide, atol=1e-10)
        np.testing.assert_allclose(u.T @ u, np.eye(64 if shape[1] == 64 else 66), atol=1e-10)
    a32 = rng.standard_normal((70, 70)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(np.linalg.svd(xcs.asarray(a32), compute_uv=False)),
                               np.linalg.svd(a32, compute_uv=False), rtol=2e-4, atol=2e-4)
    # a zero singular value: u's column still orthonormal (completed)
    z = np.outer(rng.standard_normal(4), rng.standard_normal(3))
    u, sv, vh = (np.asarray(t) for t in np.linalg.svd(xcs.asarray(z), full_matrices=False))
    np.testing.assert_allclose(u.T @ u, np.eye(3), atol=1e-12)
    # full_matrices of a square matrix; of another shape: numpy's on concrete arrays
    sq = rng.standard_normal((4, 4))
    np.testing.assert_allclose(np.abs(np.asarray(np.linalg.svd(xcs.asarray(sq))[0])), np.abs(np.linalg.svd(sq)[0]), atol=1e-10)
    assert np.linalg.svd(xcs.asarray(a)).U.shape == (6, 6)


def test_eigh_svd_gradients_and_vmap(rng):
    s = rng.standard_normal((4, 4))
    s = s + s.T
    c, m = rng.standard_normal(4), rng.standard_normal((4, 4))
    f = lambda x: (np.linalg.eigh(x)[0] * c).sum() + (np.linalg.eigh(x)[1] ** 2 * m).sum()  # noqa: E731 (sign-free)
    assert_fd(np.asarray(grad(f)(s)), f, s)
    for shape in ((5, 3), (3, 5), (4, 4)):
        a = rng.standard_normal(shape)
        k = min(shape)
        c, m1, m2 = rng.standard_normal(k), rng.standard_normal((shape[0], k)), rng.standard_normal((k, shape[1]))

        def h(x):
            u, sv, vh = np.linalg.svd(x, full_matrices=False)
            return (sv * c).sum() + (u ** 2 * m1).sum() + (vh ** 2 * m2).sum()

        assert_fd(np.asarray(grad(h)(a)), h, a)
    for f in (lambda x: np.linalg.pinv(x).sum(), lambda x: np.linalg.norm(x, 2), lambda x: np.linalg.norm(x, "nuc")):
        assert_fd(np.asarray(grad(f)(a)), f, a)
    batch = rng.standard_normal((5, 4, 3))
    np.testing.assert_allclose(np.asarray(vmap(lambda x: np.linalg.svd(x, compute_uv=False))(batch)),
                               np.linalg.svd(batch, compute_uv=False), rtol=1e-12)
    sym = batch[:, :3] + np.swapaxes(batch[:, :3], -1, -2)
    np.testing.assert_allclose(np.asarray(vmap(np.linalg.eigvalsh)(sym)), np.linalg.eigvalsh(sym), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("n", [1, 3, 4, 9])  # Jacobi below 4 rows (eigvalsh) / 12 (svdvals), LAPACK from there
def test_values_only_ops(n, rng):
    """eigvalsh and svdvals are ops of their own (no vectors computed); their
    gradients (an eigh / svd of the input, in the backward pass) against finite
    differences, under vmap against a loop, eager and jitted."""
    text = xcs.explain(lambda a: np.linalg.eigvalsh(a).sum() + np.linalg.svdvals(a).sum(), np.eye(n))
    assert "= eigvalsh(" in text and "= svdvals(" in text and "= eigh(" not in text and "= svd(" not in text
    s = rng.standard_normal((n, n))
    s = s + s.T
    c = rng.standard_normal(n)
    for uplo in ("L", "U"):
        f = lambda x: (np.linalg.eigvalsh(x, UPLO=uplo) * c).sum()  # noqa: E731
        g = np.asarray(grad(f)(s))
        assert_fd(g, f, s)
        assert np.all((np.triu(g, 1) if uplo == "L" else np.tril(g, -1)) == 0)  # only the triangle read
    for shape in ((n + 3, n), (n, n + 13), (n, n)):  # svdvals: tall, wide (12 columns or more), square
        a = rng.standard_normal(shape)
        d = rng.standard_normal(min(shape))
        h = lambda x: (np.linalg.svdvals(x) * d).sum()  # noqa: E731
        assert_fd(np.asarray(grad(h)(a)), h, a)
        assert_fd(np.asarray(jit(grad(h))(a)), h, a)
    batch = rng.standard_normal((4, n, n))
    batch = batch + np.swapaxes(batch, -1, -2)
    got = np.asarray(vmap(grad(lambda x: (np.linalg.eigvalsh(x) * c).sum()))(batch))
    want = np.stack([np.asarray(grad(lambda x: (np.linalg.eigvalsh(x) * c).sum())(b)) for b in batch])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    got = np.asarray(vmap(np.linalg.svdvals)(batch[..., :max(1, n - 1)]))
    np.testing.assert_allclose(got, np.linalg.svdvals(batch[..., :max(1, n - 1)]), rtol=1e-12, atol=1e-13)


def test_threads_at_once(rng):
    """Python threads (the GIL released) factor big matrices at the same time:
    LAPACK is entered by one at a time (OpenBLAS's is not re-entrant), the
    values right in every thread."""
    import threading

    bad = []

    def work(x):  # 80 rows: single-threaded LAPACK; 520: on OpenBLAS's threads
        s = x @ np.swapaxes(x, -1, -2) + np.eye(x.shape[-1])
        want = np.linalg.eigvalsh(s)
        for _ in range(3):
            for f in (np.linalg.inv, np.linalg.cholesky, lambda a: np.linalg.svd(a, compute_uv=False)):
                np.asarray(f(xcs.asarray(s)))
            if not np.allclose(np.asarray(np.linalg.eigvalsh(xcs.asarray(s))), want, rtol=1e-10):
                bad.append(x.shape[-1])

    threads = [threading.Thread(target=work, args=(rng.standard_normal((3, n, n)),)) for n in (80, 80, 520, 520)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_qr_and_lstsq_gradients_and_fallbacks(rng):
    for shape in ((5, 3), (4, 4), (3, 5)):  # tall, square, wide (a = [x | y])
        a = rng.standard_normal(shape)
        k = min(shape)
        m1, m2 = rng.standard_normal((shape[0], k)), rng.standard_normal((k, shape[1]))
        f = lambda x: (np.linalg.qr(x)[0] * m1).sum() + (np.linalg.qr(x)[1] * m2).sum()  # noqa: E731
        assert_fd(np.asarray(grad(f)(a)), f, a)
    a, b = rng.standard_normal((7, 3)), rng.standard_normal(7)
    f = lambda x: (np.linalg.lstsq(x, b)[0] ** 2).sum()  # noqa: E731
    assert_fd(np.asarray(grad(f)(a)), f, a)
    x, res, rank, sv = np.linalg.lstsq(xcs.asarray(a), b)
    assert int(np.asarray(rank)) == 3 and np.asarray(res).shape == (1,)
    low = np.outer(rng.standard_normal(7), rng.standard_normal(3))  # rank 1: numpy gives no residuals, nor xcs
    x, res, rank, sv = np.linalg.lstsq(xcs.asarray(low), b)
    assert int(np.asarray(rank)) == 1 and np.asarray(res).shape == (0,)
    np.testing.assert_allclose(np.asarray(x), np.linalg.lstsq(low, b)[0], atol=1e-12)
    # complete Q of a tall matrix: numpy's on concrete arrays; under jit an XCSTracerError
    t = rng.standard_normal((5, 3))
    assert np.linalg.qr(xcs.asarray(t), mode="complete")[0].shape == (5, 5)
    with pytest.raises(xcs.XCSTracerError):
        jit(lambda v: np.linalg.qr(v, mode="complete")[0])(t)
    np.testing.assert_allclose(np.asarray(vmap(lambda v: np.linalg.qr(v).R)(rng.standard_normal((4, 5, 3)))).shape,
                               (4, 3, 3))


SPIN_PROBE = """
import os, sys, time
import numpy
def ticks():
    out = {}
    for t in os.listdir("/proc/self/task"):
        f = open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()
        out[t] = int(f[11]) + int(f[12])  # utime + stime
    return out
before = set(ticks())
import ember.xcs
mine = {t: v for t, v in ticks().items() if t not in before}  # the threads the extension's libraries started
time.sleep(0.2)
now = ticks()
print(os.environ.get("OPENBLAS_THREAD_TIMEOUT"), sum(now.get(t, v) - v for t, v in mine.items()))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads threads' CPU time from /proc")
def test_openblas_workers_do_not_spin_after_import():
    """The extension loads with OPENBLAS_THREAD_TIMEOUT=18 (its OpenBLAS's idle
    workers sleep after ~0.1 ms instead of spinning ~40 ms and taking a core
    from the OpenMP threads): the threads its libraries start use (almost) no
    CPU while the process sleeps 0.2 s; the environment is left as it was,
    and a user's own value is kept."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", SPIN_PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    value, spin = out.stdout.split()
    assert value == "None"  # restored
    assert int(spin) <= 1  # clock ticks (10 ms each): a spinning worker shows 4 or more
    out = subprocess.run([sys.executable, "-c", SPIN_PROBE], env={**env, "OPENBLAS_THREAD_TIMEOUT": "20"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split()[0] == "20", out.stderr
