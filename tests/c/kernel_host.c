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
 * Threads run one after another (or, cooperative, as fibers that switch
 * only at barriers), so atomics are plain read-modify-writes and the thread
 * coordinates are globals the launcher sets.  Bit casts go
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
    "static inline double __dmul_rn(double a, double b) { return a * b; }\n"
    "static inline double __dadd_rn(double a, double b) { return a + b; }\n"
    "static inline float __double2float_rn(double a) { return (float)a; }\n"
    "static inline unsigned int atomicOr(unsigned int *p, unsigned int v) {\n"
    "    unsigned int old = *p; *p = old | v; return old;\n"
    "}\n"
    "template <typename T> static inline T xcs_kh_add(T *p, T v) { T old = *p; *p = old + v; return old; }\n"
    "static inline unsigned int atomicAdd(unsigned int *p, unsigned int v) { return xcs_kh_add(p, v); }\n"
    "static inline int atomicAdd(int *p, int v) { return xcs_kh_add(p, v); }\n"
    "static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) { return xcs_kh_add(p, v); }\n"
    "static inline float atomicAdd(float *p, float v) { return xcs_kh_add(p, v); }\n"
    "static inline double atomicAdd(double *p, double v) { return xcs_kh_add(p, v); }\n"
    "struct alignas(16) float4 { float x, y, z, w; };\n"
    "struct alignas(16) int4 { int x, y, z, w; };\n";

/* What cooperating threads add (XCS_KERNEL_HOST_COOPERATIVE), after the
 * plain shim.  A block's threads are fibers (ucontext), each on its own
 * stack, run by a scheduler that lives here, inside the
 * compiled object (not instrumented by the sanitizers the test may be built
 * with): a fiber runs until it waits at a barrier or returns, then switches
 * straight to the next runnable fiber (one swapcontext per hand-off; the
 * launcher is switched back to only when the block is done or stuck).
 * Blocks run one after another on the same fibers.
 *   __shared__     static: one copy per kernel, shared by the block's threads
 *                  (blocks do not overlap; CUDA leaves it uninitialised).
 *   __syncthreads  a block barrier: the fiber waits until every live thread
 *                  of the block has arrived (a returned thread counts as
 *                  arrived, as on the GPU).
 *   __shfl_*_sync  each lane publishes its value in its slot, waits at a warp
 *                  barrier, then reads the source lane's slot (CUDA's rules
 *                  for down/up/xor/idx and width).  Slots are double-buffered
 *                  by a per-lane parity: a lane cannot reach the shuffle after
 *                  next (which reuses this buffer) before every lane of its
 *                  warp has passed the next one's barrier, hence read this
 *                  one, so one barrier per shuffle is enough.  Full warps and
 *                  full masks only: another mask or a width that is not a
 *                  power of two up to 32 fails the launch.
 * Which runnable fiber runs next is the launch's schedule (round-robin by
 * default; lowest or highest index first, or seeded random): every one is
 * a schedule a GPU may run, and different ones expose different missing
 * barriers (lowest-first lets warp 0 run ahead of the others as far as the
 * barriers allow, highest-first the last warp).
 * threadIdx is a global the scheduler sets before every switch into a
 * fiber, so inside a fiber it always holds that fiber's coordinates.  The
 * barrier is an opaque call with a compiler memory barrier on both sides,
 * so shared values are reloaded after it.  A block whose live threads all
 * wait at barriers that cannot open (a __syncthreads some threads skip)
 * fails the launch instead of hanging. */
static const char coop_text[] =
    "#include <dlfcn.h>\n"
    "#include <stdlib.h>\n"
    "#include <ucontext.h>\n"
    "#define __shared__ static\n"
    "static const int warpSize = 32;\n"
    "#define XCS_KH_STACK (64 * 1024)\n"
    "#define XCS_KH_MAX_THREADS 1024\n"
    "struct xcs_kh_barrier { unsigned arrived, live, gen; };\n"
    "struct xcs_kh_fiber {\n"
    "    ucontext_t ctx;\n"
    "    xcs_kh_barrier *wait; /* the barrier it waits at, NULL: runnable */\n"
    "    unsigned gen;          /* that barrier's generation when it arrived */\n"
    "    unsigned char done, parity;\n"
    "};\n"
    "/* libc's own swapcontext: under AddressSanitizer the process's is an\n"
    " * interceptor that clears the shadow of the stack it switches to (heap\n"
    " * memory only this uninstrumented object runs on: nothing to clear) and\n"
    " * prints a warning; the fiber annotations do not silence it. */\n"
    "typedef int (*xcs_kh_swap_fn)(ucontext_t *, const ucontext_t *);\n"
    "static xcs_kh_swap_fn xcs_kh_swap;\n"
    "static struct {\n"
    "    ucontext_t launcher; /* (zero uc_stack: nothing for a sanitizer to clear) */\n"
    "    xcs_kh_fiber *f;\n"
    "    unsigned n, cur, left;\n"
    "    int stuck, bad, order;\n"
    "    unsigned long long rng;\n"
    "    xcs_kh_barrier block, warp[XCS_KH_MAX_THREADS / 32];\n"
    "    unsigned long long slot[2][XCS_KH_MAX_THREADS];\n"
    "    void (*body)(const void *);\n"
    "    const void *args;\n"
    "} xcs_kh;\n"
    "/* From the running fiber to the next runnable one in the launch's order\n"
    " * (itself: returns at once), else back to the launcher: every thread\n"
    " * done, or every live one waiting at a barrier that cannot open. */\n"
    "static __attribute__((noinline)) void xcs_kh_switch(void) {\n"
    "    const unsigned me = xcs_kh.cur, n = xcs_kh.n;\n"
    "    unsigned start = me + 1;\n"
    "    if (xcs_kh.order == 3) {\n"
    "        xcs_kh.rng ^= xcs_kh.rng << 13, xcs_kh.rng ^= xcs_kh.rng >> 7, xcs_kh.rng ^= xcs_kh.rng << 17;\n"
    "        start = (unsigned)(xcs_kh.rng % n);\n"
    "    }\n"
    "    for (unsigned i = 0; i < n; i++) {\n"
    "        const unsigned t = xcs_kh.order == 1 ? i : xcs_kh.order == 2 ? n - 1 - i : (start + i) % n;\n"
    "        xcs_kh_fiber *x = &xcs_kh.f[t];\n"
    "        if (x->done || (x->wait && x->wait->gen == x->gen)) continue;\n"
    "        if (t == me) return;\n"
    "        xcs_kh.cur = t;\n"
    "        threadIdx.x = t;\n"
    "        xcs_kh_swap(&xcs_kh.f[me].ctx, &x->ctx);\n"
    "        return;\n"
    "    }\n"
    "    xcs_kh.stuck = xcs_kh.left > 0;\n"
    "    xcs_kh_swap(&xcs_kh.f[me].ctx, &xcs_kh.launcher);\n"
    "}\n"
    "static void xcs_kh_open(xcs_kh_barrier *b) { b->arrived = 0, b->gen++; }\n"
    "static __attribute__((noinline)) void xcs_kh_arrive(xcs_kh_barrier *b) {\n"
    "    __asm__ __volatile__(\"\" ::: \"memory\");\n"
    "    if (++b->arrived >= b->live) {\n"
    "        xcs_kh_open(b);\n"
    "    } else {\n"
    "        xcs_kh_fiber *me = &xcs_kh.f[xcs_kh.cur];\n"
    "        me->wait = b, me->gen = b->gen;\n"
    "        while (b->gen == me->gen) xcs_kh_switch();\n"
    "        me->wait = 0;\n"
    "    }\n"
    "    __asm__ __volatile__(\"\" ::: \"memory\");\n"
    "}\n"
    "/* A fiber's life: the kernel, then it leaves its barriers (opening those\n"
    " * every other live thread already waits at) and hands over for good. */\n"
    "static void xcs_kh_entry(void) {\n"
    "    xcs_kh.body(xcs_kh.args);\n"
    "    __asm__ __volatile__(\"\" ::: \"memory\");\n"
    "    const unsigned me = xcs_kh.cur;\n"
    "    xcs_kh.f[me].done = 1;\n"
    "    xcs_kh.left--;\n"
    "    xcs_kh_barrier *const bs[2] = {&xcs_kh.block, &xcs_kh.warp[me >> 5]};\n"
    "    for (int i = 0; i < 2; i++)\n"
    "        if (--bs[i]->live > 0 && bs[i]->arrived >= bs[i]->live) xcs_kh_open(bs[i]);\n"
    "    xcs_kh_switch();\n"
    "}\n"
    "static inline void __syncthreads(void) { xcs_kh_arrive(&xcs_kh.block); }\n"
    "static inline void __syncwarp(unsigned mask = 0xffffffffu) {\n"
    "    (void)mask;\n"
    "    xcs_kh_arrive(&xcs_kh.warp[threadIdx.x >> 5]);\n"
    "}\n"
    "static inline void __threadfence(void) { __asm__ __volatile__(\"\" ::: \"memory\"); }\n"
    "static inline void __threadfence_block(void) { __asm__ __volatile__(\"\" ::: \"memory\"); }\n"
    "/* v published, the warp met, the value of lane `src` of this warp\n"
    " * returned (own: v itself).  mask must name every lane of the warp. */\n"
    "template <class T> static inline T xcs_kh_exchange(unsigned mask, int width, T v, unsigned src, bool own) {\n"
    "    static_assert(sizeof(T) <= 8, \"a shuffled value fits its slot\");\n"
    "    const unsigned t = threadIdx.x, w0 = t & ~31u;\n"
    "    const unsigned lanes = blockDim.x - w0 < 32 ? blockDim.x - w0 : 32;\n"
    "    const unsigned all = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;\n"
    "    if ((mask & all) != all || width < 1 || width > 32 || (width & (width - 1))) xcs_kh.bad = 1;\n"
    "    xcs_kh_fiber *me = &xcs_kh.f[xcs_kh.cur];\n"
    "    unsigned long long *slot = xcs_kh.slot[me->parity ^= 1];\n"
    "    unsigned long long bits = 0;\n"
    "    memcpy(&bits, &v, sizeof v);\n"
    "    slot[t] = bits;\n"
    "    xcs_kh_arrive(&xcs_kh.warp[t >> 5]);\n"
    "    if (!own && src < lanes) memcpy(&v, &slot[w0 + src], sizeof v);\n"
    "    return v;\n"
    "}\n"
    "template <class T> static inline T __shfl_sync(unsigned mask, T v, int srcLane, int width = 32) {\n"
    "    const unsigned l = threadIdx.x & 31u, w = (unsigned)width;\n"
    "    return xcs_kh_exchange(mask, width, v, (l & ~(w - 1u)) + ((unsigned)srcLane & (w - 1u)), false);\n"
    "}\n"
    "template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {\n"
    "    const unsigned l = threadIdx.x & 31u, w = (unsigned)width;\n"
    "    return xcs_kh_exchange(mask, width, v, l - delta, (l & (w - 1u)) < delta);\n"
    "}\n"
    "template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {\n"
    "    const unsigned l = threadIdx.x & 31u, w = (unsigned)width;\n"
    "    return xcs_kh_exchange(mask, width, v, l + delta, (l & (w - 1u)) + delta >= w);\n"
    "}\n"
    "template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32) {\n"
    "    const unsigned l = threadIdx.x & 31u, w = (unsigned)width, s = l ^ (unsigned)laneMask;\n"
    "    return xcs_kh_exchange(mask, width, v, s, s >= (l & ~(w - 1u)) + w);\n"
    "}\n"
    "extern \"C\" void xcs_host_order(int order, unsigned long long seed) {\n"
    "    xcs_kh.order = order, xcs_kh.rng = seed | 1;\n"
    "}\n"
    "/* 0, or 1: a block stuck at a barrier; 2: more threads than a block\n"
    " * holds; 3: out of memory; 4: a launch inside a launch; 5: a shuffle\n"
    " * without every lane of its warp, or of an unsupported width. */\n"
    "static int xcs_kh_run(void (*body)(const void *), const void *args, unsigned blocks, unsigned threads) {\n"
    "    if (!blocks || !threads) return 0;\n"
    "    if (threads > XCS_KH_MAX_THREADS) return 2;\n"
    "    if (xcs_kh.f) return 4;\n"
    "    if (!xcs_kh_swap) {\n"
    "        void *libc = dlopen(\"libc.so.6\", RTLD_LAZY | RTLD_NOLOAD), *fn = libc ? dlsym(libc, \"swapcontext\") : 0;\n"
    "        xcs_kh_swap = fn ? (xcs_kh_swap_fn)fn : swapcontext;\n"
    "        if (libc) dlclose(libc);\n"
    "    }\n"
    "    gridDim.x = blocks, gridDim.y = gridDim.z = 1;\n"
    "    blockDim.x = threads, blockDim.y = blockDim.z = 1;\n"
    "    threadIdx.y = threadIdx.z = blockIdx.y = blockIdx.z = 0;\n"
    "    xcs_kh_fiber *f = (xcs_kh_fiber *)calloc(threads, sizeof *f);\n"
    "    char *stacks = (char *)aligned_alloc(4096, (size_t)threads * XCS_KH_STACK);\n"
    "    int rc = f && stacks ? 0 : 3;\n"
    "    for (unsigned t = 0; t < threads && !rc; t++) /* (makecontext below reuses them every block) */\n"
    "        if (getcontext(&f[t].ctx)) rc = 3;\n"
    "    xcs_kh.f = f, xcs_kh.n = threads, xcs_kh.body = body, xcs_kh.args = args, xcs_kh.bad = 0;\n"
    "    for (unsigned b = 0; b < blocks && !rc; b++) {\n"
    "        blockIdx.x = b;\n"
    "        xcs_kh.block = {0, threads, 0};\n"
    "        for (unsigned w = 0; w * 32 < threads; w++) xcs_kh.warp[w] = {0, threads - w * 32 < 32 ? threads - w * 32 : 32, 0};\n"
    "        for (unsigned t = 0; t < threads; t++) {\n"
    "            xcs_kh_fiber *x = &f[t];\n"
    "            x->ctx.uc_stack.ss_sp = stacks + (size_t)t * XCS_KH_STACK;\n"
    "            x->ctx.uc_stack.ss_size = XCS_KH_STACK;\n"
    "            x->ctx.uc_stack.ss_flags = 0;\n"
    "            x->ctx.uc_link = &xcs_kh.launcher;\n"
    "            makecontext(&x->ctx, xcs_kh_entry, 0);\n"
    "            x->wait = 0, x->gen = 0, x->done = 0, x->parity = 0;\n"
    "        }\n"
    "        xcs_kh.left = threads, xcs_kh.stuck = 0, xcs_kh.cur = 0;\n"
    "        threadIdx.x = 0;\n"
    "        xcs_kh_swap(&xcs_kh.launcher, &f[0].ctx);\n"
    "        if (xcs_kh.stuck) rc = 1;\n"
    "        else if (xcs_kh.bad) rc = 5;\n"
    "    }\n"
    "    xcs_kh.f = 0;\n"
    "    free(stacks);\n"
    "    free(f);\n"
    "    return rc;\n"
    "}\n";

/* One launcher per kernel, appended after the source: the grid as a loop
 * of threads one after another (kernels whose threads never meet), */
static const char launcher_fmt[] =
    "extern \"C\" int xcs_host_launch_%s(const void *args, unsigned blocks, unsigned threads) {\n"
    "    gridDim.x = blocks, gridDim.y = gridDim.z = 1;\n"
    "    blockDim.x = threads, blockDim.y = blockDim.z = 1;\n"
    "    threadIdx.y = threadIdx.z = blockIdx.y = blockIdx.z = 0;\n"
    "    for (unsigned b = 0; b < blocks; b++)\n"
    "        for (unsigned t = 0; t < threads; t++) {\n"
    "            blockIdx.x = b, threadIdx.x = t;\n"
    "            %s(*(const %s *)args);\n"
    "        }\n"
    "    return 0;\n"
    "}\n";

/* or each block's threads as fibers (coop_text). */
static const char fiber_launcher_fmt[] =
    "static void xcs_kh_body_%s(const void *args) { %s(*(const %s *)args); }\n"
    "extern \"C\" int xcs_host_launch_%s(const void *args, unsigned blocks, unsigned threads) {\n"
    "    return xcs_kh_run(xcs_kh_body_%s, args, blocks, threads);\n"
    "}\n";

/* What in a source makes its threads meet (and so run as fibers). */
static bool kh_cooperates(const char *src) {
    return strstr(src, "__syncthreads") || strstr(src, "__shfl") || strstr(src, "__shared__") ||
           strstr(src, "__syncwarp");
}

typedef int (*kh_launch_fn)(const void *args, unsigned blocks, unsigned threads);

typedef void (*kh_order_fn)(int order, unsigned long long seed);

struct xcs_kernel_host {
    void *lib;
    int n;
    bool fibers;        /* launches run each block's threads as fibers */
    kh_order_fn order;  /* (fibers) sets the scheduler's order: xcs_host_order */
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

/* The launchers of every kernel (fibers: fiber_launcher_fmt's), allocated. */
static char *kh_launchers(int n, const char *const *names, const char *args_type, bool fibers) {
    size_t cap = 1;
    for (int k = 0; k < n; k++)
        cap += sizeof launcher_fmt + sizeof fiber_launcher_fmt + 4 * strlen(names[k]) + strlen(args_type);
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (int k = 0; k < n; k++) {
        const char *nm = names[k];
        int w = fibers ? snprintf(s + len, cap - len, fiber_launcher_fmt, nm, nm, args_type, nm, nm)
                       : snprintf(s + len, cap - len, launcher_fmt, nm, nm, args_type);
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
    return xcs_kernel_host_compile_ex(src, n_kernels, kernel_names, args_type, 0, out);
}

xcs_status xcs_kernel_host_compile_ex(const char *src, int n_kernels, const char *const *kernel_names,
                                      const char *args_type, unsigned flags, xcs_kernel_host **out) {
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
    const bool coop = flags & XCS_KERNEL_HOST_COOPERATIVE, fibers = coop && kh_cooperates(src);
    char *launchers = kh_launchers(n_kernels, kernel_names, args_type, fibers);
    xcs_kernel_host *k = calloc(1, sizeof *k);
    if (k) k->fn = calloc((size_t)n_kernels, sizeof *k->fn);
    xcs_status st = XCS_OK;
    char log[700];
    log[0] = '\0';
    if (!shim || !cpp || !so || !launchers || !k || !k->fn) {
        st = xcs_error(XCS_ERR_MEMORY, "kernel_host: out of memory");
    } else if (!kh_write(shim, shim_text, coop ? coop_text : NULL) || !kh_write(cpp, src, launchers)) {
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
            k->fibers = fibers;
            void *f = fibers ? dlsym(k->lib, "xcs_host_order") : NULL;
            if (fibers && !f) st = xcs_error(XCS_ERR_VALUE, "kernel_host: xcs_host_order not found in the compiled kernels");
            else if (f) memcpy(&k->order, &f, sizeof f);
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
    switch (k->fn[kernel](args, blocks, threads)) {
    case 0: return XCS_OK;
    case 1:
        return xcs_error(XCS_ERR_VALUE,
                         "kernel_host: kernel %d (%u x %u threads): a block's live threads all wait at barriers that "
                         "cannot open (a __syncthreads or shuffle not reached by every thread)",
                         kernel, blocks, threads);
    case 2: return xcs_error(XCS_ERR_VALUE, "kernel_host: kernel %d: %u threads per block (at most 1024)", kernel, threads);
    case 3: return xcs_error(XCS_ERR_MEMORY, "kernel_host: kernel %d: no memory for %u fibers", kernel, threads);
    case 4: return xcs_error(XCS_ERR_VALUE, "kernel_host: kernel %d launched from inside a launch", kernel);
    default:
        return xcs_error(XCS_ERR_VALUE,
                         "kernel_host: kernel %d: a warp shuffle whose mask leaves out a lane of the warp, or whose "
                         "width is not a power of two up to 32 (not emulated)",
                         kernel);
    }
}

bool xcs_kernel_host_fibers(const xcs_kernel_host *k) { return k && k->fibers; }

xcs_status xcs_kernel_host_set_schedule(xcs_kernel_host *k, xcs_kernel_host_schedule order, uint64_t seed) {
    if (!k || (int)order < (int)XCS_KERNEL_HOST_ROUND_ROBIN || (int)order > (int)XCS_KERNEL_HOST_RANDOM)
        return xcs_error(XCS_ERR_VALUE, "kernel_host: no kernels, or an unknown order %d", (int)order);
    if (k->order) k->order((int)order, (unsigned long long)seed);
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
