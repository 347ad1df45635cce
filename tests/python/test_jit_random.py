"""Random programs: jit == eager == numpy (float64), over random op chains.

A program is a list of steps built from a seed: unary / binary (with random
broadcastable operand shapes) / reductions / matmul / reshape / transpose /
broadcast / slicing / where, applied to a value whose shape the generator
tracks.  Each program is run three ways: numpy on float64 arrays, eagerly on
ember Arrays (the same code: plain numpy calls dispatch to xcs) and under
@jit (traced once, replayed on fresh inputs).  Runtime is bounded (~a few s).
"""

import numpy as np
import pytest

import ember.xcs as xcs
from ember.xcs import jit

UNARY = [np.tanh, np.sin, np.cos, np.negative, np.abs, np.square,
         lambda v: np.exp(-np.abs(v)), lambda v: np.sqrt(np.abs(v) + 1), lambda v: np.log1p(np.abs(v))]
BINARY = [np.add, np.subtract, np.multiply, np.maximum, np.minimum,
          lambda a, b: a / (np.abs(b) + 1.0)]


def make_program(seed, n_steps=8):
    """(input shapes, fn(xs) -> output) for a random program."""
    g = np.random.default_rng(seed)
    nd = int(g.integers(1, 4))
    shape = [int(s) for s in g.integers(1, 5, size=nd)]
    in_shapes = [tuple(shape)]
    steps = []
    cur = list(shape)
    for _ in range(n_steps):
        kind = g.choice(["unary", "binary", "binary", "reduce", "matmul", "reshape", "transpose",
                         "broadcast", "slice", "where", "scalar"])
        if kind == "unary":
            steps.append(("unary", int(g.integers(len(UNARY)))))
        elif kind == "binary":
            # a broadcastable operand: drop leading dims, set some dims to 1
            k = int(g.integers(0, len(cur) + 1))
            oshape = [1 if g.random() < 0.3 else d for d in cur[len(cur) - k:]]
            steps.append(("binary", int(g.integers(len(BINARY))), len(in_shapes), bool(g.random() < 0.5)))
            in_shapes.append(tuple(oshape))
        elif kind == "reduce" and len(cur) > 1:
            axis = int(g.integers(len(cur)))
            keep = bool(g.random() < 0.5)
            steps.append(("reduce", str(g.choice(["sum", "mean", "max", "min"])), axis, keep))
            cur = cur[:axis] + ([1] if keep else []) + cur[axis + 1:]
        elif kind == "matmul":
            n = int(g.integers(1, 5))
            steps.append(("matmul", len(in_shapes)))
            in_shapes.append((cur[-1], n))
            cur = cur[:-1] + [n]
        elif kind == "reshape":
            steps.append(("reshape", -1 if g.random() < 0.5 else None))
            cur = [int(np.prod(cur))] if steps[-1][1] == -1 else cur[::-1]
            if steps[-1][1] is None:
                steps[-1] = ("reshape", tuple(cur))
        elif kind == "transpose":
            steps.append(("transpose",))
            cur = cur[::-1]
        elif kind == "broadcast" and len(cur) < 4:
            lead = int(g.integers(1, 4))
            steps.append(("broadcast", tuple([lead] + cur)))
            cur = [lead] + cur
        elif kind == "slice" and cur[0] > 1:
            steps.append(("slice",))
            cur = [cur[0] - 1] + cur[1:]
        elif kind == "where":
            steps.append(("where",))
        elif kind == "scalar":
            steps.append(("scalar", float(np.round(g.normal(), 3))))

    def program(*xs):
        v = xs[0]
        for st in steps:
            op = st[0]
            if op == "unary":
                v = UNARY[st[1]](v)
            elif op == "binary":
                o = xs[st[2]]
                v = BINARY[st[1]](v, o) if st[3] else BINARY[st[1]](o, v)
            elif op == "reduce":
                v = getattr(np, st[1])(v, axis=st[2], keepdims=st[3])
            elif op == "matmul":
                v = v @ xs[st[1]]
            elif op == "reshape":
                v = v.reshape(st[1])
            elif op == "transpose":
                v = v.T
            elif op == "broadcast":
                v = np.broadcast_to(v, st[1])
            elif op == "slice":
                v = v[1:]
            elif op == "where":
                v = np.where(v > 0, v, v * 0.5)
            elif op == "scalar":
                v = v * st[1] + 1
        return v

    return in_shapes, program


@pytest.mark.parametrize("seed", range(60))
def test_random_program(seed):
    in_shapes, program = make_program(seed)
    f = jit(program)
    g = np.random.default_rng(1000 + seed)
    for trial in range(2):  # the second trial replays the cached graph on fresh inputs
        xs = [g.standard_normal(s) for s in in_shapes]
        want = program(*xs)
        eager = program(*[xcs.asarray(x) for x in xs])
        got = f(*xs)
        assert isinstance(got, xcs.Array)
        assert got.shape == np.shape(want) == eager.shape
        assert got.dtype == eager.dtype == np.float64
        np.testing.assert_allclose(np.asarray(got), np.asarray(eager), rtol=1e-12, atol=1e-12)  # same kernels (fusion may reorder)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-9)
    s = f.stats()
    assert s["traces"] == 1 and s["hits"] == 1


@pytest.mark.parametrize("seed", range(10))
def test_random_program_float32(seed):
    in_shapes, program = make_program(500 + seed, n_steps=6)
    f = jit(program)
    g = np.random.default_rng(seed)
    xs = [g.standard_normal(s).astype(np.float32) for s in in_shapes]
    got, eager = f(*xs), program(*[xcs.asarray(x) for x in xs])
    assert got.dtype == eager.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got), np.asarray(eager), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got), program(*[x.astype(np.float64) for x in xs]), rtol=1e-4, atol=1e-4)


def _nvrtc_available():
    from ember.xcs import _xcs
    try:
        _xcs._nvrtc_compile('extern "C" __global__ void k() {}')
        return True
    except xcs.XCSError:
        return False


@pytest.mark.skipif(not _nvrtc_available(), reason="NVRTC (from the CUDA toolkit) is not installed")
def test_random_programs_lower_to_cuda_that_nvrtc_compiles():
    """Every fused group of every program above (float64 and float32) lowers
    to CUDA C that NVRTC compiles (NVRTC needs no GPU).  Kernels are compiled
    in a few batches: the prelude once, each kernel renamed."""
    from ember.xcs import _xcs

    kernels = []
    for seed, dtype, steps in [(s, np.float64, 8) for s in range(60)] + [(500 + s, np.float32, 6) for s in range(10)]:
        in_shapes, program = make_program(seed, n_steps=steps)
        f = jit(program)
        f(*[np.ones(s, dtype) for s in in_shapes])
        (entry,) = f._cache.values()
        for k in entry.graph.cuda_sources():
            src = k["source"]
            assert "#include" not in src
            kernels.append(src)
    assert len(kernels) >= 60
    cut = lambda s: min(i for i in (s.find('extern "C"'), s.find("#define XCS_COMBINE")) if i >= 0)
    prelude = kernels[0][:cut(kernels[0])]
    for b in range(0, len(kernels), 40):
        body = "".join(src[cut(src):].replace("xcs_fused(", f"xcs_fused_{b + i}(")
                       for i, src in enumerate(kernels[b:b + 40]))
        assert all(src[:cut(src)] == prelude for src in kernels[b:b + 40])
        info = _xcs._nvrtc_compile(prelude + body, 90, b == 0)  # the first batch all the way to a cubin
        assert info["bytes"] > 0 and info["cubin"] == (b == 0)
