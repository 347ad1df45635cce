"""ember.xcs.api.pytree — nested containers of arrays ("pytrees") for ``jit``.

A pytree is a leaf or one of these containers of pytrees:

* ``tuple``, ``list``, ``None`` (a container with no children);
* ``dict`` — children in sorted key order (keys of mixed, unorderable types
  are ordered by ``(type name, repr)``), so ``{"b": 1, "a": 2}`` and
  ``{"a": 2, "b": 1}`` have the same structure;
* ``namedtuple`` instances (rebuilt with the same class);
* dataclass instances: every dataclass is a pytree whose children are all
  its fields (rebuilt with ``cls(**fields)`` for ``init`` fields);
  :func:`register_dataclass` picks which fields are data (traced children)
  and which are metadata (part of the structure, compared by value and so
  hashable), like ``jax.tree_util.register_dataclass``.

Everything else is a leaf.  :func:`flatten` returns ``(leaves, treedef)``;
``treedef`` is a hashable, comparable value (it is part of ``jit``'s cache
key) and :func:`unflatten` rebuilds the container from it.
"""

import dataclasses

__all__ = ["flatten", "unflatten", "leaf_paths", "register_dataclass"]

_LEAF = "*"
_NONE = ("None",)
_REGISTERED = {}  # dataclass type -> (data field names, meta field names)


def register_dataclass(cls=None, *, data_fields=None, meta_fields=()):
    """Registers dataclass ``cls`` as a pytree node (usable as a decorator).

    ``data_fields`` (default: every field not in ``meta_fields``) are children,
    traced under ``jit``; ``meta_fields`` are static: part of the structure,
    compared by value (they must be hashable).
    """
    if cls is None:
        return lambda c: register_dataclass(c, data_fields=data_fields, meta_fields=meta_fields)
    if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
        raise TypeError(f"register_dataclass: {cls!r} is not a dataclass type")
    names = [f.name for f in dataclasses.fields(cls)]
    meta = tuple(meta_fields)
    data = tuple(data_fields) if data_fields is not None else tuple(n for n in names if n not in meta)
    unknown = [n for n in data + meta if n not in names]
    if unknown:
        raise ValueError(f"register_dataclass({cls.__name__}): no such fields {unknown}")
    _REGISTERED[cls] = (data, meta)
    return cls


def _dict_keys(d):
    try:
        return tuple(sorted(d))
    except TypeError:
        return tuple(sorted(d, key=lambda k: (type(k).__name__, repr(k))))


def _dataclass_spec(cls):
    spec = _REGISTERED.get(cls)
    if spec is None:
        spec = (tuple(f.name for f in dataclasses.fields(cls)), ())
    return spec


def _flatten(x, leaves):
    t = type(x)
    if t is tuple or t is list:
        return (t, tuple(_flatten(v, leaves) for v in x))
    if t is dict:
        keys = _dict_keys(x)
        return (dict, keys, tuple(_flatten(x[k], leaves) for k in keys))
    if x is None:
        return _NONE
    if isinstance(x, tuple) and hasattr(t, "_fields"):  # namedtuple
        return (t, tuple(_flatten(v, leaves) for v in x))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        data, meta = _dataclass_spec(t)
        return ("dataclass", t, data, tuple((m, getattr(x, m)) for m in meta),
                tuple(_flatten(getattr(x, n), leaves) for n in data))
    leaves.append(x)
    return _LEAF


def flatten(tree):
    """``(leaves, treedef)`` of a pytree (leaves in a fixed, documented order)."""
    leaves = []
    return leaves, _flatten(tree, leaves)


def _unflatten(spec, it):
    if spec == _LEAF:
        return next(it)
    if spec == _NONE:
        return None
    kind = spec[0]
    if kind is tuple:
        return tuple(_unflatten(s, it) for s in spec[1])
    if kind is list:
        return [_unflatten(s, it) for s in spec[1]]
    if kind is dict:
        return {k: _unflatten(s, it) for k, s in zip(spec[1], spec[2])}
    if kind == "dataclass":
        _, cls, data, meta, children = spec
        values = dict(meta)
        values.update((n, _unflatten(s, it)) for n, s in zip(data, children))
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        obj = cls(**{k: v for k, v in values.items() if k in init})
        for k, v in values.items():
            if k not in init:
                object.__setattr__(obj, k, v)
        return obj
    return kind(*(_unflatten(s, it) for s in spec[1]))  # namedtuple


def unflatten(treedef, leaves):
    """The pytree of structure ``treedef`` holding ``leaves`` (in flatten's order)."""
    it = iter(leaves)
    return _unflatten(treedef, it)


def leaf_paths(tree, prefix=""):
    """Paths of the leaves (``"[0]['w'].bias"``), in flatten's order, for error messages."""
    out = []

    def walk(x, p):
        t = type(x)
        if t is tuple or t is list or (isinstance(x, tuple) and hasattr(t, "_fields")):
            for i, v in enumerate(x):
                walk(v, f"{p}[{i}]")
        elif t is dict:
            for k in _dict_keys(x):
                walk(x[k], f"{p}[{k!r}]")
        elif x is None:
            pass
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            for n in _dataclass_spec(t)[0]:
                walk(getattr(x, n), f"{p}.{n}")
        else:
            out.append(p)

    walk(tree, prefix)
    return out
