/* kernel_host.c — generated CUDA kernels compiled by the C++ compiler and run
 * on the host (see kernel_host.h). */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, popen */

#include "kernel_host.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the generated source takes from CUDA, for a single host thread.
 * Threads run one after another, so atomics are plain read-modify-writes
 * and the thread coordinates are globals the launcher sets.  Bit casts go
 * through memcpy (no aliasing games); float4/int4 keep CUDA's 16-byte
 * alignment, which the vec4 variant's loads assume. */
static const char shim_text[] =
    "#include <math.h>\n"
    "#include <cmath>\n"
    "#include <string.h>\n"
    "#define __global__\n"
    "#define __device__\n"
    "#define __host__\n"
    "#define __forceinline__ inline\n"
    "#define __launch_bounds__(...)\n"
    "struct xcs_kh_dim3 { unsigned x, y, z; };\n"
    "static xcs_kh_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0};\n"
    "static xcs_kh_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};\n"
    "static inline unsigned int __float_as_uint(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }\n"
    "static inline float __uint_as_float(unsigned int u) { float f; memcpy(&f, &u, 4); return f; }\n"
    "static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }\n"
    "static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }\n"
    "static inline long long __double_as_longlong(double d) { long long l; memcpy(&l, &d, 8); return l; }\n"
    "static inline double __longlong_as_double(long long l) { double d; memcpy(&d, &l, 8); return d; }\n"
    "static inline unsigned int atomicOr(unsigned int *p, unsigned int v) {\n"
    "    unsigned int old = *p; *p = old | v; return old;\n"
    "}\n"
    "static inline unsigned int atomicAdd(unsigned int *p, unsigned int v) {\n"
    "    unsigned int old = *p; *p = old + v; return old;\n"
    "}\n"
    "struct alignas(16) float4 { float x, y, z, w; };\n"
    "struct alignas(16) int4 { int x, y, z, w; };\n";

/* One launcher per kernel, appended after the source: the grid as a loop. */
static const char launcher_fmt[] =
    "extern \"C\" void xcs_host_launch_%s(const void *args, unsigned blocks, unsigned threads) {\n"
    "    gridDim.x = blocks, gridDim.y = gridDim.z = 1;\n"
    "    blockDim.x = threads, blockDim.y = blockDim.z = 1;\n"
    "    threadIdx.y = threadIdx.z = blockIdx.y = blockIdx.z = 0;\n"
    "    for (unsigned b = 0; b < blocks; b++)\n"
    "        for (unsigned t = 0; t < threads; t++) {\n"
    "            blockIdx.x = b, threadIdx.x = t;\n"
    "            %s(*(const %s *)args);\n"
    "        }\n"
    "}\n";

typedef void (*kh_launch_fn)(const void *args, unsigned blocks, unsigned threads);

struct xcs_kernel_host {
    void *lib;
    int n;
    kh_launch_fn *fn;
};

/* Kernel and type names go into the source and into symbol names. */
static bool kh_is_ident(const char *s) {
    if (!s || !*s || (*s >= '0' && *s <= '9')) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static bool kh_write(const char *path, const char *a, const char *b) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    bool ok = fputs(a, f) >= 0 && (!b || fputs(b, f) >= 0);
    return fclose(f) == 0 && ok;
}

static char *kh_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The launchers of every kernel, allocated. */
static char *kh_launchers(int n, const char *const *names, const char *args_type) {
    size_t cap = 1;
    for (int k = 0; k < n; k++) cap += sizeof launcher_fmt + 2 * strlen(names[k]) + strlen(args_type);
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (int k = 0; k < n; k++) {
        int w = snprintf(s + len, cap - len, launcher_fmt, names[k], names[k], args_type);
        if (w > 0) len += (size_t)w;
    }
    return s;
}

/* Runs the compiler in dir and returns its exit status; the head of its
 * output (stdout and stderr) goes to log[cap], NUL-terminated. */
static int kh_run_compiler(const char *dir, char *log, size_t cap) {
    size_t n = strlen(dir) + 256;
    char *cmd = malloc(n);
    if (!cmd) return -1;
    /* dir comes from mkdtemp over $TMPDIR: quoted for the shell (a TMPDIR
     * holding a quote is not used).  No FMA contraction: the
     * CPU backend's C is compiled without it (ISO C mode), so exact ops
     * round the same on both sides (clang++ would contract by default). */
    snprintf(cmd, n,
             "cd '%s' && ${CXX:-c++} -std=c++17 -O1 -ffp-contract=off -shared -fPIC -w -include shim.h "
             "-o kernels.so kernels.cpp 2>&1",
             dir);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p) return -1;
    size_t len = 0;
    char chunk[512];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0) { /* read it all, keep the head */
        size_t take = len + 1 < cap ? cap - 1 - len : 0;
        if (take > got) take = got;
        memcpy(log + len, chunk, take);
        len += take;
    }
    while (len > 0 && (log[len - 1] == '\n' || log[len - 1] == ' ')) len--;
    log[len] = '\0';
    int status = pclose(p);
    return status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

xcs_status xcs_kernel_host_compile(const char *src, int n_kernels, const char *const *kernel_names,
                                   const char *args_type, xcs_kernel_host **out) {
    *out = NULL;
    if (!src || n_kernels < 1 || !kernel_names || !kh_is_ident(args_type))
        return xcs_error(XCS_ERR_VALUE, "kernel_host: no source, no kernels or a bad argument type");
    for (int k = 0; k < n_kernels; k++)
        if (!kh_is_ident(kernel_names[k]))
            return xcs_error(XCS_ERR_VALUE, "kernel_host: kernel %d's name is not an identifier", k);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strchr(tmp, '\'')) tmp = "/tmp";
    char *dir = kh_join(tmp, "xcs_kernel_host_XXXXXX");
    if (!dir) return xcs_error(XCS_ERR_MEMORY, "kernel_host: out of memory");
    if (!mkdtemp(dir)) {
        xcs_status st = xcs_error(XCS_ERR_UNSUPPORTED, "kernel_host: cannot make a directory %s: %s", dir, strerror(errno));
        free(dir);
        return st;
    }
    char *shim = kh_join(dir, "shim.h"), *cpp = kh_join(dir, "kernels.cpp"), *so = kh_join(dir, "kernels.so");
    char *launchers = kh_launchers(n_kernels, kernel_names, args_type);
    xcs_kernel_host *k = calloc(1, sizeof *k);
    if (k) k->fn = calloc((size_t)n_kernels, sizeof *k->fn);
    xcs_status st = XCS_OK;
    char log[700];
    log[0] = '\0';
    if (!shim || !cpp || !so || !launchers || !k || !k->fn) {
        st = xcs_error(XCS_ERR_MEMORY, "kernel_host: out of memory");
    } else if (!kh_write(shim, shim_text, NULL) || !kh_write(cpp, src, launchers)) {
        st = xcs_error(XCS_ERR_UNSUPPORTED, "kernel_host: cannot write the source into %s", dir);
    } else {
        int rc = kh_run_compiler(dir, log, sizeof log);
        if (rc != 0) {
            st = xcs_error(rc == 127 || rc < 0 ? XCS_ERR_UNSUPPORTED : XCS_ERR_VALUE,
                           "kernel_host: the C++ compiler failed (exit %d) on %d kernel(s) (first: %s):\n%s", rc,
                           n_kernels, kernel_names[0], log);
        } else if (!(k->lib = dlopen(so, RTLD_NOW | RTLD_LOCAL))) {
            st = xcs_error(XCS_ERR_VALUE, "kernel_host: dlopen: %s", dlerror());
        } else {
            k->n = n_kernels;
            for (int i = 0; i < n_kernels && !st; i++) {
                char sym[160];
                snprintf(sym, sizeof sym, "xcs_host_launch_%s", kernel_names[i]);
                void *f = dlsym(k->lib, sym);
                if (!f) st = xcs_error(XCS_ERR_VALUE, "kernel_host: %s not found in the compiled kernels", sym);
                else memcpy(&k->fn[i], &f, sizeof f); /* (object to function pointer: POSIX allows it) */
            }
        }
    }
    /* the loaded object stays mapped once its file is gone */
    if (shim) unlink(shim);
    if (cpp) unlink(cpp);
    if (so) unlink(so);
    rmdir(dir);
    free(shim), free(cpp), free(so), free(launchers), free(dir);
    if (st) {
        xcs_kernel_host_free(k);
        return st;
    }
    *out = k;
    return XCS_OK;
}

xcs_status xcs_kernel_host_launch(xcs_kernel_host *k, int kernel, const void *args, unsigned blocks,
                                  unsigned threads) {
    if (!k || kernel < 0 || kernel >= k->n)
        return xcs_error(XCS_ERR_INDEX, "kernel_host: kernel %d of %d", kernel, k ? k->n : 0);
    if (!args) return xcs_error(XCS_ERR_VALUE, "kernel_host: no argument block");
    k->fn[kernel](args, blocks, threads);
    return XCS_OK;
}

void xcs_kernel_host_free(xcs_kernel_host *k) {
    if (!k) return;
    if (k->lib) dlclose(k->lib);
    free(k->fn);
    free(k);
}

bool xcs_kernel_host_available(void) {
    /* a kernel compiled and loaded, not just `c++ --version`: a temporary
     * directory mounted noexec is a skip too, not a failure */
    static const char probe[] = "struct xcs_kh_probe_args { unsigned *word; };\n"
                                "extern \"C\" __global__ void xcs_kh_probe(const xcs_kh_probe_args a) {\n"
                                "    atomicOr(a.word, 1u << threadIdx.x);\n}\n";
    static const char *const names[1] = {"xcs_kh_probe"};
    static int known = -1; /* tests call this from one thread */
    static char why[512];
    if (known < 0) {
        xcs_kernel_host *k = NULL;
        unsigned word = 0, *args = &word;
        known = xcs_kernel_host_compile(probe, 1, names, "xcs_kh_probe_args", &k) == XCS_OK &&
                xcs_kernel_host_launch(k, 0, &args, 1, 3) == XCS_OK && word == 7u;
        if (!known) snprintf(why, sizeof why, "%s", xcs_last_error());
        xcs_kernel_host_free(k);
    }
    if (!known) xcs_error(XCS_ERR_UNSUPPORTED, "%s", why);
    return known == 1;
}
