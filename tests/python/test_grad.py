"""grad / value_and_grad: reverse-mode AD on the IR, checked against central
finite differences in float64 on fresh random inputs — per op (with
broadcasting, views, reductions over every axis set, matmul shapes, gathers)
and for whole programs (MLP with softmax cross-entropy, layer-norm, an
attention block) — plus the API: argnums, pytrees, has_aux, allow_int,
errors, composition with jit and with itself."""
import numpy as np
import pytest

import ember.xcs as xcs
from ember.api.decorators import mark_orchestration
from ember.xcs import grad, jit, nn, value_and_grad, vmap


def numeric_grad(f, args, k, eps=1e-6):
    """Central differences of scalar f(*args) with respect to args[k]."""
    x = np.array(args[k], dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        ap, am = list(args), list(args)
        ap[k], am[k] = xp, xm
        g[i] = (float(np.asarray(f(*ap))) - float(np.asarray(f(*am)))) / (2 * eps)
    return g


def check(f, *args, argnums=None, rtol=1e-6, atol=1e-7):
    argnums = tuple(range(len(args))) if argnums is None else argnums
    got = grad(f, argnums=argnums)(*args)
    for k, gk in zip(argnums, got):
        want = numeric_grad(f, args, k)
        np.testing.assert_allclose(np.asarray(gk), want, rtol=rtol, atol=atol, err_msg=f"d/d arg {k}")


def r(rng, *shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


UNARY = [
    ("negative", np.negative, (-2, 2)), ("absolute", np.abs, (0.2, 2)), ("exp", np.exp, (-2, 2)),
    ("log", np.log, (0.3, 3)), ("log1p", np.log1p, (-0.5, 2)), ("expm1", np.expm1, (-2, 2)),
    ("sqrt", np.sqrt, (0.3, 3)), ("sin", np.sin, (-3, 3)), ("cos", np.cos, (-3, 3)), ("tanh", np.tanh, (-2, 2)),
    ("sigmoid", nn.sigmoid, (-3, 3)), ("relu", nn.relu, (0.1, 2)), ("relu_neg", nn.relu, (-2, -0.1)),
    ("gelu", nn.gelu, (-3, 3)), ("erf", nn.erf, (-2, 2)), ("rsqrt", nn.rsqrt, (0.3, 3)),
    ("square", np.square, (-2, 2)), ("reciprocal", np.reciprocal, (0.5, 2)),
]


@pytest.mark.parametrize("name,fn,dom", UNARY, ids=[u[0] for u in UNARY])
def test_unary_ops(name, fn, dom, rng):
    check(lambda x: (fn(x) * np.arange(1.0, 13.0).reshape(3, 4)).sum(), r(rng, 3, 4, lo=dom[0], hi=dom[1]))


BINARY = [("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply), ("divide", np.divide),
          ("power", np.power), ("maximum", np.maximum), ("minimum", np.minimum), ("mod", np.mod)]


@pytest.mark.parametrize("name,fn", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), ())],
                         ids=["same", "row", "outer", "scalar"])
def test_binary_ops_with_broadcasting(name, fn, sa, sb, rng):
    a = r(rng, *sa, lo=0.5, hi=2.0)
    b = r(rng, *sb, lo=0.5, hi=2.0) if sb else np.float64(rng.uniform(0.5, 2.0))
    if name == "mod":
        b = b + 2.5  # away from the jumps
    check(lambda a, b: (fn(a, b) * 1.5).sum(), a, b)


def test_where_and_ties(rng):
    a, b = r(rng, 3, 4), r(rng, 3, 4)
    check(lambda a, b: np.where(a > 0, a * b, b * b).sum(), a, b)
    # ties: maximum and max reductions split the gradient equally
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.5]])
    np.testing.assert_allclose(np.asarray(grad(lambda x: x.max(axis=1).sum())(x)),
                               [[0, 0.5, 0.5], [0.5, 0.5, 0]])
    ga, gb = grad(lambda a, b: np.maximum(a, b).sum(), argnums=(0, 1))(np.ones(3), np.ones(3))
    np.testing.assert_allclose(np.asarray(ga), 0.5)
    np.testing.assert_allclose(np.asarray(gb), 0.5)


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "prod", "var", "std", "logsumexp"])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2), -1])
def test_reductions(op, axis, rng):
    x = r(rng, 2, 3, 4, lo=0.5, hi=2.0)
    w = r(rng, 2, 3, 4)
    if op == "logsumexp":
        def f(x):
            return (nn.logsumexp(x, axis=axis) * 1.0).sum() + (x * w).sum() * 0.1
    else:
        def f(x):
            return (getattr(np, op)(x * w if op in ("max", "min") else x, axis=axis) ** 2).sum()
    check(f, x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)),
                                   ((4,), (4, 5)), ((3, 4), (4,)), ((1, 3, 4), (2, 4, 2))])
def test_matmul(sa, sb, rng):
    check(lambda a, b: np.sin(a @ b).sum(), r(rng, *sa), r(rng, *sb), rtol=1e-5, atol=1e-6)


def test_views_and_movement(rng):
    x = r(rng, 3, 4)
    check(lambda x: (x.T @ x).sum(), x)
    check(lambda x: (x[1:, ::2] * np.array([1.0, 2.0])).sum(), x)
    check(lambda x: (x[::-1, 1] ** 2).sum(), x)
    check(lambda x: (x.reshape(2, 6) * np.arange(12.0).reshape(2, 6)).sum(), x)
    check(lambda x: (np.expand_dims(x, 1) * np.ones((3, 2, 4))).sum(), x)
    check(lambda x: np.concatenate([x, 2 * x[:1]], axis=0).var(), x)
    check(lambda x: (xcs.numpy.stack([x, x * x]) ** 2).sum(), x)
    idx = np.array([2, 0, -1, 2])
    check(lambda x: (np.take(x, idx, axis=1) ** 2).sum(), x)
    check(lambda x: (x[np.array([0, 2, 2])] * 3).sum(), x)


def test_softmax_and_casts(rng):
    x = r(rng, 3, 5)
    check(lambda x: (nn.softmax(x, axis=-1) * np.arange(5.0)).sum(), x)
    check(lambda x: (nn.log_softmax(x, axis=0) ** 2).sum(), x)
    # through a float32 round trip the gradient is exact (finite differences would see the rounding)
    np.testing.assert_array_equal(np.asarray(grad(lambda x: (x.astype(np.float32).astype(np.float64) * 2).sum())(x)),
                                  np.full(x.shape, 2.0))


# ---------------------------------------------------------------- whole programs


def mlp_loss(params, x, y):
    h = np.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    logp = nn.log_softmax(logits, axis=-1)
    return -(logp * y).sum(axis=-1).mean()


def layer_norm(x, g, b):
    m = x.mean(axis=-1, keepdims=True)
    v = ((x - m) ** 2).mean(axis=-1, keepdims=True)
    return ((x - m) / np.sqrt(v + 1e-5) * g + b)


def attention(x, wq, wk, wv):
    q, k, v = x @ wq, x @ wk, x @ wv
    a = nn.softmax(q @ np.transpose(k, (0, 2, 1)) / np.sqrt(q.shape[-1]), axis=-1)
    return layer_norm(a @ v + x, np.ones(x.shape[-1]), np.zeros(x.shape[-1]))


def test_mlp_softmax_cross_entropy(rng):
    p = {"w1": r(rng, 5, 7), "b1": r(rng, 7), "w2": r(rng, 7, 3), "b2": r(rng, 3)}
    x, y = r(rng, 6, 5), np.eye(3)[rng.integers(0, 3, 6)]
    g = grad(mlp_loss)(p, x, y)
    assert set(g) == set(p)
    for name in p:
        def f(v, name=name):
            q = dict(p)
            q[name] = v
            return mlp_loss(q, x, y)
        np.testing.assert_allclose(np.asarray(g[name]), numeric_grad(f, [p[name]], 0), rtol=1e-5, atol=1e-7)


def test_layer_norm_and_attention(rng):
    x, g, b = r(rng, 4, 6), r(rng, 6), r(rng, 6)
    check(lambda x, g, b: (layer_norm(x, g, b) * np.arange(24.0).reshape(4, 6)).sum(), x, g, b, rtol=1e-5,
          atol=1e-6)
    x, wq, wk, wv = r(rng, 2, 3, 4), r(rng, 4, 4) * 0.5, r(rng, 4, 4) * 0.5, r(rng, 4, 4) * 0.5
    check(lambda x, wq, wk, wv: (attention(x, wq, wk, wv) ** 2).sum(), x, wq, wk, wv, rtol=1e-5, atol=1e-6)


def test_float32_gradients_are_float32(rng):
    x = rng.standard_normal((8, 8)).astype(np.float32)
    g = grad(lambda x: np.tanh(x @ x).sum())(x)
    assert np.asarray(g).dtype == np.float32
    want = grad(lambda x: np.tanh(x @ x).sum())(x.astype(np.float64))
    np.testing.assert_allclose(np.asarray(g), np.asarray(want), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- API


def test_value_and_grad_argnums_pytrees_aux(rng):
    a, b = r(rng, 3), r(rng, 3)

    def f(xs, scale):
        return (xs[0] * xs[1]).sum() * scale, {"norm": (xs[0] ** 2).sum()}

    (val, aux), (gxs, gscale) = value_and_grad(f, argnums=(0, 1), has_aux=True)([a, b], 2.0)
    assert isinstance(gxs, list) and len(gxs) == 2
    np.testing.assert_allclose(float(val), (a * b).sum() * 2)
    np.testing.assert_allclose(float(aux["norm"]), (a * a).sum())
    np.testing.assert_allclose(np.asarray(gxs[0]), 2 * b)
    np.testing.assert_allclose(np.asarray(gxs[1]), 2 * a)
    np.testing.assert_allclose(float(gscale), (a * b).sum())
    g, aux2 = grad(f, has_aux=True)([a, b], 2.0)
    np.testing.assert_allclose(np.asarray(g[0]), 2 * b)


def test_int_inputs_and_errors(rng):
    with pytest.raises(xcs.XCSTypeError, match="allow_int"):
        grad(lambda x: (x * 2.0).sum())(np.arange(3))
    g = grad(lambda x, n: (x * n).sum(), argnums=(0, 1), allow_int=True)(np.ones(3), np.arange(3))
    np.testing.assert_array_equal(np.asarray(g[1]), 0)
    with pytest.raises(xcs.XCSTypeError, match="scalar"):
        grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(xcs.XCSTypeError, match="float"):
        grad(lambda x: (x > 0).sum())(np.ones(3))
    with pytest.raises(xcs.XCSError, match="argnums"):
        grad(lambda x: x.sum(), argnums="x")
    ask = mark_orchestration(lambda p: p)

    def uses_llm(x):
        ask("hello")
        return x.sum()
    with pytest.raises(xcs.XCSError, match="orchestration"):
        grad(uses_llm)(np.ones(2))

    def hidden(x):
        return HOLDER["ask"](x).sum()
    HOLDER["ask"] = mark_orchestration(lambda v: v)
    with pytest.raises(xcs.XCSError, match="orchestration.*split"):
        grad(hidden)(np.ones(2))


HOLDER = {}


def test_outputs_that_do_not_depend_on_the_arguments(rng):
    # a constant (or a loop of no steps) has a zero gradient, as in JAX; a
    # non-numeric output is an error
    x = rng.standard_normal(3)
    np.testing.assert_array_equal(np.asarray(grad(lambda x: 3.0)(x)), np.zeros(3))
    v, g = value_and_grad(lambda x, y: np.float32(2.0), argnums=(0, 1))(x, 1.5)
    assert float(np.asarray(v)) == 2.0 and np.asarray(g[0]).tolist() == [0.0] * 3 and float(np.asarray(g[1])) == 0
    np.testing.assert_array_equal(np.asarray(jit(vmap(grad(lambda x: 2.0)))(np.ones((4, 2)))), np.zeros((4, 2)))
    np.testing.assert_array_equal(
        np.asarray(grad(lambda xs: xcs.scan(lambda c, v: (c + (v * v).sum(), c), 1.0, xs)[0])(np.ones((0, 3)))),
        np.zeros((0, 3)))
    for bad in (None, "a", [1.0]):
        with pytest.raises(xcs.XCSTypeError, match="must return a float array"):
            grad(lambda x, bad=bad: bad)(x)
    with pytest.raises(xcs.XCSTypeError, match="float value"):
        grad(lambda x: 3)(x)


def test_composition_with_jit_and_itself(rng):
    x = r(rng, 4)

    def f(x):
        return (np.sin(x) * x).sum()

    want = np.cos(x) * x + np.sin(x)
    np.testing.assert_allclose(np.asarray(jit(grad(f))(x)), want, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grad(jit(f))(x)), want, rtol=1e-12)
    # second derivative of sum(sin(x) * x): d/dx (cos x * x + sin x) = 2 cos x - x sin x
    g2 = grad(lambda x: grad(f)(x).sum())(x)
    np.testing.assert_allclose(np.asarray(g2), 2 * np.cos(x) - x * np.sin(x), rtol=1e-10)


def test_gradient_is_compiled_once_and_fused(rng):
    g = grad(mlp_loss)
    p = {"w1": r(rng, 5, 7), "b1": r(rng, 7), "w2": r(rng, 7, 3), "b2": r(rng, 3)}
    x, y = r(rng, 6, 5), np.eye(3)[rng.integers(0, 3, 6)]
    for _ in range(3):
        g(p, x, y)
    st = g._xcs_jit.stats()
    assert st["traces"] == 1 and st["hits"] == 2
    assert st["fused_groups"] >= 3 and st["kernels_per_call"] < st["nodes"][0]
