"""ember.xcs.nn against float64 references: relu, sigmoid, gelu (erf form),
erf, rsqrt, softmax/log_softmax/logsumexp including their numerical
stability on inputs of magnitude 1000."""
import math

import numpy as np
import pytest

from conftest import TOL_TRANSCENDENTAL, assert_close, erf_ref, gelu_ref, make_pair, random_array


@pytest.fixture(scope="module")
def nn():
    import ember.xcs.nn as m
    return m


def softmax_ref(a, axis=-1):
    a = np.asarray(a, np.float64)
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax_ref(a, axis=-1):
    a = np.asarray(a, np.float64)
    m = a.max(axis=axis, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


def logsumexp_ref(a, axis=None, keepdims=False):
    a = np.asarray(a, np.float64)
    m = a.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    r = np.log(np.exp(a - m).sum(axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis) if axis is not None else r.reshape(())


SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (0, 4), (300_000,)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_relu(nn, xcs, rng, dtype, shape):
    a, x = make_pair(xcs, rng, shape, dtype)
    assert_close(nn.relu(x), np.maximum(a.astype(np.float64), 0.0), np.dtype(dtype))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_relu_int(nn, xcs, rng, dtype):
    a = random_array(rng, (10,), dtype)
    assert_close(nn.relu(xcs.asarray(a)), np.maximum(a, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_sigmoid(nn, xcs, rng, dtype, shape):
    a, x = make_pair(xcs, rng, shape, dtype)
    a = a * 8
    x = xcs.asarray(a)
    ref = 1.0 / (1.0 + np.exp(-a.astype(np.float64)))
    assert_close(nn.sigmoid(x), ref, np.dtype(dtype), tol=TOL_TRANSCENDENTAL)


def test_sigmoid_extremes(nn, xcs):
    a = np.array([-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0, np.inf, -np.inf])
    for dt in (np.float32, np.float64):
        got = np.asarray(nn.sigmoid(xcs.asarray(a.astype(dt))))
        assert np.isfinite(got).all(), (dt, got)
        with np.errstate(over="ignore"):
            ref = 1.0 / (1.0 + np.exp(-a))
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-30 if dt == np.float64 else 1e-38)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_erf(nn, xcs, rng, dtype, shape):
    a, x = make_pair(xcs, rng, shape, dtype)
    a = a * 2
    x = xcs.asarray(a)
    assert_close(nn.erf(x), erf_ref(a), np.dtype(dtype), tol=TOL_TRANSCENDENTAL)


def test_erf_special(nn, xcs):
    a = np.array([0.0, -0.0, 1e-10, 6.0, -6.0, 30.0, np.inf, -np.inf, np.nan])
    got = np.asarray(nn.erf(xcs.asarray(a)))
    ref = np.array([math.erf(v) if not math.isnan(v) else math.nan for v in a])
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=1e-300, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_gelu(nn, xcs, rng, dtype, shape):
    a, x = make_pair(xcs, rng, shape, dtype)
    a = a * 3
    x = xcs.asarray(a)
    assert_close(nn.gelu(x), gelu_ref(a), np.dtype(dtype), tol=TOL_TRANSCENDENTAL)


def test_gelu_tails(nn, xcs):
    a = np.array([-40.0, -10.0, -5.0, 5.0, 10.0, 40.0])
    got = np.asarray(nn.gelu(xcs.asarray(a)))
    np.testing.assert_allclose(got, gelu_ref(a), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rsqrt(nn, xcs, rng, dtype):
    a = random_array(rng, (1000,), dtype, "positive")
    assert_close(nn.rsqrt(xcs.asarray(a)), 1.0 / np.sqrt(a.astype(np.float64)), np.dtype(dtype),
                 tol=TOL_TRANSCENDENTAL)


def test_int_inputs_promote(nn, xcs):
    a = np.array([-2, 0, 3], np.int32)
    assert_close(nn.sigmoid(xcs.asarray(a)), 1 / (1 + np.exp(-a.astype(np.float64))), np.float64)
    assert_close(nn.erf(xcs.asarray(a)), erf_ref(a), np.float64)


# ----------------------------------------------------------------- softmax family

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((7,), -1), ((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1),
                                        ((1, 1), -1), ((0, 4), -1), ((600, 700), -1), ((700, 600), 0)])
def test_softmax(nn, xcs, rng, dtype, shape, axis):
    a, x = make_pair(xcs, rng, shape, dtype)
    a = a * 5
    x = xcs.asarray(a)
    got = nn.softmax(x, axis=axis)
    assert_close(got, softmax_ref(a, axis), np.dtype(dtype), tol=TOL_TRANSCENDENTAL)
    assert_close(nn.log_softmax(x, axis=axis), log_softmax_ref(a, axis), np.dtype(dtype),
                 tol=TOL_TRANSCENDENTAL)
    if a.size:
        s = np.asarray(got).astype(np.float64).sum(axis=axis)
        np.testing.assert_allclose(s, 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("layout", ["transposed", "step2", "negative"])
def test_softmax_views(nn, xcs, rng, layout):
    a, x = make_pair(xcs, rng, (40, 30), np.float32, layout=layout)
    assert_close(nn.softmax(x), softmax_ref(a), np.float32, tol=TOL_TRANSCENDENTAL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_stability(nn, xcs, dtype):
    """exp(1000) overflows; a max-subtracted softmax does not."""
    a = np.array([[1000.0, 1000.0, -1000.0], [-1000.0, -1001.0, -1002.0], [0.0, 1000.0, 999.0]], dtype)
    got = np.asarray(nn.softmax(xcs.asarray(a)))
    assert np.isfinite(got).all(), got
    assert_close(nn.softmax(xcs.asarray(a)), softmax_ref(a), np.dtype(dtype), tol=TOL_TRANSCENDENTAL)
    ls = np.asarray(nn.log_softmax(xcs.asarray(a)))
    assert np.isfinite(ls).all(), ls
    assert_close(nn.log_softmax(xcs.asarray(a)), log_softmax_ref(a), np.dtype(dtype),
                 tol=TOL_TRANSCENDENTAL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis,keepdims", [((7,), None, False), ((3, 5), None, True), ((3, 5), 1, False),
                                                 ((3, 5), 0, True), ((2, 3, 4), (0, 2), False),
                                                 ((300_000,), None, False)])
def test_logsumexp(nn, xcs, rng, dtype, shape, axis, keepdims):
    a = (random_array(rng, shape, dtype) * 4).astype(dtype)
    got = nn.logsumexp(xcs.asarray(a), axis=axis, keepdims=keepdims)
    ref = logsumexp_ref(a, axis=axis, keepdims=keepdims)
    assert_close(got, ref, np.dtype(dtype), tol=TOL_TRANSCENDENTAL)


def test_logsumexp_stability(nn, xcs):
    a = np.array([1000.0, 1000.0])
    assert float(np.asarray(nn.logsumexp(xcs.asarray(a)))) == pytest.approx(1000 + math.log(2), rel=1e-14)
    b = np.array([-1000.0, -1000.0, -1000.0])
    assert float(np.asarray(nn.logsumexp(xcs.asarray(b)))) == pytest.approx(-1000 + math.log(3), rel=1e-14)
    c = np.array([-np.inf, -np.inf])
    assert float(np.asarray(nn.logsumexp(xcs.asarray(c)))) == -np.inf
    d = np.array([np.inf, 1.0])
    assert float(np.asarray(nn.logsumexp(xcs.asarray(d)))) == np.inf


def test_softmax_bad_axis(nn, xcs):
    with pytest.raises(xcs.XCSError):
        nn.softmax(xcs.asarray(np.zeros((2, 3))), axis=2)
