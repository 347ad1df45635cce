#!/usr/bin/env python3
"""Sorting on the CPU: xcs's values-only sort (op SORT, a radix sort) vs the
argsort + take_along_axis it replaced, vs numpy.sort, in the same run.

Figures (method: benchmarks/README.md): numpy.sort along the last axis of
float32 / float64 / int32 arrays of one long row, a few hundred mid rows and
many short ones; and median of the long row.  Each result is checked
against numpy's before it is timed; each time is the best of --repeats runs
after a warm-up.

Usage: PYTHONPATH=build/python python benchmarks/bench_sort.py [--repeats N] [--quick] [--json PATH|-]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eager import bench_parser, machine_info, write_json  # noqa: E402
from bench_half import best  # noqa: E402


def main(argv=None):
    ap = bench_parser(__doc__, repeats=5)
    args = ap.parse_args(argv)
    import ember.xcs as xcs
    import ember.xcs.numpy as xnp

    shapes = [(1 << 12,), (8, 4096), (1000, 32)] if args.quick else [(1 << 22,), (512, 4096), (64000, 32)]
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float32, np.float64, np.int32):
        for shape in shapes:
            a = (rng.standard_normal(shape) * 1e3).astype(dtype)
            x = xcs.asarray(a)
            impls = {"xcs sort": lambda: np.asarray(xnp.sort(x)),
                     "xcs argsort + take": lambda: np.asarray(xnp.take_along_axis(x, xnp.argsort(x), -1)),
                     "numpy": lambda: np.sort(a)}
            want = np.sort(a)
            for impl, fn in impls.items():
                np.testing.assert_array_equal(fn(), want, err_msg=impl)
                rows.append({"figure": "sort", "dtype": np.dtype(dtype).name, "shape": list(shape), "impl": impl,
                             "ms": best(fn, args.repeats) * 1e3})
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    x = xcs.asarray(a)
    for impl, fn in {"xcs": lambda: float(np.asarray(xnp.median(x))), "numpy": lambda: float(np.median(a))}.items():
        assert fn() == float(np.median(a)), impl
        rows.append({"figure": "median", "dtype": "float32", "shape": list(a.shape), "impl": impl,
                     "ms": best(fn, args.repeats) * 1e3})
    print(f"{'figure':8} {'dtype':8} {'shape':14} {'impl':20} {'ms':>9}")
    for r in rows:
        print(f"{r['figure']:8} {r['dtype']:8} {str(tuple(r['shape'])):14} {r['impl']:20} {r['ms']:9.2f}")
    if args.json:
        write_json(args.json, {"machine": machine_info(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
