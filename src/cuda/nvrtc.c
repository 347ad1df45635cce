/* nvrtc.c — NVRTC through dlopen (see nvrtc.h).  The few entry points are
 * declared here with NVRTC's documented C signatures (nvrtcResult is an
 * int enum, nvrtcProgram an opaque pointer). */
#include "nvrtc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvrtc_result;
typedef void *nvrtc_program;

struct xcs_nvrtc {
    void *lib;
    int version;
    nvrtc_result (*create)(nvrtc_program *, const char *, const char *, int, const char *const *, const char *const *);
    nvrtc_result (*destroy)(nvrtc_program *);
    nvrtc_result (*compile)(nvrtc_program, int, const char *const *);
    nvrtc_result (*log_size)(nvrtc_program, size_t *);
    nvrtc_result (*log)(nvrtc_program, char *);
    nvrtc_result (*ptx_size)(nvrtc_program, size_t *);
    nvrtc_result (*ptx)(nvrtc_program, char *);
    nvrtc_result (*cubin_size)(nvrtc_program, size_t *);
    nvrtc_result (*cubin)(nvrtc_program, char *);
    const char *(*error_string)(nvrtc_result);
    nvrtc_result (*get_version)(int *, int *);
};

xcs_status xcs_nvrtc_open(xcs_nvrtc **out) {
    *out = NULL;
    static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"};
    const char *env = getenv("XCS_NVRTC_LIBRARY");
    void *lib = NULL;
    char tried[512] = "";
    if (env && *env) {
        lib = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!lib) snprintf(tried, sizeof tried, "%s (XCS_NVRTC_LIBRARY): %s", env, dlerror());
    } else {
        for (size_t i = 0; i < sizeof names / sizeof *names && !lib; i++) {
            lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
            if (!lib) {
                size_t used = strlen(tried);
                snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", names[i]);
            }
        }
    }
    if (!lib) return xcs_error(XCS_ERR_UNSUPPORTED, "NVRTC not found (tried %s); install the CUDA toolkit's NVRTC", tried);
    xcs_nvrtc *n = calloc(1, sizeof *n);
    if (!n) return xcs_error(XCS_ERR_MEMORY, "out of memory opening NVRTC");
    n->lib = lib;
#define SYM(field, name)                                                                            \
    do {                                                                                            \
        *(void **)&n->field = dlsym(lib, name);                                                     \
        if (!n->field) {                                                                            \
            xcs_nvrtc_close(n);                                                                     \
            return xcs_error(XCS_ERR_UNSUPPORTED, "NVRTC library lacks %s", name);                  \
        }                                                                                           \
    } while (0)
    SYM(create, "nvrtcCreateProgram");
    SYM(destroy, "nvrtcDestroyProgram");
    SYM(compile, "nvrtcCompileProgram");
    SYM(log_size, "nvrtcGetProgramLogSize");
    SYM(log, "nvrtcGetProgramLog");
    SYM(ptx_size, "nvrtcGetPTXSize");
    SYM(ptx, "nvrtcGetPTX");
    SYM(error_string, "nvrtcGetErrorString");
    SYM(get_version, "nvrtcVersion");
#undef SYM
    /* cubin output exists from CUDA 11.1 on */
    *(void **)&n->cubin_size = dlsym(lib, "nvrtcGetCUBINSize");
    *(void **)&n->cubin = dlsym(lib, "nvrtcGetCUBIN");
    int major = 0, minor = 0;
    if (n->get_version(&major, &minor) == 0) n->version = major * 1000 + minor * 10;
    *out = n;
    return XCS_OK;
}

/* The library stays loaded: NVRTC keeps process-wide state (and a cache it
 * never frees) that unloading would turn into dangling memory. */
void xcs_nvrtc_close(xcs_nvrtc *n) { free(n); }

int xcs_nvrtc_version(const xcs_nvrtc *n) { return n ? n->version : 0; }

xcs_status xcs_nvrtc_compile(const xcs_nvrtc *n, const char *src, const char *name, int cc, bool cubin,
                             char **image, size_t *size, bool *is_cubin) {
    *image = NULL;
    *size = 0;
    *is_cubin = false;
    nvrtc_program prog = NULL;
    nvrtc_result r = n->create(&prog, src, name, 0, NULL, NULL);
    if (r != 0) return xcs_error(XCS_ERR_INTERNAL, "NVRTC could not create %s: %s", name, n->error_string(r));
    bool want_cubin = cubin && n->cubin_size && n->cubin;
    char arch[48];
    /* sm_XX gives a cubin for exactly this device; compute_XX gives PTX the driver JITs */
    snprintf(arch, sizeof arch, "--gpu-architecture=%s_%d", want_cubin ? "sm" : "compute", cc);
    const char *opts[] = {arch, "--std=c++17", "-default-device", "--fmad=true"};
    r = n->compile(prog, (int)(sizeof opts / sizeof *opts), opts);
    xcs_status st = XCS_OK;
    if (r != 0) {
        size_t ls = 0;
        char *log = NULL;
        if (n->log_size(prog, &ls) == 0 && ls > 0 && (log = malloc(ls + 1)) && n->log(prog, log) == 0) log[ls] = '\0';
        st = xcs_error(XCS_ERR_VALUE, "NVRTC failed to compile kernel %s for sm_%d (%s):\n%s", name, cc,
                       n->error_string(r), log ? log : "(no log)");
        free(log);
        n->destroy(&prog);
        return st;
    }
    size_t sz = 0;
    r = want_cubin ? n->cubin_size(prog, &sz) : n->ptx_size(prog, &sz);
    char *img = r == 0 && sz > 0 ? malloc(sz) : NULL;
    if (!img) st = xcs_error(r ? XCS_ERR_INTERNAL : XCS_ERR_MEMORY, "NVRTC: no image for kernel %s", name);
    else if ((r = want_cubin ? n->cubin(prog, img) : n->ptx(prog, img)) != 0)
        st = xcs_error(XCS_ERR_INTERNAL, "NVRTC: reading the image of %s failed: %s", name, n->error_string(r));
    n->destroy(&prog);
    if (st) {
        free(img);
        return st;
    }
    *image = img;
    *size = sz;
    *is_cubin = want_cubin;
    return XCS_OK;
}
