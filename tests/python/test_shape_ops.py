"""Shape and indexing ops: reshape, transpose, squeeze, expand_dims,
broadcast_to, take, concatenate/stack/split, basic and integer-array indexing,
and which of them are zero-copy views (np.shares_memory)."""
import numpy as np
import pytest

from conftest import assert_close, random_array


def _pair(xcs, rng, shape, dtype=np.float64):
    a = random_array(rng, shape, dtype)
    return a, xcs.asarray(a)


def shares(x, y):
    return np.shares_memory(np.asarray(x), np.asarray(y))


# ----------------------------------------------------------------- reshape

@pytest.mark.parametrize("shape,new", [((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, -1, 2)),
                                       ((6,), (1, 6, 1)), ((1,), ()), ((), (1, 1)), ((0, 3), (3, 0)),
                                       ((0, 3), (-1, 3)), ((24,), (2, 3, 4))])
def test_reshape(xnp, xcs, rng, shape, new):
    a, x = _pair(xcs, rng, shape)
    want = a.reshape(new)
    assert_close(xnp.reshape(x, new), want)
    assert_close(x.reshape(new), want)
    if len(new):
        assert_close(x.reshape(*new), want)
    # a contiguous input reshapes as a view
    r = x.reshape(new)
    if r.size:
        assert shares(r, x)


def test_reshape_non_contiguous_copies_correctly(xcs, rng):
    a, x = _pair(xcs, rng, (4, 6))
    t = x.T
    assert_close(t.reshape(-1), a.T.reshape(-1))
    assert_close(t.reshape(3, 8), a.T.reshape(3, 8))
    # a view is still possible when only size-1 axes are added
    r = t.reshape(6, 1, 4)
    assert_close(r, a.T.reshape(6, 1, 4))
    assert shares(r, x)
    s = x[:, ::2]
    assert_close(s.reshape(4, 3), a[:, ::2].reshape(4, 3))


def test_reshape_errors(xcs):
    x = xcs.asarray(np.zeros((2, 3)))
    with pytest.raises(xcs.XCSError) as ei:
        x.reshape(4, 2)
    assert "(4, 2)" in str(ei.value)
    with pytest.raises(xcs.XCSError):
        x.reshape(-1, -1)
    with pytest.raises(xcs.XCSError):
        x.reshape(5, -1)
    with pytest.raises((xcs.XCSError, TypeError)):
        x.reshape("a")


def test_flatten_ravel(xnp, xcs, rng):
    a, x = _pair(xcs, rng, (3, 4))
    assert_close(x.flatten(), a.flatten())
    assert_close(x.ravel(), a.ravel())
    assert_close(xnp.ravel(x.T), a.T.ravel())
    assert shares(x.ravel(), x)
    assert not shares(x.flatten(), x)  # flatten always copies, like numpy


# ----------------------------------------------------------------- transpose & co

@pytest.mark.parametrize("axes", [None, (0, 1, 2), (2, 0, 1), (1, 2, 0), (-1, 0, 1)])
def test_transpose(xnp, xcs, rng, axes):
    a, x = _pair(xcs, rng, (2, 3, 4))
    want = np.transpose(a, axes)
    got = xnp.transpose(x, axes)
    assert_close(got, want)
    assert shares(got, x)
    if axes is not None:
        assert_close(x.transpose(*axes), want)
        assert_close(x.transpose(axes), want)
        assert_close(xnp.permute_dims(x, axes), want)
    assert_close(x.T, a.T)
    assert x.T.strides == a.T.strides


def test_transpose_errors(xnp, xcs):
    x = xcs.asarray(np.zeros((2, 3, 4)))
    for bad in [(0, 1), (0, 0, 1), (0, 1, 3)]:
        with pytest.raises(xcs.XCSError):
            xnp.transpose(x, bad)


@pytest.mark.parametrize("shape,axis", [((1, 3, 1), None), ((1, 3, 1), 0), ((1, 3, 1), -1),
                                        ((1, 3, 1), (0, 2)), ((1,), None), ((3,), None)])
def test_squeeze(xnp, xcs, rng, shape, axis):
    a, x = _pair(xcs, rng, shape)
    want = np.squeeze(a, axis)
    assert_close(xnp.squeeze(x, axis), want)
    assert_close(x.squeeze(axis), want)
    assert shares(xnp.squeeze(x, axis), x)


def test_squeeze_error(xnp, xcs):
    x = xcs.asarray(np.zeros((1, 3)))
    with pytest.raises(xcs.XCSError) as ei:
        xnp.squeeze(x, 1)
    assert "squeeze" in str(ei.value).lower() or "size" in str(ei.value).lower()


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3, (0, 2)])
def test_expand_dims(xnp, xcs, rng, axis):
    a, x = _pair(xcs, rng, (3, 4))
    want = np.expand_dims(a, axis)
    got = xnp.expand_dims(x, axis)
    assert_close(got, want)
    assert shares(got, x)


def test_expand_dims_error(xnp, xcs):
    with pytest.raises(xcs.XCSError):
        xnp.expand_dims(xcs.asarray(np.zeros((3, 4))), 3)


@pytest.mark.parametrize("shape,target", [((3, 1), (2, 3, 4)), ((), (2, 2)), ((4,), (3, 4)),
                                          ((1,), (0,)), ((2, 1), (2, 0))])
def test_broadcast_to(xnp, xcs, rng, shape, target):
    a, x = _pair(xcs, rng, shape)
    want = np.broadcast_to(a, target)
    got = xnp.broadcast_to(x, target)
    assert_close(got, want)
    if got.size:
        assert shares(got, x)
        assert np.asarray(got).strides == want.strides


def test_broadcast_to_error(xnp, xcs):
    with pytest.raises(xcs.XCSShapeError) as ei:
        xnp.broadcast_to(xcs.asarray(np.zeros((3,))), (4,))
    assert "(3,)" in str(ei.value) and "(4,)" in str(ei.value)


# ----------------------------------------------------------------- take

@pytest.mark.parametrize("shape,idx,axis", [
    ((10,), [0, 3, -1, 3], None),
    ((4, 5), [[0, 1], [-1, 2]], 0),
    ((4, 5), [4, 0, -5], 1),
    ((4, 5), [7, 0, 19], None),
    ((2, 3, 4), [1], -1),
    ((3, 4), [], 0),
    ((3, 4), 2, 1),
])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_take(xnp, xcs, rng, shape, idx, axis, dtype):
    a = random_array(rng, shape, dtype)
    x = xcs.asarray(a)
    i = np.asarray(idx, dtype=np.int64)
    want = np.take(a, i, axis=axis)
    assert_close(xnp.take(x, xcs.asarray(i), axis=axis), want)
    assert_close(xnp.take(x, idx, axis=axis), want)


def test_take_int32_indices_and_views(xnp, xcs, rng):
    a, x = _pair(xcs, rng, (6, 7))
    i = np.array([5, -2, 0], np.int32)
    assert_close(xnp.take(x.T, xcs.asarray(i), axis=0), np.take(a.T, i, axis=0))
    assert_close(xnp.take(x[::-1], i, axis=1), np.take(a[::-1], i, axis=1))


def test_take_large(xnp, xcs, rng):
    a, x = _pair(xcs, rng, (1000, 64), np.float32)
    i = rng.integers(-1000, 1000, size=50_000)
    assert_close(xnp.take(x, i, axis=0), np.take(a, i, axis=0))


@pytest.mark.parametrize("bad", [10, -11, 100])
def test_take_out_of_range(xnp, xcs, bad):
    x = xcs.asarray(np.arange(10.0))
    with pytest.raises(xcs.XCSIndexError) as ei:
        xnp.take(x, [0, bad])
    assert isinstance(ei.value, IndexError)
    assert str(bad) in str(ei.value)


def test_take_float_indices_error(xnp, xcs):
    with pytest.raises((xcs.XCSTypeError, TypeError)):
        xnp.take(xcs.asarray(np.arange(4.0)), xcs.asarray(np.array([0.5])))


# numpy's integer-array indexing with several arrays (and integers apart from
# an array), recorded under jit: broadcasting, the dims' place (adjacent:
# where the first indexed axis was; separated: in front), negative indices,
# slices and newaxis around them.
_I, _J, _K = np.array([[0, 3], [-1, 2]]), np.array([1, -2]), np.array([[2], [5]])
ADVANCED_KEYS = {
    "i,j": lambda a: a[_I, _J], ":,i,j": lambda a: a[:, _I, _J], "i,:,j": lambda a: a[_I, :, _J],
    "i,j,k": lambda a: a[_I, _J, _K], "...,j,0": lambda a: a[..., _J, 0], "0,:,j": lambda a: a[0, :, _J],
    "1,j": lambda a: a[1, _J], ":,1,:,j": lambda a: a[:, 1, :, _J % 3], "None,i,j": lambda a: a[None, _I, _J],
    "i,None,j": lambda a: a[_I, None, _J], "i,j,::2": lambda a: a[_I, _J, ::2],
    "::-1,i,j,1:": lambda a: a[::-1, _I, _J, 1:], "lists": lambda a: a[[0, 1], [2, 3]],
    "2,list,:,list": lambda a: a[2, [1, 2], :, [0, 1]], "i,1:3,k,0": lambda a: a[_I, 1:3, _K, 0],
}


@pytest.mark.parametrize("name", list(ADVANCED_KEYS))
def test_several_array_indices_under_jit_and_grad(xcs, rng, name):
    f = ADVANCED_KEYS[name]
    a = rng.standard_normal((4, 5, 6, 3))
    want = f(a)
    got = xcs.jit(f)(a)
    assert tuple(got.shape) == want.shape
    np.testing.assert_array_equal(np.asarray(got), want)
    # the gradient adds w back at each picked element (repeats add up)
    w = rng.standard_normal(want.shape)
    ref = np.zeros_like(a)
    np.add.at(ref.reshape(-1), f(np.arange(a.size).reshape(a.shape)).reshape(-1), w.reshape(-1))
    g = xcs.grad(lambda a: (f(a) * w).sum())(a)
    np.testing.assert_allclose(np.asarray(g), ref, rtol=1e-12, atol=1e-12)


def test_traced_index_arrays(xcs, rng):
    a = rng.standard_normal((4, 5, 6))
    i, j = rng.integers(-4, 4, (3, 2)), rng.integers(-6, 6, (2,))
    np.testing.assert_array_equal(np.asarray(xcs.jit(lambda a, p, q: a[p, :, q])(a, i, j)), a[i, :, j])
    # the cross-entropy pick: one label per row
    logp, y = rng.standard_normal((8, 10)), rng.integers(0, 10, 8)
    loss = lambda lp, y: -lp[np.arange(lp.shape[0]), y].mean()  # noqa: E731
    np.testing.assert_allclose(float(np.asarray(xcs.jit(loss)(logp, y))), loss(logp, y), rtol=1e-12)
    g = np.zeros_like(logp)
    g[np.arange(8), y] = -1 / 8
    np.testing.assert_allclose(np.asarray(xcs.grad(loss)(logp, y)), g, rtol=1e-12)
    # per-example labels under vmap
    got = xcs.vmap(lambda lp, y: lp[np.arange(2), y])(logp.reshape(4, 2, 10), y.reshape(4, 2))
    np.testing.assert_array_equal(np.asarray(got), logp[np.arange(8), y].reshape(4, 2))


def test_several_array_indices_out_of_range(xcs, rng):
    a = rng.standard_normal((4, 5))
    with pytest.raises(xcs.XCSIndexError, match="index 9 is out of bounds for axis 1 with size 5"):
        xcs.jit(lambda a: a[np.array([0, 1]), np.array([0, 9])])(a)
    with pytest.raises(xcs.XCSIndexError, match="out of bounds"):  # traced: found when the program runs
        xcs.jit(lambda a, p, q: a[p, q])(a, np.array([0, 1]), np.array([7, 0]))
    with pytest.raises(xcs.XCSIndexError, match="too many indices"):
        xcs.jit(lambda a: a[np.array([0]), np.array([0]), 0])(a)
    with pytest.raises(xcs.XCSTracerError, match="boolean mask"):
        xcs.jit(lambda a: a[a > 0])(a)


# ----------------------------------------------------------------- concat / stack / split

@pytest.mark.parametrize("shapes,axis", [([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 0)], 1),
                                         ([(2, 3), (2, 3)], -1), ([(0, 3), (2, 3)], 0),
                                         ([(5,)], 0), ([(2, 3), (1, 3)], None)])
def test_concatenate(xnp, xcs, rng, shapes, axis):
    arrs = [random_array(rng, s, np.float32) for s in shapes]
    want = np.concatenate(arrs, axis=axis)
    assert_close(xnp.concatenate([xcs.asarray(a) for a in arrs], axis=axis), want)


def test_concatenate_promotes_and_views(xnp, xcs, rng):
    a = random_array(rng, (2, 3), np.int32)
    b = random_array(rng, (3, 2), np.float32)
    want = np.concatenate([a, b.T], axis=0)
    assert_close(xnp.concatenate([xcs.asarray(a), xcs.asarray(b).T], axis=0), want)


def test_concatenate_errors(xnp, xcs):
    a = xcs.asarray(np.zeros((2, 3)))
    b = xcs.asarray(np.zeros((2, 4)))
    with pytest.raises(xcs.XCSShapeError) as ei:
        xnp.concatenate([a, b], axis=0)
    assert "(2, 3)" in str(ei.value) and "(2, 4)" in str(ei.value)
    with pytest.raises(xcs.XCSError):
        xnp.concatenate([a, xcs.asarray(np.zeros(3))])
    with pytest.raises((xcs.XCSError, ValueError)):
        xnp.concatenate([])
    with pytest.raises(xcs.XCSError):
        xnp.concatenate([a, a], axis=2)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(xnp, xcs, rng, axis):
    arrs = [random_array(rng, (3, 4), np.float64) for _ in range(5)]
    assert_close(xnp.stack([xcs.asarray(a) for a in arrs], axis=axis), np.stack(arrs, axis=axis))


def test_stack_many_and_errors(xnp, xcs):
    arrs = [np.full((2,), i, np.int64) for i in range(300)]  # more than any fixed cap
    assert_close(xnp.stack([xcs.asarray(a) for a in arrs]), np.stack(arrs))
    with pytest.raises(xcs.XCSShapeError):
        xnp.stack([xcs.asarray(np.zeros(2)), xcs.asarray(np.zeros(3))])


@pytest.mark.parametrize("shape,sections,axis", [((6,), 3, 0), ((6, 4), 2, 1), ((6, 4), [1, 4], 0),
                                                 ((6, 4), [0, 2, 2, 10], 0), ((6,), [], 0), ((4, 6), 3, -1)])
def test_split(xnp, xcs, rng, shape, sections, axis):
    a, x = _pair(xcs, rng, shape)
    want = np.split(a, sections, axis=axis)
    got = xnp.split(x, sections, axis=axis)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w)
        if g.size:
            assert shares(g, x)


def test_split_uneven_error(xnp, xcs):
    with pytest.raises(xcs.XCSError) as ei:
        xnp.split(xcs.asarray(np.arange(7.0)), 3)
    assert "3" in str(ei.value)


# ----------------------------------------------------------------- indexing

INDEXES = [
    (1,), (-1,), (slice(1, 3),), (slice(None, None, 2),), (slice(None, None, -1),),
    (slice(1, 3), slice(None, None, 2), None, Ellipsis),
    (Ellipsis, 1), (None,), (1, 2, 3), (Ellipsis,), (slice(5, 1),), (slice(-100, 100),),
    (0, slice(None), -1), (Ellipsis, None, slice(None, None, -2)), (slice(3, 0, -2), 0),
    (),
]


@pytest.mark.parametrize("index", INDEXES, ids=[repr(i) for i in INDEXES])
def test_basic_indexing(xcs, rng, index):
    a, x = _pair(xcs, rng, (4, 5, 6))
    want = a[index]
    got = x[index]
    assert_close(got, want)
    if isinstance(want, np.ndarray) and want.size and np.shares_memory(want, a):
        assert shares(got, x), "basic indexing returns a view"
        assert np.asarray(got).strides == want.strides


def test_index_scalar_result(xcs, rng):
    a, x = _pair(xcs, rng, (3, 4))
    v = x[1, 2]
    assert float(np.asarray(v)) == a[1, 2]
    assert v.shape == ()
    assert x[1, 2].item() == a[1, 2].item()


@pytest.mark.parametrize("bad", [(4,), (-5,), (0, 0, 0, 0), (0, 7)])
def test_index_errors(xcs, bad):
    x = xcs.asarray(np.zeros((4, 5, 6)))
    with pytest.raises((xcs.XCSIndexError, IndexError)):
        x[bad]


def test_index_bad_type(xcs):
    x = xcs.asarray(np.zeros((4, 5)))
    for bad in ("a", 1.5, {1: 2}):
        with pytest.raises((xcs.XCSTypeError, TypeError, IndexError)):
            x[bad]


@pytest.mark.parametrize("index", [
    [0, 2, -1],
    (np.array([0, 3]),),
    (slice(None), np.array([[0, 1], [4, 4]])),
    (np.array([1, 0]), np.array([2, 3])),
    (1, [0, 0, 2]),
])
def test_integer_array_indexing(xcs, rng, index):
    a, x = _pair(xcs, rng, (4, 5))
    want = a[index]
    got = x[index]
    assert_close(got, want)


def test_integer_array_index_out_of_range(xcs):
    x = xcs.asarray(np.zeros((4, 5)))
    with pytest.raises((xcs.XCSIndexError, IndexError)):
        x[[0, 4]]


def test_boolean_mask_indexing(xcs, rng):
    a, x = _pair(xcs, rng, (10,))
    m = a > 0
    try:
        got = x[m]
    except xcs.XCSError as e:  # unsupported is acceptable if it says so; wrong values are not
        assert "bool" in str(e).lower() or "mask" in str(e).lower()
        return
    assert_close(got, a[m])


MASK_KEYS = {  # numpy masks (known when traced) with the other index kinds
    "axis1": lambda m3, m4, m23: (slice(None), m3),
    "ellipsis": lambda m3, m4, m23: (Ellipsis, m4),
    "2d": lambda m3, m4, m23: (m23,),
    "int_before": lambda m3, m4, m23: (1, m3),
    "newaxis": lambda m3, m4, m23: (None, m3[:2]),
    "with_array": lambda m3, m4, m23: (slice(None), m3, [0, 3]),
    "apart": lambda m3, m4, m23: (m3[:2], slice(None), np.array([[0], [3]])),
    "list": lambda m3, m4, m23: (slice(None), slice(None), [True, False, False, True]),
}


@pytest.mark.parametrize("name", list(MASK_KEYS))
def test_boolean_mask_of_a_traced_array(xcs, rng, name):
    """A mask whose values are known (numpy's, a list) indexes a traced Array as
    the index arrays of its nonzero() (numpy's reading): jit, grad and vmap
    see through it; a wrong-sized mask is numpy's IndexError."""
    a = rng.standard_normal((2, 3, 4))
    m3, m4 = np.array([True, True, False])[rng.permutation(3)], rng.random(4) > 0.5  # m3: two, to meet [0, 3]
    m23 = rng.random((2, 3)) > 0.5
    key = MASK_KEYS[name](m3, m4, m23)
    want = a[key]
    got = xcs.jit(lambda x: x[key])(a)
    assert_close(got, want)
    g = np.asarray(xcs.grad(lambda x: (x[key] ** 2).sum())(a))
    ref = np.zeros_like(a)
    np.add.at(ref, key, 2 * a[key])
    assert_close(g, ref)


def test_boolean_mask_errors_under_jit(xcs):
    a = np.ones((2, 3))
    with pytest.raises(IndexError, match="boolean index did not match indexed array along axis 1"):
        xcs.jit(lambda x: x[:, np.array([True, False])])(a)
    with pytest.raises(IndexError, match="boolean index did not match"):
        xcs.jit(lambda x: x[np.array([True, False, True])])(a)
    with pytest.raises(xcs.XCSTracerError, match="boolean mask"):  # its values are traced: the shape depends on them
        xcs.jit(lambda x: x[x > 0])(a)
    np.testing.assert_array_equal(np.asarray(xcs.vmap(lambda x: x[np.array([True, False, True])])(a)), a[:, [0, 2]])


def test_immutable(xcs):
    x = xcs.asarray(np.zeros(3))
    with pytest.raises(xcs.XCSError):
        x[0] = 1.0


def test_len_iter_tolist(xcs, rng):
    a, x = _pair(xcs, rng, (3, 2))
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3
    for r, w in zip(rows, a):
        assert_close(r, w)
    assert x.tolist() == a.tolist()
    with pytest.raises(TypeError):
        len(xcs.asarray(np.float64(1.0)))


def test_attributes(xcs, rng):
    a = random_array(rng, (3, 4), np.float32)
    x = xcs.asarray(a)
    assert x.shape == (3, 4)
    assert x.ndim == 2
    assert x.size == 12
    assert x.dtype == np.float32
    assert x.itemsize == 4
    assert x.nbytes == 48
    assert x.strides == (16, 4)
    assert x.device == "cpu"
    assert repr(xcs.asarray(np.array([1.0, 2.0], np.float32))) == "Array([1., 2.], dtype=float32)"


def test_scalar_conversions(xcs):
    x = xcs.asarray(np.array([2.5]))
    assert float(x) == 2.5
    assert int(xcs.asarray(np.array([7]))) == 7
    assert bool(xcs.asarray(np.array([True])))
    assert [10, 20, 30][xcs.asarray(np.array(1))] == 20
    with pytest.raises((TypeError, ValueError, xcs.XCSError)):
        float(xcs.asarray(np.zeros(2)))
    with pytest.raises((TypeError, ValueError, xcs.XCSError)):
        bool(xcs.asarray(np.zeros(2)))


def test_copy_is_independent(xcs, rng):
    a, x = _pair(xcs, rng, (3, 4))
    c = x.copy()
    assert_close(c, a)
    assert not shares(c, x)


def test_ravel_and_flatten_check_a_positional_order():
    import ember.xcs as xcs

    a = xcs.asarray(np.arange(6.0).reshape(2, 3))
    assert np.asarray(a.ravel("C")).tolist() == [0, 1, 2, 3, 4, 5]
    for call in (lambda: a.ravel("F"), lambda: a.flatten("F"), lambda: a.ravel(order="F")):
        assert np.asarray(call()).tolist() == [0, 3, 1, 4, 2, 5]
    with pytest.raises(TypeError):
        a.ravel("C", "C")
    with pytest.raises(xcs.XCSValueError, match="order must be one of"):
        a.ravel("Z")


ORDERS = {
    "reshape_F": lambda x: x.reshape(4, 6, order="F"), "reshape_F_infer": lambda x: x.reshape((3, -1), order="F"),
    "np_reshape_F": lambda x: np.reshape(x, (6, 4), order="F"), "ravel_F": lambda x: x.ravel("F"),
    "flatten_F": lambda x: x.flatten(order="F"), "np_ravel_F": lambda x: np.ravel(x, order="F"),
    "reshape_F_1d": lambda x: x[0].reshape(12, order="F"),
}
LAYOUT = {  # 'A' and 'K' follow the memory layout: concrete Arrays only
    "ravel_K_T": lambda x: x.T.ravel("K"), "ravel_A_T": lambda x: x.T.ravel("A"), "np_ravel_A": lambda x: np.ravel(x.T, order="A"),
    "ravel_K_perm": lambda x: x.transpose(1, 0, 2).ravel(order="K"), "reshape_A": lambda x: x.reshape(24, order="A"),
    "reshape_A_T": lambda x: x.T.reshape(24, order="A"), "ravel_K_flip": lambda x: x[::-1].ravel("K"),
}


@pytest.mark.parametrize("name", list(ORDERS) + list(LAYOUT))
def test_fortran_and_layout_orders(name, rng):
    """order='F' (the first index fastest) eagerly, under jit and in gradients; 'A' and 'K' as
    numpy's from the Array's strides; under jit (no layout) 'A' and 'K' are refused."""
    import ember.xcs as xcs

    a = rng.standard_normal((2, 3, 4))
    f = {**ORDERS, **LAYOUT}[name]
    want = f(a)
    np.testing.assert_array_equal(np.asarray(f(xcs.asarray(a))), want)
    if name in LAYOUT:
        with pytest.raises(xcs.XCSError, match="memory layout"):
            xcs.jit(f)(a)
        return
    np.testing.assert_array_equal(np.asarray(xcs.jit(f)(a)), want)
    w = rng.standard_normal(want.shape)
    g = np.asarray(xcs.grad(lambda x: (f(x) * w).sum())(a))
    np.testing.assert_allclose(g, _adjoint(f, w, a.shape), rtol=1e-12)


def _adjoint(f, w, shape):
    """The gradient of sum(f(x) * w) for a linear rearrangement f: f's transpose applied to w."""
    idx = f(np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)).astype(int)
    g = np.zeros(int(np.prod(shape)))
    np.add.at(g, idx.ravel(), w.ravel())
    return g.reshape(shape)


def test_var_and_std_past_the_sample_size_are_nan_like_numpy():
    import warnings

    import ember.xcs as xcs

    for v in ([1.0, 1.0], [3.0], [1.0, 2.0]):
        for ddof in (1, 2, 3):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for fn in (np.var, np.std):
                    want = fn(np.array(v), ddof=ddof)
                    got = float(np.asarray(fn(xcs.asarray(np.array(v)), ddof=ddof)))
                    assert (np.isnan(want) and np.isnan(got)) or got == want, (v, ddof, fn, got, want)


@pytest.mark.parametrize("dt", [np.bool_, np.float16, np.int32, np.float32, np.int64, np.float64])
def test_scalar_gather_fast_path(dt, rng):
    """take of single elements (a 1-D table, or the flattened array): one parallel loop that checks
    and copies, for every element size, int32 and int64 indices, big enough to run on the threads;
    a bad index still raises with its value."""
    import ember.xcs as xcs

    table = (rng.standard_normal(101) * 50).astype(dt)
    for idt in (np.int64, np.int32):
        idx = rng.integers(0, 101, 200_000).astype(idt)
        np.testing.assert_array_equal(np.asarray(xcs.numpy.take(table, idx)), np.take(table, idx))
        np.testing.assert_array_equal(np.asarray(xcs.jit(lambda t, i: xcs.numpy.take(t, i))(table, idx)),
                                      np.take(table, idx))
    grid = (rng.standard_normal((30, 40)) * 50).astype(dt)
    flat = rng.integers(0, 1200, 5000)
    np.testing.assert_array_equal(np.asarray(xcs.numpy.take(grid, flat)), np.take(grid, flat))  # axis=None
    np.testing.assert_array_equal(np.asarray(xcs.numpy.take(grid.T, flat)), np.take(grid.T, flat))  # strided
    bad = np.zeros(100_000, np.int64)
    bad[77_777] = 101
    with pytest.raises(IndexError, match="out of bounds"):  # (a device does not name the value)
        xcs.jit(lambda t, i: xcs.numpy.take(t, i))(table, bad)
