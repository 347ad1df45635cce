"""ember.xcs.nn — neural-network functions computed by XCS.

``relu``, ``sigmoid``, ``gelu`` (exact erf form), ``erf``, ``rsqrt`` are
elementwise primitives.  ``softmax``, ``log_softmax`` and ``logsumexp`` are
composites written once in the C core from primitives, numerically stable
(the maximum is subtracted before exponentiating).
"""

from ember.xcs import _xcs

__all__ = ["relu", "sigmoid", "gelu", "erf", "rsqrt", "softmax", "log_softmax", "logsumexp"]


def relu(x):
    """max(x, 0) elementwise, in x's dtype."""
    return _xcs._unary("relu", x)


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise (integers compute in float64)."""
    return _xcs._unary("sigmoid", x)


def gelu(x):
    """x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))): the exact form, not the tanh approximation."""
    return _xcs._unary("gelu", x)


def erf(x):
    """The error function, elementwise."""
    return _xcs._unary("erf", x)


def rsqrt(x):
    """1 / sqrt(x) elementwise."""
    return _xcs._unary("rsqrt", x)


def _flat_apply(fn, x):
    x = _xcs._asarray(x)
    return _xcs._reshape(fn(_xcs._reshape(x, -1), 0), x.shape)


def softmax(x, axis=-1):
    """exp(x - max) / sum(exp(x - max)) along axis (None: over all elements)."""
    if axis is None:
        return _flat_apply(_xcs._softmax, x)
    return _xcs._softmax(x, axis)


def log_softmax(x, axis=-1):
    """x - logsumexp(x, axis, keepdims=True) along axis (None: over all elements)."""
    if axis is None:
        return _flat_apply(_xcs._log_softmax, x)
    return _xcs._log_softmax(x, axis)


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over axis, computed as max + log(sum(exp(x - max)))."""
    return _xcs._logsumexp(x, axis, keepdims)
