"""ember.xcs.random — counter-based random numbers (Philox-4x32-10), JAX-style keys.

A key is an int64 Array of shape (2,) holding two 32-bit words.  Drawing is a
pure function of (key, shape, dtype): the same key gives the same numbers, on
the CPU and the GPU alike, and ``split`` derives independent keys.  A key may
be traced (an argument of a jitted function, a scan carry, a vmapped row of
``split(key, n)``): the draw then runs with the program, one compile serving
every key, giving the numbers that key gives outside jit::

    k = random.key(0)
    k1, k2 = random.split(k)
    x = random.normal(k1, (3, 4))
"""

from ember.xcs import _xcs

__all__ = ["key", "split", "uniform", "normal"]


def key(seed):
    """A key from an integer seed (its low 64 bits; negative seeds wrap)."""
    return _xcs._random_key(seed)


def split(key, num=2):
    """num new independent keys, shape (num, 2); key i does not depend on num."""
    return _xcs._random_split(key, num)


def uniform(key, shape=(), dtype="float32", minval=0.0, maxval=1.0):
    """Uniform samples in [minval, maxval) of the given shape and float dtype."""
    return _xcs._random_uniform(key, shape, dtype, minval, maxval)


def normal(key, shape=(), dtype="float32"):
    """Standard normal samples of the given shape and float dtype."""
    return _xcs._random_normal(key, shape, dtype)
