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

static void run_probe(void) {
    xcs_cuda_probe *p = &probe_result;
    memset(p, 0, sizeof *p);
    const char *off = getenv("XCS_CUDA");
    if (off && strcmp(off, "0") == 0) {
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
    m->probe(p);
    if (p->n_devices > 0) /* the module found a GPU; what runs there comes with the device runtime */
        snprintf(p->reason, sizeof p->reason,
                 "%d CUDA device(s) found (%.100s, sm_%d%d), but jitted programs are not routed to them yet (the "
                 "device runtime runs generated kernels in its own tests; the backend registration, cuBLAS, the "
                 "caching allocator and streams come next): tensor work runs on the CPU",
                 p->n_devices, p->devices[0].name, p->devices[0].cc_major, p->devices[0].cc_minor);
}

const xcs_cuda_probe *xcs_cuda_probe_get(const char **module, bool *loaded) {
    pthread_once(&probe_once, run_probe);
    if (module) *module = module_path[0] ? module_path : NULL;
    if (loaded) *loaded = module_loaded;
    return &probe_result;
}
