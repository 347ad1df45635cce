/* mock_device.h — a mock device backend registered as XCS_DEVICE_CUDA, for
 * testing core's device path without a GPU.
 *
 * Its "device addresses" are host addresses with a high bit flipped:
 * non-canonical on x86-64, so any host code that dereferences device memory
 * faults, as it would with a real GPU.  There are mock_devices devices (1
 * unless the module is told otherwise); an address carries its device's
 * number in bits 56-61.  Its kernels undo the flip and run the CPU
 * backend's kernels, after checking that every operand they are handed
 * lives on one device, the one its storage names (else they fail, and
 * count n_wrong_device); its row chains run program by program with scratch
 * buffers for the values only the chain reads.  A test may set
 * mock_row_hook to see each chain first.  Call mock_register() after
 * xcs_host_init(). */
#ifndef XCS_TEST_MOCK_DEVICE_H
#define XCS_TEST_MOCK_DEVICE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xcs.h"

#define FLIP ((uintptr_t)1 << 62)
#define DEV_SHIFT 56

static const xcs_backend *cpu;
static long n_alloc, n_free, n_up, n_down, n_wrong_device;
static int mock_devices = 1;

static void *dev_to_host(const void *p) { return (void *)((uintptr_t)p & (((uintptr_t)1 << DEV_SHIFT) - 1)); }
static int dev_of(const void *p) { return (int)((uintptr_t)p >> DEV_SHIFT & 63); }

/* A host alias of device tensor t (storage copied into *s); *dev: the
 * kernel's device (-1: not known yet).  False when t is not on it. */
static bool alias(const xcs_tensor *t, xcs_storage *s, xcs_tensor *h, int *dev) {
    bool ok = t->storage && t->storage->device == XCS_DEVICE_CUDA &&
              t->storage->device_index == dev_of(t->storage->data) && (*dev < 0 || *dev == t->storage->device_index);
    if (ok) *dev = t->storage->device_index;
    else n_wrong_device++;
    *s = *t->storage;
    s->data = dev_to_host(s->data);
    s->device = XCS_DEVICE_CPU;
    *h = *t;
    h->storage = s;
    return ok;
}

static xcs_status wrong_device(void) {
    return xcs_error(XCS_ERR_INTERNAL, "mock device: a kernel's operands are not all on its device");
}

static xcs_status m_alloc(int index, size_t nbytes, void **out) {
    if (index < 0 || index >= mock_devices) return xcs_error(XCS_ERR_VALUE, "mock device %d", index);
    void *p = malloc(nbytes ? nbytes : 1);
    if (!p) return xcs_error(XCS_ERR_MEMORY, "mock device out of memory");
    n_alloc++;
    *out = (void *)((uintptr_t)p ^ FLIP ^ ((uintptr_t)index << DEV_SHIFT));
    return XCS_OK;
}
static void m_free(int index, void *p) {
    if (dev_of(p) != index) n_wrong_device++;
    n_free++;
    free(dev_to_host(p));
}
static xcs_status m_upload(int index, void *dst, const void *src, size_t n) {
    if (dev_of(dst) != index) return n_wrong_device++, wrong_device();
    n_up++;
    memcpy(dev_to_host(dst), src, n);
    return XCS_OK;
}
static xcs_status m_download(int index, void *dst, const void *src, size_t n) {
    if (dev_of(src) != index) return n_wrong_device++, wrong_device();
    n_down++;
    memcpy(dst, dev_to_host(src), n);
    return XCS_OK;
}

#define MAXT 2 * XCS_FUSED_MAX_IO
/* Host tensor `from` (contiguous) copied element by element into view `to`
 * of its shape and dtype (a strided output, as a device's elementwise
 * writes one). */
static void mock_strided_store(const xcs_tensor *from, xcs_tensor *to) {
    size_t es = xcs_dtype_size(to->dtype);
    int64_t n = xcs_tensor_numel(to), pos[XCS_MAX_DIMS] = {0};
    const char *src = xcs_tensor_data(from);
    char *base = (char *)to->storage->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = to->offset;
        for (int d = 0; d < to->ndim; d++) off += pos[d] * to->strides[d];
        memcpy(base + off * (int64_t)es, src + i * (int64_t)es, es);
        for (int d = to->ndim - 1; d >= 0; d--) {
            if (++pos[d] < to->shape[d]) break;
            pos[d] = 0;
        }
    }
}

static xcs_status m_elementwise(xcs_op op, int n, const xcs_tensor *const *in, xcs_dtype compute, xcs_tensor *out) {
    xcs_storage s[4];
    xcs_tensor h[4];
    const xcs_tensor *hp[3];
    int dev = -1;
    bool ok = true;
    for (int k = 0; k < n; k++) {
        ok &= alias(in[k], &s[k], &h[k], &dev);
        hp[k] = &h[k];
    }
    ok &= alias(out, &s[3], &h[3], &dev);
    if (!ok) return wrong_device();
    if (xcs_tensor_is_contiguous(&h[3])) return cpu->elementwise(op, n, hp, compute, &h[3]);
    xcs_tensor *tmp = NULL; /* the CPU's kernels write contiguous outputs */
    xcs_status st = xcs_tensor_empty(out->dtype, out->ndim, out->shape, &tmp);
    if (!st) st = cpu->elementwise(op, n, hp, compute, tmp);
    if (!st) mock_strided_store(tmp, &h[3]);
    xcs_tensor_free(tmp);
    return st;
}
static xcs_status m_reduce(xcs_op op, const xcs_tensor *x, unsigned axes, xcs_tensor *out) {
    xcs_storage s[2];
    xcs_tensor h[2];
    int dev = -1;
    bool ok = alias(x, &s[0], &h[0], &dev);
    ok &= alias(out, &s[1], &h[1], &dev);
    return ok ? cpu->reduce(op, &h[0], axes, &h[1]) : wrong_device();
}
static xcs_status m_matmul(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out) {
    xcs_storage s[3];
    xcs_tensor h[3];
    int dev = -1;
    bool ok = alias(a, &s[0], &h[0], &dev);
    ok &= alias(b, &s[1], &h[1], &dev);
    ok &= alias(out, &s[2], &h[2], &dev);
    return ok ? cpu->matmul(&h[0], &h[1], &h[2]) : wrong_device();
}
static xcs_status m_run_fused(const xcs_fused_program *p, const xcs_tensor *const *in, xcs_tensor *const *out) {
    xcs_storage s[MAXT];
    xcs_tensor h[MAXT];
    const xcs_tensor *ip[XCS_FUSED_MAX_IO];
    xcs_tensor *op[XCS_FUSED_MAX_IO];
    int dev = -1;
    bool ok = true;
    for (int k = 0; k < p->n_inputs; k++) {
        ok &= alias(in[k], &s[k], &h[k], &dev);
        ip[k] = &h[k];
    }
    for (int k = 0; k < p->n_outputs; k++) {
        ok &= alias(out[k], &s[XCS_FUSED_MAX_IO + k], &h[XCS_FUSED_MAX_IO + k], &dev);
        op[k] = &h[XCS_FUSED_MAX_IO + k];
    }
    return ok ? cpu->run_fused(p, ip, op) : wrong_device();
}

/* take / scatter_add as a device gets them (xcs.h): the indices as given,
 * wrapped (take) and checked here, in the host memory behind them. */
static long n_take, n_take_in_range, n_scatter;
static xcs_status mock_take(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out) {
    xcs_storage s[3];
    xcs_tensor h[3];
    int dev = -1;
    bool ok = alias(x, &s[0], &h[0], &dev);
    ok &= alias(idx, &s[1], &h[1], &dev);
    ok &= alias(out, &s[2], &h[2], &dev);
    if (!ok) return wrong_device();
    if (idx->dtype != XCS_I64 || !xcs_tensor_is_contiguous(idx) || !xcs_tensor_is_contiguous(x))
        return xcs_error(XCS_ERR_INTERNAL, "mock take: x and int64 indices must be contiguous");
    int64_t n = xcs_tensor_numel(&h[1]), len = x->shape[axis];
    int64_t *w = malloc((size_t)(n ? n : 1) * sizeof *w);
    if (!w) return xcs_error(XCS_ERR_MEMORY, "mock take: out of memory");
    const int64_t *p = xcs_tensor_data(&h[1]);
    for (int64_t i = 0; i < n; i++) {
        w[i] = p[i] < 0 ? p[i] + len : p[i];
        if (w[i] < 0 || w[i] >= len) {
            free(w);
            return xcs_error(XCS_ERR_INDEX, "take: an index is out of bounds for axis %d with size %lld", axis,
                             (long long)len);
        }
    }
    xcs_storage ws = {.data = w, .nbytes = (size_t)n * sizeof *w, .device = XCS_DEVICE_CPU};
    xcs_tensor wt = h[1];
    wt.storage = &ws;
    wt.offset = 0;
    xcs_status st = cpu->take(&h[0], &wt, axis, &h[2]);
    free(w);
    return st;
}
static xcs_status m_take(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out) {
    n_take++;
    return mock_take(x, idx, axis, out);
}
/* take with indices core checked: the mock checks them all the same */
static xcs_status m_take_in_range(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out) {
    n_take_in_range++;
    return mock_take(x, idx, axis, out);
}
static xcs_status m_scatter_add(const xcs_tensor *idx, const xcs_tensor *src, int axis, xcs_tensor *out) {
    xcs_storage s[3];
    xcs_tensor h[3];
    int dev = -1;
    bool ok = alias(idx, &s[0], &h[0], &dev);
    ok &= alias(src, &s[1], &h[1], &dev);
    ok &= alias(out, &s[2], &h[2], &dev);
    if (!ok) return wrong_device();
    n_scatter++;
    return cpu->scatter_add(&h[0], &h[1], axis, &h[2]); /* checks the indices */
}

static xcs_status m_argreduce(xcs_op op, const xcs_tensor *x, int axis, xcs_tensor *out) {
    xcs_storage s[2];
    xcs_tensor h[2];
    int dev = -1;
    bool ok = alias(x, &s[0], &h[0], &dev);
    ok &= alias(out, &s[1], &h[1], &dev);
    return ok ? cpu->argreduce(op, &h[0], axis, &h[1]) : wrong_device();
}

static xcs_status m_argsort(const xcs_tensor *x, int axis, xcs_tensor *out) {
    xcs_storage s[2];
    xcs_tensor h[2];
    int dev = -1;
    bool ok = alias(x, &s[0], &h[0], &dev);
    ok &= alias(out, &s[1], &h[1], &dev);
    return ok ? cpu->argsort(&h[0], axis, &h[1]) : wrong_device();
}

/* As the CUDA module's: every linalg op on the device, but eigh, svd, qr,
 * eigvalsh and svdvals past xcs_cuda_linalg_limit refused (core computes them on the host,
 * by LAPACK). */
/* codegen.h's XCS_CUDA_EIGVALSH_MAX_ROWS, XCS_CUDA_SVDVALS_MAX_ROWS (test_cuda_rowgen asserts them) */
#define MOCK_EIGVALSH_MAX_ROWS 64
#define MOCK_SVDVALS_MAX_ROWS 48
static xcs_status m_linalg(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_tensor *out) {
    const int nd = in[0]->ndim;
    const int64_t k = in[0]->shape[nd - 1] < in[0]->shape[nd - 2] ? in[0]->shape[nd - 1] : in[0]->shape[nd - 2];
    const bool own = op == XCS_OP_EIGH || op == XCS_OP_SVD || op == XCS_OP_QR; /* as xcs_cuda_linalg_limit */
    const int64_t limit = op == XCS_OP_EIGVALSH ? MOCK_EIGVALSH_MAX_ROWS
                          : op == XCS_OP_SVDVALS ? MOCK_SVDVALS_MAX_ROWS
                          : own                  ? xcs_linalg_lapack_min(op)
                                                 : 0;
    if (limit && k >= limit)
        return xcs_error(XCS_ERR_UNSUPPORTED, "%s: no CUDA kernel for this size", xcs_op_name(op));
    xcs_storage s[3];
    xcs_tensor h[3];
    int dev = -1;
    bool ok = alias(out, &s[0], &h[0], &dev);
    for (int k = 0; k < n_in && k < 2; k++) ok &= alias(in[k], &s[k + 1], &h[k + 1], &dev);
    const xcs_tensor *hin[2] = {&h[1], &h[2]};
    return ok ? cpu->linalg(op, n_in, hin, &h[0]) : wrong_device();
}

static long n_random;
static xcs_status m_random(xcs_op op, xcs_rng_key key, double a, double b, xcs_tensor *out) {
    xcs_storage s;
    xcs_tensor h;
    int dev = -1;
    if (!alias(out, &s, &h, &dev)) return wrong_device();
    n_random++;
    return cpu->random(op, key, a, b, &h);
}

static void (*mock_row_hook)(const xcs_row_chain *rc);

/* A row chain, as a device would run it, emulated program by program on
 * the CPU: values only the chain reads live in scratch buffers. */
static long n_row_chains;
static xcs_status m_run_rows(const xcs_row_chain *rc) {
    n_row_chains++;
    if (mock_row_hook) mock_row_hook(rc);
    xcs_tensor *vals[XCS_ROW_CHAIN_MAX * XCS_FUSED_MAX_IO] = {0}, *scratch[XCS_ROW_CHAIN_MAX * XCS_FUSED_MAX_IO] = {0};
    xcs_storage vs[XCS_ROW_CHAIN_MAX * XCS_FUSED_MAX_IO];
    xcs_tensor vh[XCS_ROW_CHAIN_MAX * XCS_FUSED_MAX_IO];
    int nv = 0, dev = -1;
    xcs_status st = XCS_OK;
    for (int g = 0; g < rc->n && !st; g++) {
        const xcs_fused_program *p = rc->prog[g];
        bool reduce = p->instr[p->n_instr - 1].kind == XCS_FUSED_REDUCE;
        xcs_storage is[XCS_FUSED_MAX_IO];
        xcs_tensor ih[XCS_FUSED_MAX_IO];
        const xcs_tensor *ins[XCS_FUSED_MAX_IO];
        xcs_tensor *outs[XCS_FUSED_MAX_IO];
        for (int k = 0; k < p->n_inputs; k++) {
            int v = rc->in_value[g][k];
            if (v < 0) {
                if (!alias(rc->in[g][k], &is[k], &ih[k], &dev)) st = wrong_device();
            } else { /* the value broadcast to the program's space */
                ih[k] = *vals[v];
                ih[k].ndim = p->ndim;
                for (int d = 0; d < p->ndim; d++) {
                    ih[k].shape[d] = p->shape[d];
                    ih[k].strides[d] = vals[v]->shape[d] == 1 ? 0 : vals[v]->strides[d];
                }
            }
            ins[k] = &ih[k];
        }
        for (int o = 0; o < p->n_outputs; o++, nv++) {
            int64_t shape[XCS_MAX_DIMS];
            memcpy(shape, p->shape, sizeof shape);
            if (reduce && o == p->instr[p->n_instr - 1].dst)
                for (int d = 0; d < p->ndim; d++)
                    if (p->reduce_axes >> d & 1u) shape[d] = 1;
            if (rc->out[g][o]) {
                if (!alias(rc->out[g][o], &vs[nv], &vh[nv], &dev)) st = wrong_device();
                vals[nv] = &vh[nv];
            } else if (!(st = xcs_tensor_empty(rc->out_dtype[g][o], p->ndim, shape, &scratch[nv]))) {
                vals[nv] = scratch[nv];
            }
            outs[o] = vals[nv];
        }
        if (!st) st = cpu->run_fused(p, ins, outs);
    }
    for (int v = 0; v < nv; v++) xcs_tensor_free(scratch[v]);
    return st;
}

/* A scan loop (xcs_backend.run_scan) as the device's one kernel computes
 * it, emulated step by step on the CPU: the carries in host buffers, each
 * step's outputs in scratch buffers copied to their rows and carries.  A
 * test may set mock_scan_hook to run the loop its own way instead. */
static long n_scan_loops;
static xcs_status (*mock_scan_hook)(const xcs_scan_loop *sl);

/* h moved `by` elements (a step's operand). */
static void mock_moved(const xcs_tensor *h, int64_t by, xcs_tensor *out) {
    *out = *h;
    out->offset += by;
}

static xcs_status m_run_scan(const xcs_scan_loop *sl) {
    n_scan_loops++;
    if (mock_scan_hook) return mock_scan_hook(sl);
    const xcs_fused_program *p = sl->p;
    xcs_storage is[XCS_FUSED_MAX_IO], os[XCS_FUSED_MAX_IO], cs[2 * XCS_SCAN_MAX_CARRY];
    xcs_tensor ih[XCS_FUSED_MAX_IO], oh[XCS_FUSED_MAX_IO], ch[2 * XCS_SCAN_MAX_CARRY];
    xcs_tensor *carry[XCS_SCAN_MAX_CARRY] = {0}, *scratch[XCS_FUSED_MAX_IO] = {0};
    int dev = -1;
    bool ok = true;
    for (int k = 0; k < p->n_inputs; k++)
        if (sl->in_carry[k] < 0) ok &= alias(sl->in[k], &is[k], &ih[k], &dev);
    for (int o = 0; o < p->n_outputs; o++)
        if (sl->out[o]) ok &= alias(sl->out[o], &os[o], &oh[o], &dev);
    for (int q = 0; q < sl->n_carry; q++) {
        ok &= alias(sl->carry_init[q], &cs[2 * q], &ch[2 * q], &dev);
        ok &= alias(sl->carry_final[q], &cs[2 * q + 1], &ch[2 * q + 1], &dev);
    }
    if (!ok) return wrong_device();
    xcs_status st = XCS_OK;
    for (int q = 0; q < sl->n_carry && !st; q++)
        if (!(st = xcs_tensor_empty(ch[2 * q].dtype, p->ndim, p->shape, &carry[q])))
            st = cpu->elementwise(XCS_OP_COPY, 1, (const xcs_tensor *const[]){&ch[2 * q]}, ch[2 * q].dtype, carry[q]);
    for (int i = 0; i < p->n_instr && !st; i++) /* each output's dtype: its STORE's */
        if (p->instr[i].kind == XCS_FUSED_STORE)
            st = xcs_tensor_empty(p->instr[i].dtype, p->ndim, p->shape, &scratch[p->instr[i].dst]);
    for (int64_t i = 0; i < sl->length && !st; i++) {
        int64_t t = sl->reverse ? sl->length - 1 - i : i;
        xcs_tensor step_in[XCS_FUSED_MAX_IO], row;
        const xcs_tensor *ins[XCS_FUSED_MAX_IO];
        for (int k = 0; k < p->n_inputs; k++) {
            if (sl->in_carry[k] >= 0) {
                ins[k] = carry[sl->in_carry[k]];
                continue;
            }
            mock_moved(&ih[k], t * sl->in_step[k], &step_in[k]);
            ins[k] = &step_in[k];
        }
        st = cpu->run_fused(p, ins, scratch);
        for (int o = 0; o < p->n_outputs && !st; o++) {
            const xcs_tensor *from[1] = {scratch[o]};
            if (sl->out[o]) {
                mock_moved(&oh[o], t * sl->out_step[o], &row);
                st = cpu->elementwise(XCS_OP_COPY, 1, from, row.dtype, &row);
            }
            if (!st && sl->out_carry[o] >= 0)
                st = cpu->elementwise(XCS_OP_COPY, 1, from, carry[sl->out_carry[o]]->dtype, carry[sl->out_carry[o]]);
        }
    }
    for (int q = 0; q < sl->n_carry && !st; q++) {
        const xcs_tensor *from[1] = {carry[q]};
        st = cpu->elementwise(XCS_OP_COPY, 1, from, ch[2 * q + 1].dtype, &ch[2 * q + 1]);
    }
    for (int q = 0; q < sl->n_carry; q++) xcs_tensor_free(carry[q]);
    for (int o = 0; o < XCS_FUSED_MAX_IO; o++) xcs_tensor_free(scratch[o]);
    return st;
}

static const xcs_backend mock = {
    .name = "mock-cuda",
    .device = XCS_DEVICE_CUDA,
    .elementwise = m_elementwise,
    .reduce = m_reduce,
    .matmul = m_matmul,
    .run_fused = m_run_fused,
    .run_rows = m_run_rows,
    .run_scan = m_run_scan,
    .take = m_take,
    .take_in_range = m_take_in_range,
    .scatter_add = m_scatter_add,
    .argreduce = m_argreduce,
    .argsort = m_argsort,
    .linalg = m_linalg,
    .random = m_random,
    .alloc = m_alloc,
    .free = m_free,
    .upload = m_upload,
    .download = m_download,
};


static inline int mock_register(void) {
    cpu = xcs_backend_for(XCS_DEVICE_CPU);
    return cpu && !xcs_backend_register(&mock) ? 0 : 1;
}

#endif
