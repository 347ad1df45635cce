"""Shared fixtures and numerics helpers for the Python suite.

Every test compares xcs against numpy.  The reference is computed by numpy in
float64 from the *same* input values (inputs upcast, so the reference is more
accurate than either implementation in float32), and the result's dtype is
checked separately against what numpy returns for the original dtypes.

Random inputs are fresh on every run: the `rng` fixture derives a seed from a
random base (or ``XCS_TEST_SEED`` when set) and the test id, and a failing
test prints the base so the run can be repeated exactly.

float16 and bfloat16 (ml_dtypes') results are checked like the others,
against the float64 reference with their own tolerances: xcs computes them
in float32 and rounds on store, numpy (float16) rounds after every op.
"""
from __future__ import annotations

import math
import os
import random
import zlib

import numpy as np
import pytest
from ml_dtypes import bfloat16

# hypothesis: bounded examples and no per-example deadline (a first call may
# be slow while kernels warm up); profile "ci" is the default.
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci",
        max_examples=int(os.environ.get("XCS_HYPOTHESIS_EXAMPLES", "60")),
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.load_profile(os.environ.get("XCS_HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover - hypothesis is in requirements.txt
    pass

# ----------------------------------------------------------------- seeds

_BASE_SEED = int(os.environ.get("XCS_TEST_SEED", random.SystemRandom().randrange(2**32)))


def pytest_report_header(config):
    return f"xcs random base seed: XCS_TEST_SEED={_BASE_SEED}"


@pytest.fixture
def rng(request):
    """A fresh numpy Generator seeded from the base seed and the test id."""
    seed = (_BASE_SEED * 1_000_003 + zlib.crc32(request.node.nodeid.encode())) % 2**63
    request.node._xcs_seed = seed
    return np.random.default_rng(seed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and hasattr(item, "_xcs_seed"):
        rep.sections.append(
            ("xcs random seed",
             f"rerun with XCS_TEST_SEED={_BASE_SEED} (this test's seed: {item._xcs_seed})"))


# ----------------------------------------------------------------- imports

@pytest.fixture(scope="session")
def xcs():
    import ember.xcs as m
    return m


@pytest.fixture(scope="session")
def xnp():
    import ember.xcs.numpy as m
    return m


# ----------------------------------------------------------------- tolerances

# (rtol, atol) by result dtype, against a float64 reference.  float32: a few
# ulp (2^-23 ~ 1.2e-7) of the result plus input rounding, so 2e-5 leaves room
# for vectorised transcendental approximations; float64: libm-grade.
TOL = {
    np.dtype(np.float16): (2e-3, 1e-4),       # 2^-10 ~ 9.8e-4: two ulp
    np.dtype(bfloat16): (1.6e-2, 1e-3),       # 2^-7 ~ 7.8e-3: two ulp
    np.dtype(np.float32): (2e-5, 2e-6),
    np.dtype(np.float64): (1e-12, 1e-14),
}
# Looser bounds for ops whose float32 result is ill-conditioned or computed
# through a longer formula (tanh near 0 via exp, pow, gelu/erf, ...).
TOL_TRANSCENDENTAL = {
    np.dtype(np.float16): (4e-3, 1e-3),
    np.dtype(bfloat16): (3e-2, 1e-2),
    np.dtype(np.float32): (1e-4, 1e-5),
    np.dtype(np.float64): (1e-11, 1e-13),
}

FLOAT_DTYPES = (np.float32, np.float64)
HALF_DTYPES = (np.float16, bfloat16)
INT_DTYPES = (np.int32, np.int64)
ALL_DTYPES = (np.bool_, np.int32, np.int64, np.float32, np.float64)


def xcs_dtype_for(np_dtype) -> np.dtype:
    """The dtype xcs returns where numpy returns `np_dtype` (the same one)."""
    return np.dtype(np_dtype)


def to_numpy(x) -> np.ndarray:
    """An xcs Array (or anything array-like) as a numpy array, no copy when possible."""
    return np.asarray(x)


def assert_close(actual, expected, dtype=None, *, rtol=None, atol=None,
                 tol=None, equal_nan=True, err_msg=""):
    """Check an xcs result against a numpy reference.

    actual:   the xcs result (an ``ember.xcs.Array``; anything np.asarray takes).
    expected: the numpy reference, ideally computed in float64.
    dtype:    the dtype `actual` must have (numpy's result dtype for the original
              inputs); None means expected.dtype.
    rtol/atol override the per-dtype tolerance; `tol` picks another table.
    Integer and bool results must match exactly.
    """
    import ember.xcs as xcs  # noqa: F401  (import errors surface here, clearly)

    a = to_numpy(actual)
    e = np.asarray(expected)
    want = xcs_dtype_for(e.dtype if dtype is None else dtype)
    assert a.dtype == want, f"dtype {a.dtype} != expected {want}. {err_msg}"
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}. {err_msg}"
    if want.kind in "biu":
        np.testing.assert_array_equal(a, e.astype(want) if e.dtype != want else e, err_msg=err_msg)
        return
    table = tol or TOL
    r, t = table.get(want, TOL[np.dtype(np.float64)])
    r = r if rtol is None else rtol
    t = t if atol is None else atol
    ee = e.astype(np.float64)
    aa = a.astype(np.float64)
    np.testing.assert_allclose(aa, ee, rtol=r, atol=t, equal_nan=equal_nan,
                               err_msg=f"result dtype {want}. {err_msg}")


def reference(fn, *args, upcast=True, **kwargs):
    """Run a numpy function twice: on the original inputs (for the result
    dtype) and on float64-upcast inputs (for the values) when the result is a
    float.  Returns (reference_values, result_dtype).

    upcast=False keeps numpy's own-dtype result as the reference: for ops
    with discontinuities (floor_divide, mod, floor, comparisons) a float64
    reference can legitimately differ from any float32 computation."""
    with np.errstate(all="ignore"):
        native = fn(*args, **kwargs)
        native = np.asarray(native)
        if native.dtype.kind == "f" and upcast:
            # every array input in float64 (exact for our ints and bools), so
            # the reference is at least as accurate as any float32 result
            up = [a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args]
            ref = np.asarray(fn(*up, **kwargs))
            if ref.dtype != np.float64:
                ref = ref.astype(np.float64)
        else:
            ref = native
    return ref, native.dtype


def random_array(rng, shape, dtype, kind="normal"):
    """Random numpy input of a dtype.

    kind: "normal" (N(0, 1), ints in [-50, 50]), "positive" (floats in
    [0.1, 10], ints in [1, 50]), "unit" (floats in (-0.95, 0.95)), "small"
    (ints in [-5, 5], floats in [-3, 3])."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.kind in "iu":
        lo, hi = {"positive": (1, 51), "small": (-5, 6)}.get(kind, (-50, 51))
        return np.asarray(rng.integers(lo, hi, size=shape, dtype=dtype))
    if kind == "positive":
        x = rng.uniform(0.1, 10.0, size=shape)
    elif kind == "unit":
        x = rng.uniform(-0.95, 0.95, size=shape)
    elif kind == "small":
        x = rng.uniform(-3.0, 3.0, size=shape)
    else:
        x = rng.standard_normal(shape)
    return np.asarray(x, dtype=dtype)


# Layouts: how an operand is presented to xcs.  The same view is applied to
# the numpy array and to the xcs Array made from its base, so xcs kernels see
# real strided views built by xcs itself.
LAYOUTS = ("contiguous", "transposed", "step2", "negative")


def base_shape_for(shape, layout):
    """Shape of the base array that `layout` turns into `shape`."""
    shape = tuple(shape)
    if layout == "transposed":
        return shape[::-1]
    if layout == "step2" and shape:
        return shape[:-1] + (2 * shape[-1],)
    return shape


def apply_layout(a, layout):
    """Apply a view to an array (numpy or xcs)."""
    if layout == "contiguous" or np.ndim(a) == 0:
        return a
    if layout == "transposed":
        return a.T
    if layout == "step2":
        return a[..., ::2]
    if layout == "negative":
        return a[::-1]
    raise ValueError(layout)


def make_pair(xcs_mod, rng, shape, dtype, layout="contiguous", kind="normal"):
    """(numpy array, xcs Array) holding the same values in the given layout."""
    base = random_array(rng, base_shape_for(shape, layout), dtype, kind)
    xb = xcs_mod.asarray(base)
    n = apply_layout(base, layout)
    x = apply_layout(xb, layout)
    assert tuple(n.shape) == tuple(shape), (n.shape, shape)
    return n, x


# The suite's second run (CTest python_cuda; a GPU session) puts every
# jitted program on the GPU (XCS_DEVICE=cuda).
ON_DEVICE = os.environ.get("XCS_DEVICE", "").startswith("cuda")


def assert_same_bits(actual, expected, ulps=8, scale=None):
    """The same bits where xcs runs the same operations in the same order
    (numpy's, or the CPU's eager kernels): on the CPU exactly.  On a GPU the
    device contracts a * b + c into one FMA, has its own math library and
    sums in another order, so float results are held to `ulps` ulps of
    `scale` there instead (default: the result's largest magnitude; a
    matmul's: its terms' magnitude)."""
    a, e = np.asarray(actual), np.asarray(expected)
    if not ON_DEVICE or e.dtype.kind not in "fc":
        np.testing.assert_array_equal(a, e)
        return
    assert a.shape == e.shape and a.dtype == e.dtype, (a.shape, a.dtype, e.shape, e.dtype)
    eps = float(np.finfo(e.dtype).eps)
    if scale is None:
        scale = float(np.max(np.abs(e[np.isfinite(e)]))) if np.isfinite(e).any() else 0.0
    np.testing.assert_allclose(a, e, rtol=ulps * eps, atol=ulps * eps * scale)


def erf_ref(x):
    """Exact-to-float64 erf on a numpy array, via math.erf."""
    return np.vectorize(math.erf, otypes=[np.float64])(np.asarray(x, np.float64))


def gelu_ref(x):
    """Exact gelu x * Phi(x) = 0.5 * x * erfc(-x / sqrt(2)); the erfc form keeps
    full relative precision in the negative tail, where 1 + erf(.) cancels."""
    x = np.asarray(x, np.float64)
    erfc = np.vectorize(math.erfc, otypes=[np.float64])
    return 0.5 * x * erfc(-x / math.sqrt(2.0))


def fd_grad(f, x, eps=1e-6):
    """Central differences of scalar f at every element of x (float64)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g
