"""Compile and gradient times of long loops: a recurrent scan (hidden 64)
inside jit, its first call (trace + optimise + run) at 1000 and 4000 steps
and a later call (the median of 5), jit(grad) of it with respect to the
weight (first call, later call), one call of its gradient with respect
to the inputs xs (the median of 5), and per-example gradients of 16
sequences of 1000 steps (jit(vmap(grad)): first call, later call).
Prints one JSON object; run it against two builds to compare them:

    PYTHONPATH=build/python python benchmarks/bench_long_traces.py
"""
import time, sys, json, numpy as np
from ember.xcs import jit, grad
from ember.xcs.transformations import scan
rng=np.random.default_rng(0)
def median_ms(f,*a):
    ts=[]
    for _ in range(5):
        t=time.perf_counter(); r=f(*a); np.asarray(r[0] if isinstance(r,tuple) else r); ts.append(time.perf_counter()-t)
    return sorted(ts)[2]*1e3
H=64; out={}
W=rng.standard_normal((H,H)).astype(np.float32)*0.1
for T in (1000, 4000):
    xs=rng.standard_normal((T,H)).astype(np.float32); h0=np.zeros(H,np.float32)
    def cell(h,x):
        h=np.tanh(h@W + x); return h, h.sum()
    f=jit(lambda h0,xs: scan(cell,h0,xs))
    t=time.perf_counter(); f(h0,xs); out[f"jit_first_T{T}_ms"]=(time.perf_counter()-t)*1e3
    out[f"jit_call_T{T}_ms"]=median_ms(f,h0,xs)
def loss(W_,h0,xs):
    def c2(h,x):
        h=np.tanh(h@W_ + x); return h, None
    h,_=scan(c2,h0,xs); return (h*h).sum()
T=4000; xs=rng.standard_normal((T,H)).astype(np.float32); h0=np.zeros(H,np.float32)
g=jit(grad(loss, argnums=(0,)))
t=time.perf_counter(); g(W,h0,xs); out["jit_grad_first_T4000_ms"]=(time.perf_counter()-t)*1e3
out["jit_grad_call_T4000_ms"]=median_ms(g,W,h0,xs)
g2=jit(grad(loss, argnums=2)); g2(W,h0,xs)
out["grad_wrt_xs_T4000_call_ms"]=median_ms(g2,W,h0,xs)
from ember.xcs import vmap
T=1000; B=16; xb=rng.standard_normal((B,T,H)).astype(np.float32)
pe=jit(vmap(grad(loss, argnums=0), in_axes=(None,None,0)))
t=time.perf_counter(); pe(W,h0,xb); out["per_example_grad_first_B16_T1000_ms"]=(time.perf_counter()-t)*1e3
out["per_example_grad_call_B16_T1000_ms"]=median_ms(pe,W,h0,xb)
print(json.dumps({k: round(v,1) for k,v in out.items()}))
