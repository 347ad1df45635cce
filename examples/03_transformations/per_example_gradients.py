"""grad, vmap(grad) and scan on a small model.

Trains a 2-layer MLP for a few steps with jit(value_and_grad), computes the
gradient of every example at once with vmap(grad) and checks it against a
loop, and runs an RNN over a sequence with scan.
Run: python examples/03_transformations/per_example_gradients.py
"""
import time

import numpy as np

from ember.xcs import grad, jit, nn, scan, value_and_grad, vmap


def loss(params, x, y):
    h = np.tanh(x @ params["w1"] + params["b1"])
    return -(nn.log_softmax(h @ params["w2"], axis=-1) * y).sum(axis=-1).mean()


rng = np.random.default_rng(0)
params = {"w1": rng.standard_normal((8, 16)) * 0.3, "b1": np.zeros(16), "w2": rng.standard_normal((16, 3)) * 0.3}
x = rng.standard_normal((64, 8))
y = np.eye(3)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)]


@jit
def step(params, x, y):
    val, g = value_and_grad(loss)(params, x, y)
    return {k: params[k] - 0.5 * g[k] for k in params}, val


first = None
for i in range(50):
    params, val = step(params, x, y)
    first = float(val) if first is None else first
print(f"loss {first:.3f} -> {float(val):.3f} after 50 steps")
assert float(val) < first

one = lambda p, xi, yi: loss(p, xi[None, :], yi[None, :])  # noqa: E731
t0 = time.perf_counter()
per = vmap(grad(one), in_axes=(None, 0, 0))(params, x, y)
t1 = time.perf_counter()
loop = [grad(one)(params, x[i], y[i]) for i in range(len(x))]
t2 = time.perf_counter()
err = max(float(np.abs(np.asarray(per[k]) - np.stack([np.asarray(g[k]) for g in loop])).max()) for k in params)
print(f"per-example gradients of {len(x)} examples: vmap(grad) {1e3 * (t1 - t0):.1f} ms (first call), "
      f"loop {1e3 * (t2 - t1):.1f} ms; max abs difference {err:.1e}")
assert err < 1e-10

W, U = rng.standard_normal((4, 4)) * 0.4, rng.standard_normal((2, 4)) * 0.4
h, ys = scan(lambda h, xt: (np.tanh(h @ W + xt @ U),) * 2, np.zeros(4), rng.standard_normal((20, 2)))
assert np.allclose(np.asarray(ys)[-1], np.asarray(h))
print("ok: training step, per-example gradients and scan agree with their references")
