/* cuda_loader.c — finds and opens the CUDA backend module (libxcs_cuda.so)
 * at first use and asks it what it can see (xcs_cuda.h).
 *
 * The module is looked for next to the binary holding this code (the Python
 * extension's directory, or a test's), or at $XCS_CUDA_MODULE; XCS_CUDA=0 in
 * the environment skips it.  The probe runs once per process (pthread_once)
 * and its result is immutable afterwards, like the backend registry. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xcs_cuda.h"
#include "xcs_host.h"

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static xcs_cuda_probe probe_result;
static char module_path[1024];
static bool module_loaded;
static const xcs_cuda_module *mod; /* set once by run_probe */

static void run_probe(void) {
    xcs_cuda_probe *p = &probe_result;
    memset(p, 0, sizeof *p);
    if (xcs_env_off("XCS_CUDA")) {
        snprintf(p->reason, sizeof p->reason, "disabled by XCS_CUDA=0");
        return;
    }
    const char *env = getenv("XCS_CUDA_MODULE");
    if (env && *env) {
        snprintf(module_path, sizeof module_path, "%s", env);
    } else {
        Dl_info info;
        if (!dladdr((void *)&run_probe, &info) || !info.dli_fname) {
            snprintf(p->reason, sizeof p->reason, "cannot locate this library to find the CUDA module next to it");
            return;
        }
        const char *slash = strrchr(info.dli_fname, '/');
        int dir = slash ? (int)(slash - info.dli_fname) : 0;
        snprintf(module_path, sizeof module_path, "%.*s%s" XCS_CUDA_MODULE_NAME, dir, info.dli_fname, slash ? "/" : "");
    }
    void *lib = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(p->reason, sizeof p->reason, "this build has no CUDA backend module (%.200s: %.250s)", module_path, dlerror());
        return;
    }
    xcs_cuda_entry_fn entry;
    *(void **)&entry = dlsym(lib, XCS_CUDA_ENTRY);
    const xcs_cuda_module *m = entry ? entry() : NULL;
    if (!m || m->abi != XCS_CUDA_ABI) {
        snprintf(p->reason, sizeof p->reason, "%.300s is not a CUDA backend module of this version (ABI %d, want %d)",
                 module_path, m ? m->abi : -1, XCS_CUDA_ABI);
        return;
    }
    module_loaded = true;
    mod = m;
    m->probe(p);
}

const xcs_cuda_probe *xcs_cuda_probe_get(const char **module, bool *loaded) {
    pthread_once(&probe_once, run_probe);
    if (module) *module = module_path[0] ? module_path : NULL;
    if (loaded) *loaded = module_loaded;
    return &probe_result;
}

/* ---------------------------------------------------------------- the CUDA backend
 *
 * Core's view of the module: each entry relays to the module and turns its
 * failure text into this library's error. */

static xcs_status relay(xcs_status st) { return st ? xcs_error(st, "%s", mod->last_error()) : XCS_OK; }

static xcs_status cu_elementwise(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_dtype compute, xcs_tensor *out) {
    return relay(mod->elementwise(op, n_in, in, compute, out));
}
static xcs_status cu_reduce(xcs_op op, const xcs_tensor *x, unsigned axes, xcs_tensor *out) {
    return relay(mod->reduce(op, x, axes, out));
}
static xcs_status cu_matmul(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out) {
    return relay(mod->matmul(a, b, out));
}
static xcs_status cu_run_fused(const xcs_fused_program *p, const xcs_tensor *const *in, xcs_tensor *const *out) {
    return relay(mod->run_fused(p, in, out));
}
static xcs_status cu_matmul_fused(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *prod, const xcs_fused_program *p,
                                  const xcs_tensor *const *in, xcs_tensor *const *out) {
    if (!mod->matmul_fused) { /* a module without it: the GEMM, then the program */
        xcs_status st = cu_matmul(a, b, prod);
        return st ? st : cu_run_fused(p, in, out);
    }
    return relay(mod->matmul_fused(a, b, prod, p, in, out));
}
static xcs_status cu_run_rows(const xcs_row_chain *rc) {
    xcs_status st = mod->run_rows(rc);
    return st == XCS_ERR_UNSUPPORTED ? st : relay(st); /* no row kernel for it: no message to carry */
}
static xcs_status cu_run_scan(const xcs_scan_loop *sl) {
    xcs_status st = mod->run_scan(sl);
    return st == XCS_ERR_UNSUPPORTED ? st : relay(st); /* no kernel for it: no message to carry */
}
static xcs_status cu_take(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out) {
    if (!mod->take) return xcs_error(XCS_ERR_INTERNAL, "the CUDA module %s has no take entry", module_path);
    return relay(mod->take(x, idx, axis, out));
}
static xcs_status cu_take_in_range(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out) {
    if (!mod->take_in_range) return cu_take(x, idx, axis, out);
    return relay(mod->take_in_range(x, idx, axis, out));
}
static xcs_status cu_scatter_add(const xcs_tensor *idx, const xcs_tensor *src, int axis, xcs_tensor *out) {
    if (!mod->scatter_add) return xcs_error(XCS_ERR_INTERNAL, "the CUDA module %s has no scatter_add entry", module_path);
    return relay(mod->scatter_add(idx, src, axis, out));
}
static xcs_status cu_argreduce(xcs_op op, const xcs_tensor *x, int axis, xcs_tensor *out) {
    if (!mod->argreduce) return xcs_error(XCS_ERR_INTERNAL, "the CUDA module %s has no argreduce entry", module_path);
    return relay(mod->argreduce(op, x, axis, out));
}
static xcs_status cu_argsort(const xcs_tensor *x, int axis, xcs_tensor *out) {
    if (!mod->argsort) return xcs_error(XCS_ERR_INTERNAL, "the CUDA module %s has no argsort entry", module_path);
    return relay(mod->argsort(x, axis, out));
}
static xcs_status cu_linalg(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_tensor *out) {
    if (!mod->linalg) return xcs_error(XCS_ERR_UNSUPPORTED, "the CUDA module %s has no linalg entry", module_path);
    return relay(mod->linalg(op, n_in, in, out));
}
static xcs_status cu_random(xcs_op op, xcs_rng_key key, double a, double b, xcs_tensor *out) {
    if (!mod->random) return xcs_error(XCS_ERR_INTERNAL, "the CUDA module %s has no random entry", module_path);
    return relay(mod->random(op, key, a, b, out));
}
static xcs_status cu_alloc(int index, size_t nbytes, void **out) { return relay(mod->alloc(index, nbytes, out)); }
static void cu_free(int index, void *p) { mod->free(index, p); }
static xcs_status cu_upload(int index, void *dst, const void *src, size_t nbytes) {
    return relay(mod->upload(index, dst, src, nbytes));
}
static xcs_status cu_download(int index, void *dst, const void *src, size_t nbytes) {
    return relay(mod->download(index, dst, src, nbytes));
}

static const xcs_backend cuda_backend = {
    .name = "cuda",
    .device = XCS_DEVICE_CUDA,
    .elementwise = cu_elementwise,
    .reduce = cu_reduce,
    .matmul = cu_matmul,
    .matmul_fused = cu_matmul_fused,
    .run_fused = cu_run_fused,
    .run_rows = cu_run_rows,
    .run_scan = cu_run_scan,
    .take = cu_take,
    .take_in_range = cu_take_in_range,
    .scatter_add = cu_scatter_add,
    .argreduce = cu_argreduce,
    .argsort = cu_argsort,
    .linalg = cu_linalg,
    .random = cu_random,
    .alloc = cu_alloc,
    .free = cu_free,
    .upload = cu_upload,
    .download = cu_download,
};

xcs_status xcs_cuda_activate(int ordinal) {
    const xcs_cuda_probe *p = xcs_cuda_probe_get(NULL, NULL);
    if (!mod || p->n_devices == 0)
        return xcs_error(XCS_ERR_UNSUPPORTED, "no usable CUDA device: %s", p->reason[0] ? p->reason : "unknown");
    if (ordinal < 0 || ordinal >= p->n_devices)
        return xcs_error(XCS_ERR_VALUE, "CUDA device %d requested; there are %d", ordinal, p->n_devices);
    xcs_status st = relay(mod->open(ordinal));
    if (!st) st = xcs_backend_register(&cuda_backend); /* the same table every time */
    return st;
}

const char *xcs_cuda_describe(int ordinal) { return mod ? mod->describe(ordinal) : ""; }

void xcs_cuda_mem_stats_get(int ordinal, struct xcs_cuda_mem_stats *out) {
    memset(out, 0, sizeof *out);
    if (mod) mod->mem_stats(ordinal, out);
}

void xcs_cuda_empty_cache(int ordinal) {
    if (mod) mod->empty_cache(ordinal);
}

void xcs_cuda_set_tf32(bool on) {
    xcs_cuda_probe_get(NULL, NULL);
    if (mod) mod->set_tf32(on);
}

xcs_status xcs_cuda_sync(int ordinal) { return mod ? relay(mod->sync(ordinal)) : XCS_OK; }

xcs_status xcs_cuda_wait(int ordinal, const void *p) { return mod ? relay(mod->wait(ordinal, p)) : XCS_OK; }

int xcs_cuda_kernels_cached(int ordinal) { return mod ? mod->kernels_cached(ordinal) : 0; }

xcs_status xcs_cuda_collective(int kind, int n, const xcs_tensor *const *part, xcs_tensor *const *out) {
    if (!mod) return xcs_error(XCS_ERR_UNSUPPORTED, "no CUDA backend module");
    return relay(mod->collective((xcs_cuda_coll)kind, n, part, out));
}
