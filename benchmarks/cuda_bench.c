/* cuda_bench.c — the CUDA backend against the device's own limits, each
 * measured in the same run with CUDA events after warm-up (median of 7
 * timed batches):
 *   copy       device-to-device copy of 2^28 float32 (the bandwidth ceiling:
 *              bytes read + written over time);
 *   chain8     a fused 8-op elementwise chain on 2^28 float32 (one kernel),
 *              as a jitted program runs it (xcs_graph_run_on);
 *   softmax    row softmax of 16384x4096 float32;
 *   layernorm  row layer norm of 16384x4096 float32 (mean, var, normalise);
 *   matmul     8192^3 in float32, TF32 and bfloat16 (float32 accumulation)
 *              through xcs (a traced matmul run as a graph) and through a
 *              direct cuBLAS call of the same GEMM on the same buffers.
 * Prints one JSON object per line (for benchmarks/RESULTS.md), then a table.
 * Arguments: [scale] [rows]: scale the sizes ("0.05": a quick run); "rows":
 * the copy and the row kernels only (what gpu_session.sh's `profile` step
 * hands to Nsight Compute).
 * Without a usable GPU it prints why and exits 77. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "blas.h"
#include "runtime.h"
#include "xcs_host.h"

#define REPS 7

static xcs_cu_runtime *rt;

static void die(const char *what) {
    fprintf(stderr, "cuda_bench: %s: %s\n", what, xcs_last_error());
    exit(1);
}
#define OK(call, what) \
    do {               \
        if (call) die(what); \
    } while (0)

typedef xcs_status (*step_fn)(void *ctx);

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median milliseconds per call of fn over REPS batches of `inner` calls. */
static double time_ms(step_fn fn, void *ctx, int inner) {
    void *e0 = NULL, *e1 = NULL;
    OK(xcs_cu_event_new(rt, &e0), "event");
    OK(xcs_cu_event_new(rt, &e1), "event");
    for (int i = 0; i < 2; i++) OK(fn(ctx), "warm-up");
    OK(xcs_cu_sync(rt), "sync");
    float ms[REPS];
    for (int r = 0; r < REPS; r++) {
        OK(xcs_cu_event_record(rt, e0), "record");
        for (int i = 0; i < inner; i++) OK(fn(ctx), "step");
        OK(xcs_cu_event_record(rt, e1), "record");
        OK(xcs_cu_event_ms(rt, e0, e1, &ms[r]), "elapsed");
        ms[r] /= (float)inner;
    }
    xcs_cu_event_free(rt, e0);
    xcs_cu_event_free(rt, e1);
    qsort(ms, REPS, sizeof ms[0], cmp_f);
    return ms[REPS / 2];
}

/* ---------------------------------------------------------------- steps */

typedef struct copy_ctx { xcs_cu_ptr dst, src; size_t n; } copy_ctx;
static xcs_status copy_step(void *c) {
    copy_ctx *k = c;
    return xcs_cu_copy(rt, k->dst, k->src, k->n);
}

typedef struct graph_ctx { xcs_graph *g; int n_in; const xcs_tensor *in[2]; } graph_ctx;
static xcs_status graph_step(void *c) {
    graph_ctx *k = c;
    xcs_tensor *out[4] = {0};
    xcs_status st = xcs_graph_run_on(k->g, XCS_DEVICE_CUDA, 0, k->n_in, k->in, out);
    for (int i = 0; i < 4; i++) xcs_tensor_free(out[i]); /* back to the cache: the stream orders reuse */
    return st;
}

typedef struct gemm_ctx { xcs_cublas *b; xcs_gemm g; } gemm_ctx;
static xcs_status gemm_step(void *c) {
    gemm_ctx *k = c;
    return xcs_cublas_gemm(k->b, &k->g);
}

/* ---------------------------------------------------------------- programs */

static xcs_tensor *scalar(double v) {
    xcs_tensor *s = NULL;
    OK(xcs_tensor_scalar(XCS_F64, v, &s), "scalar");
    s->flags |= XCS_TENSOR_WEAK;
    return s;
}

/* ((((((x * 1.5 + 0.25) * x - 0.5) * 0.75 + x) * 0.5) - x) * 2): 8 ops. */
static xcs_status chain8(const xcs_tensor *x, xcs_tensor **out) {
    static const xcs_op ops[8] = {XCS_OP_MUL, XCS_OP_ADD, XCS_OP_MUL, XCS_OP_SUB,
                                  XCS_OP_MUL, XCS_OP_ADD, XCS_OP_MUL, XCS_OP_SUB};
    static const double k[8] = {1.5, 0.25, 0, 0.5, 0.75, 0, 0.5, 0};
    xcs_tensor *v = NULL;
    OK(xcs_tensor_view(x, &v), "view");
    for (int i = 0; i < 8; i++) {
        xcs_tensor *s = k[i] != 0 ? scalar(k[i]) : NULL, *n = NULL;
        xcs_status st = xcs_binary(ops[i], v, s ? s : x, &n);
        xcs_tensor_free(s);
        xcs_tensor_free(v);
        if (st) return st;
        v = n;
    }
    *out = v;
    return XCS_OK;
}

static xcs_status layernorm(const xcs_tensor *x, xcs_tensor **out) {
    xcs_tensor *mu = NULL, *d = NULL, *var = NULL, *ve = NULL, *sd = NULL, *eps = scalar(1e-5);
    xcs_status st;
    if (!(st = xcs_mean(x, 2u, true, &mu)) && !(st = xcs_binary(XCS_OP_SUB, x, mu, &d)) &&
        !(st = xcs_var(x, 2u, true, 0, &var)) && !(st = xcs_binary(XCS_OP_ADD, var, eps, &ve)) &&
        !(st = xcs_unary(XCS_OP_SQRT, ve, &sd)))
        st = xcs_binary(XCS_OP_DIV, d, sd, out);
    xcs_tensor *f[] = {mu, d, var, ve, sd, eps};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
    return st;
}

static xcs_status softmax_rows(const xcs_tensor *x, xcs_tensor **out) { return xcs_softmax(x, -1, out); }

/* A one-input graph of prog over shape, optimised. */
static xcs_graph *trace1(int nd, const int64_t *shape, xcs_status (*prog)(const xcs_tensor *, xcs_tensor **)) {
    xcs_graph *g = NULL;
    xcs_tensor *x = NULL, *y = NULL;
    OK(xcs_graph_new(&g), "graph");
    OK(xcs_graph_input(g, XCS_F32, nd, shape, &x), "input");
    OK(prog(x, &y), "trace");
    OK(xcs_graph_output(g, y), "output");
    OK(xcs_graph_optimize(g), "optimize");
    xcs_tensor_free(x);
    xcs_tensor_free(y);
    return g;
}

/* A random float32 tensor already on the device. */
static xcs_tensor *device_random(int nd, const int64_t *shape) {
    xcs_tensor *h = NULL, *d = NULL;
    OK(xcs_tensor_empty(XCS_F32, nd, shape, &h), "host tensor");
    float *p = xcs_tensor_data(h);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < xcs_tensor_numel(h); i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        p[i] = (float)((double)(s >> 11) * 0x1p-53 * 2 - 1);
    }
    OK(xcs_tensor_to(h, XCS_DEVICE_CUDA, 0, &d), "upload");
    xcs_tensor_free(h);
    return d;
}

static void report(const char *name, double ms, const char *unit, double value, const char *vs, double ratio) {
    printf("{\"name\": \"%s\", \"ms\": %.4f, \"%s\": %.2f, \"vs\": \"%s\", \"ratio\": %.3f}\n", name, ms, unit, value,
           vs, ratio);
}

static double bytes_gbs(double bytes, double ms) { return bytes / (ms * 1e-3) / 1e9; }

int main(int argc, char **argv) {
    double scale = argc > 1 ? atof(argv[1]) : 1.0; /* "0.05": a quick run */
    const bool rows_only = argc > 2 && strcmp(argv[2], "rows") == 0;
    if (xcs_host_init()) return 1;
    if (xcs_cuda_be_register(0)) {
        printf("SKIP: no usable CUDA device: %s\n", xcs_last_error());
        return 77;
    }
    rt = xcs_cuda_be_runtime(0);
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    printf("{\"device\": \"%s\", \"date\": \"%s\"}\n", xcs_cu_describe(rt), date);

    /* copy: the ceiling */
    int64_t n = (int64_t)((double)(1 << 28) * scale);
    size_t nb = (size_t)n * 4;
    copy_ctx cc;
    cc.n = nb;
    OK(xcs_cu_alloc(rt, nb, &cc.src), "alloc");
    OK(xcs_cu_alloc(rt, nb, &cc.dst), "alloc");
    OK(xcs_cu_zero(rt, cc.src, nb), "zero");
    double copy_ms = time_ms(copy_step, &cc, 5);
    double bw = bytes_gbs(2.0 * (double)nb, copy_ms);
    report("copy_2^28_f32", copy_ms, "GB/s", bw, "itself", 1.0);
    xcs_cu_free(rt, cc.src);
    xcs_cu_free(rt, cc.dst);

    /* the fused chain */
    if (rows_only) goto rows;
    graph_ctx gc = {.n_in = 1};
    gc.g = trace1(1, &n, chain8);
    printf("{\"chain8_groups\": %d}\n", xcs_graph_num_groups(gc.g));
    xcs_tensor *x = device_random(1, &n);
    gc.in[0] = x;
    double ms = time_ms(graph_step, &gc, 5);
    report("chain8_2^28_f32", ms, "GB/s", bytes_gbs(2.0 * (double)nb, ms), "copy", bytes_gbs(2.0 * (double)nb, ms) / bw);
    xcs_graph_free(gc.g);
    xcs_tensor_free(x);

rows:; /* softmax and layer norm rows */
    int64_t rows = (int64_t)(16384 * scale) > 0 ? (int64_t)(16384 * scale) : 1, shape[2] = {rows, 4096};
    double rb = 2.0 * (double)rows * 4096 * 4;
    xcs_tensor *m = device_random(2, shape);
    const char *names[2] = {"softmax_16384x4096_f32", "layernorm_16384x4096_f32"};
    xcs_status (*progs[2])(const xcs_tensor *, xcs_tensor **) = {softmax_rows, layernorm};
    for (int k = 0; k < 2; k++) {
        graph_ctx rc = {.n_in = 1, .in = {m}};
        rc.g = trace1(2, shape, progs[k]);
        printf("{\"%s_groups\": %d}\n", names[k], xcs_graph_num_groups(rc.g));
        ms = time_ms(graph_step, &rc, 3);
        report(names[k], ms, "GB/s", bytes_gbs(rb, ms), "copy", bytes_gbs(rb, ms) / bw);
        xcs_graph_free(rc.g);
    }
    xcs_tensor_free(m);
    if (rows_only) return 0;

    /* matmul: xcs vs a direct cuBLAS call of the same GEMM */
    int64_t N = (int64_t)(8192 * (scale < 1 ? 0.25 : 1.0)), ms2[2] = {N, N};
    double flops = 2.0 * (double)N * N * N;
    xcs_tensor *a = device_random(2, ms2), *b = device_random(2, ms2);
    xcs_cublas *blas = NULL;
    void *stream = NULL; /* the stream xcs queues this thread's work on, so the events time both alike */
    OK(xcs_cu_stream(rt, &stream, NULL), "stream");
    OK(xcs_cublas_open(stream, &blas), "cuBLAS");
    OK(xcs_cu_make_current(rt), "context");
    xcs_tensor *c = NULL, *a16 = NULL, *b16 = NULL, *c16 = NULL;
    OK(xcs_tensor_empty_on(a->storage, XCS_F32, 2, ms2, &c), "alloc C");
    OK(xcs_cast(a, XCS_BF16, &a16), "cast A to bfloat16");
    OK(xcs_cast(b, XCS_BF16, &b16), "cast B to bfloat16");
    OK(xcs_tensor_empty_on(a->storage, XCS_BF16, 2, ms2, &c16), "alloc bfloat16 C");
    static const struct { const char *name; xcs_dtype dt; int tf32; } modes[] = {
        {"f32", XCS_F32, 0}, {"tf32", XCS_F32, 1}, {"bf16", XCS_BF16, 0}};
    for (int k = 0; k < 3; k++) {
        const bool half = modes[k].dt == XCS_BF16;
        xcs_tensor *ma = half ? a16 : a, *mb = half ? b16 : b, *mc_out = half ? c16 : c;
        xcs_cuda_be_set_tf32(modes[k].tf32);
        graph_ctx mc = {.n_in = 2, .in = {ma, mb}};
        xcs_graph *g = NULL;
        xcs_tensor *ta = NULL, *tb = NULL, *tc = NULL;
        OK(xcs_graph_new(&g), "graph");
        OK(xcs_graph_input(g, modes[k].dt, 2, ms2, &ta), "input");
        OK(xcs_graph_input(g, modes[k].dt, 2, ms2, &tb), "input");
        OK(xcs_matmul(ta, tb, &tc), "trace matmul");
        OK(xcs_graph_output(g, tc), "output");
        OK(xcs_graph_optimize(g), "optimize");
        mc.g = g;
        double xms = time_ms(graph_step, &mc, 3);
        gemm_ctx gk = {.b = blas,
                       .g = {.dt = modes[k].dt, .tf32 = modes[k].tf32, .m = N, .n = N, .k = N, .batch = 1,
                             .a = mb->storage->data, .b = ma->storage->data, .c = mc_out->storage->data,
                             .lda = N, .ldb = N, .ldc = N}};
        double bms = time_ms(gemm_step, &gk, 3);
        char nm[64];
        snprintf(nm, sizeof nm, "matmul_%lld_%s_cublas", (long long)N, modes[k].name);
        report(nm, bms, "TFLOP/s", flops / (bms * 1e-3) / 1e12, "itself", 1.0);
        snprintf(nm, sizeof nm, "matmul_%lld_%s_xcs", (long long)N, modes[k].name);
        report(nm, xms, "TFLOP/s", flops / (xms * 1e-3) / 1e12, "cublas", bms / xms);
        xcs_tensor_free(ta);
        xcs_tensor_free(tb);
        xcs_tensor_free(tc);
        xcs_graph_free(g);
    }
    xcs_cuda_be_set_tf32(0);
    xcs_tensor_free(a16);
    xcs_tensor_free(b16);
    xcs_tensor_free(c16);
    xcs_tensor_free(a);
    xcs_tensor_free(b);
    xcs_tensor_free(c);
    xcs_cublas_close(blas);
    xcs_cuda_mem_stats s;
    xcs_cuda_be_mem_stats(0, &s);
    printf("{\"allocator\": {\"peak_bytes\": %lld, \"reused\": %lld, \"device_allocs\": %lld, \"kernels\": %d}}\n",
           (long long)s.peak_bytes, (long long)s.reused, (long long)s.device_allocs, xcs_cuda_be_kernels_cached(0));
    return 0;
}
