"""xcs-bench — how fast XCS is, against its peers and the machine's limits.

Runs the workloads (tensor, orchestration, mixed), each figure timed the same
way for xcs and every installed peer (numpy, PyTorch eager and
torch.compile, JAX jax.jit; ThreadPoolExecutor and asyncio.gather for
orchestration): warm-up runs, then the median of --repeat runs, with the
spread (min..max).  Orchestration calls go to a real HTTP model server on
loopback that the bench starts and stops itself.  Output: a progress bar on
stderr, a table on stdout (figure, xcs, spread, limit, ratio to the limit,
speed-up over each peer = peer time / xcs time), --json FILE (schema:
ember/xcs/bench/schema.json, documented in docs/benchmarks.md) and --plot DIR
(PNG charts).  Exit status: 0, or 1 when a figure's result check failed, 2
for bad arguments or an unusable --device.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from ember.xcs.bench import measure

WORKLOADS = ("tensor", "orchestration", "mixed")
LATENCY_MS = {"quick": 20.0, "default": 50.0, "large": 50.0}


class Context:
    """What a workload gets: sizes, the timer, the peers, the limits, the
    model client, and the record builder."""

    def __init__(self, size, repeat, peers, limits, progress, torch_compile):
        self.size, self.repeat, self.peers, self.limits = size, repeat, peers, limits
        self.progress, self.torch_compile = progress, torch_compile
        self.client, self.latency_s, self.call_s = None, None, None

    def time(self, fn):
        return measure.timeit(fn, self.repeat, warmup=1 if self.size != "large" else 1)

    def time_once(self, fn):
        """The slow baselines (calls one after another): one timed run."""
        return measure.timeit(fn, 1, warmup=0)

    def tick(self):
        if self.progress is not None:
            self.progress.update(1)

    def record(self, workload, figure, size, r, peers, *, unit, per_second=None, limit=None, ideal_s=None,
               check=None, **_):
        med = r["median_s"]
        if per_second is not None:
            value, spread = per_second / med, [per_second / r["max_s"], per_second / r["min_s"]]
        else:
            value, spread = med * 1e3, [r["min_s"] * 1e3, r["max_s"] * 1e3]
        lim, ratio = None, None
        if limit is not None:
            lim = {"name": limit["name"], "value": limit["value"], "unit": limit["unit"]}
            ratio = value / limit["value"]
        elif ideal_s is not None:
            lim = {"name": "critical_path", "value": ideal_s * 1e3, "unit": "ms"}
            ratio = ideal_s / med
        return {
            "workload": workload, "figure": figure, "size": size, "unit": unit,
            "xcs": {"value": value, "spread": spread, **r},
            "limit": lim, "ratio_to_limit": ratio,
            "peers": {name: {**p, "speedup": p["median_s"] / med} for name, p in peers.items()},
            "check": check or {"ok": True},
        }


def _fmt(v, unit):
    if v is None:
        return "-"
    if unit == "ms" and v >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def table(doc):
    """The human-readable table (stdout)."""
    results = doc["results"]
    names = []
    for r in results:
        for p in r["peers"]:
            if p not in names:
                names.append(p)
    head = ["workload/figure", "size", "xcs", "spread", "limit", "xcs/limit"] + [f"vs {n}" for n in names]
    rows = []
    for r in results:
        x = r["xcs"]
        lim = r["limit"]
        row = [f"{r['workload']}/{r['figure']}" + ("" if r["check"].get("ok") else " (CHECK FAILED)"), r["size"],
               f"{_fmt(x['value'], r['unit'])} {r['unit']}",
               f"{_fmt(x['spread'][0], r['unit'])}..{_fmt(x['spread'][1], r['unit'])}",
               f"{_fmt(lim['value'], lim['unit'])} {lim['unit']} ({lim['name']})" if lim else "-",
               f"{r['ratio_to_limit']:.2f}" if r["ratio_to_limit"] is not None else "-"]
        for n in names:
            p = r["peers"].get(n)
            row.append(f"{p['speedup']:.2f}x" if p else "-")
        rows.append(row)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    m = doc["machine"]
    out.append("")
    out.append(f"{m['cpu']}, {m['cores']} cores, xcs {m['xcs']} ({m['xcs_threads']} threads, {m['blas']}), "
               f"device {doc['device']}, size {doc['size']}, median of {doc['repeat']}")
    lim = doc["limits"]["memory_bandwidth"]
    out.append(f"memory bandwidth: {lim['value']:.1f} GB/s ({lim['method']}); "
               f"vs X = X's time / xcs's time (> 1: xcs is faster); xcs/limit: fraction of the limit reached "
               f"(orchestration: critical path / time)")
    missing = [k for k, v in doc["peers_available"].items() if v is None]
    if missing:
        out.append(f"peers not installed here (not measured): {', '.join(missing)}")
    return "\n".join(out)


def plot(doc, outdir):
    """PNG charts: speed-up over each peer per figure, xcs's fraction of the
    limit, and the elementwise chain's throughput vs size (xcs and numpy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    results = doc["results"]
    names = sorted({p for r in results for p in r["peers"]})
    figs = [f"{r['workload']}/{r['figure']}" for r in results]
    fig, ax = plt.subplots(figsize=(max(6, len(figs) * 0.9), 4.5))
    w = 0.8 / max(1, len(names))
    for k, n in enumerate(names):
        ys = [r["peers"][n]["speedup"] if n in r["peers"] else 0 for r in results]
        ax.bar([i + k * w for i in range(len(figs))], ys, w, label=n)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks([i + w * (len(names) - 1) / 2 for i in range(len(figs))])
    ax.set_xticklabels(figs, rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("speed-up of xcs (peer time / xcs time)")
    ax.set_title(f"xcs-bench {doc['size']}: speed-up over peers ({doc['machine']['cpu'][:40]})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    p = outdir / "speedup.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    written.append(str(p))
    lim = [r for r in results if r["ratio_to_limit"] is not None]
    fig, ax = plt.subplots(figsize=(max(6, len(lim) * 0.8), 4))
    ax.bar(range(len(lim)), [r["ratio_to_limit"] for r in lim], color="tab:green")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(range(len(lim)))
    ax.set_xticklabels([f"{r['workload']}/{r['figure']}" for r in lim], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("fraction of the machine's limit")
    ax.set_title("xcs vs the limit (memory bandwidth; orchestration: critical path)", fontsize=9)
    fig.tight_layout()
    p = outdir / "limits.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    written.append(str(p))
    rows = doc.get("sweeps", {}).get("ew_chain_gbs_vs_n")
    if rows:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        ns = [r["n"] for r in rows]
        ax.plot(ns, [r["xcs_gbs"] for r in rows], "o-", label="xcs jit")
        ax.plot(ns, [r["numpy_gbs"] for r in rows], "s--", label="numpy")
        bw = doc["limits"]["memory_bandwidth"]["value"]
        ax.axhline(bw, color="gray", lw=0.8, ls=":", label=f"memory bandwidth ({bw:.0f} GB/s)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("elements (float32)")
        ax.set_ylabel("GB/s (read x + write y)")
        ax.set_title("8-op elementwise chain: throughput vs size", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = outdir / "throughput_vs_size.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(str(p))
    return written


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="xcs-bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="size", action="store_const", const="quick",
                   help="small sizes: a smoke run in well under a minute (not a measurement)")
    g.add_argument("--large", dest="size", action="store_const", const="large", help="large sizes")
    ap.set_defaults(size="default")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated subset of {', '.join(WORKLOADS)} (default: all)")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per figure (default 5; 3 with --quick)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON (schema: docs/benchmarks.md)")
    ap.add_argument("--plot", metavar="DIR", help="write PNG charts into DIR")
    ap.add_argument("--latency-ms", type=float, default=None,
                    help="model server latency (default 20 with --quick, else 50)")
    ap.add_argument("--no-torch-compile", action="store_true", help="skip the torch.compile peer (slow to compile)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    a = ap.parse_args(argv)
    wl = [w.strip() for w in a.workloads.split(",") if w.strip()]
    bad = [w for w in wl if w not in WORKLOADS]
    if bad or not wl:
        ap.error(f"unknown workload(s) {bad}; choose from {', '.join(WORKLOADS)}")
    a.workloads = wl
    if a.repeat is None:
        a.repeat = 3 if a.size == "quick" else 5
    if a.repeat < 1:
        ap.error("--repeat must be >= 1")
    if a.latency_ms is None:
        a.latency_ms = LATENCY_MS[a.size]
    if a.latency_ms < 0:
        ap.error("--latency-ms must be >= 0")
    return a


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    import ember.xcs as xcs
    from ember.xcs import _device
    from ember.xcs.bench import orchestration, tensor
    from ember.xcs.bench.server import ModelServer
    from ember.xcs.bench.client import ModelClient

    try:
        device = _device.resolve(a.device, "--device")
    except xcs.XCSError as e:
        print(f"xcs-bench: {e}", file=sys.stderr)
        return 2
    peers = measure.peers()
    total = (tensor.N_TENSOR + 1 if "tensor" in a.workloads else 0) + \
            (orchestration.N_ORCH if "orchestration" in a.workloads else 0) + \
            (orchestration.N_MIXED if "mixed" in a.workloads else 0) + 1
    progress = None
    if not a.no_progress:
        from tqdm import tqdm

        progress = tqdm(total=total, desc="xcs-bench", unit="figure", file=sys.stderr, leave=False)
    limits = {"memory_bandwidth": measure.memory_bandwidth(a.size)}
    ctx = Context(a.size, a.repeat, peers, limits, progress, peers.get("torch") and not a.no_torch_compile)
    ctx.tick()
    results, sweeps = [], {}
    server = None
    try:
        if "tensor" in a.workloads:
            results += tensor.run(ctx)
            sweeps.update(tensor.sweep(ctx))
            ctx.tick()
        if "orchestration" in a.workloads or "mixed" in a.workloads:
            server = ModelServer(latency_ms=a.latency_ms, jitter_ms=a.latency_ms / 10, process=True).start()
            ctx.client, ctx.latency_s = ModelClient(server.url, timeout=30.0), a.latency_ms / 1e3
            ctx.call_s = measure.timeit(lambda: ctx.client.complete("ping"), 5, 2)["median_s"]  # one call alone
            if "orchestration" in a.workloads:
                results += orchestration.run(ctx)
            if "mixed" in a.workloads:
                results += orchestration.run_mixed(ctx)
    finally:
        if server is not None:
            server.stop()
        if progress is not None:
            progress.close()
    doc = {
        "schema": "xcs-bench/1",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "size": a.size, "repeat": a.repeat, "device": device, "workloads": a.workloads,
        "machine": measure.machine(), "peers_available": peers, "limits": limits,
        "model_server": {"latency_ms": a.latency_ms, "jitter_ms": a.latency_ms / 10,
                         "call_ms": ctx.call_s * 1e3 if ctx.call_s else None},
        "results": results,
        "sweeps": sweeps,
    }
    print(table(doc))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(doc, indent=1))
        print(f"wrote {a.json}", file=sys.stderr)
    if a.plot:
        for p in plot(doc, a.plot):
            print(f"wrote {p}", file=sys.stderr)
    return 0 if all(r["check"].get("ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
