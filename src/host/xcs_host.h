/* xcs_host.h — the CPU backend and the host task graph.
 *
 * Public entry points of src/host.  Depends on core (xcs.h) only. */
#ifndef XCS_HOST_H
#define XCS_HOST_H

#include "xcs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Registers the CPU backend with core.  Idempotent and thread-safe. */
xcs_status xcs_host_init(void);
/* What this build of the CPU backend has (OpenMP, CBLAS, thread count). */
void xcs_host_build_info(xcs_build_info *out);

/* The CUDA backend module (src/cuda/xcs_cuda.h), opened and probed once at
 * first call: what it found, or why there is no usable device (reason).
 * *module: the path tried (NULL when disabled); *loaded: it was opened. */
struct xcs_cuda_probe;
const struct xcs_cuda_probe *xcs_cuda_probe_get(const char **module, bool *loaded);
/* Opens CUDA device `ordinal` through the module and registers the CUDA
 * backend (XCS_DEVICE_CUDA) with core; XCS_ERR_UNSUPPORTED with the probe's
 * reason when there is none.  Idempotent, thread-safe. */
xcs_status xcs_cuda_activate(int ordinal);
/* "NVIDIA H200, sm_90, 132 SMs, ..." of an activated device ("" if not). */
const char *xcs_cuda_describe(int ordinal);
/* The caching allocator of an activated device (all zero when not). */
struct xcs_cuda_mem_stats;
void xcs_cuda_mem_stats_get(int ordinal, struct xcs_cuda_mem_stats *out);
void xcs_cuda_empty_cache(int ordinal);
void xcs_cuda_set_tf32(bool on);
xcs_status xcs_cuda_sync(int ordinal);
/* Waits for the work that writes the device block holding p (see
 * xcs_cuda_module.wait). */
xcs_status xcs_cuda_wait(int ordinal, const void *p);
int xcs_cuda_kernels_cached(int ordinal);
/* Combines pmap's parts across GPUs, device to device (kind: xcs_cuda_coll
 * of xcs_cuda.h; see xcs_cuda_module.collective); XCS_ERR_UNSUPPORTED with
 * the reason when the module cannot (no NCCL). */
xcs_status xcs_cuda_collective(int kind, int n, const xcs_tensor *const *part, xcs_tensor *const *out);

/* The two matmul implementations, callable directly so tests can check that
 * they agree.  Same contract as xcs_backend.matmul.  The BLAS one returns
 * XCS_ERR_UNSUPPORTED when the build has no CBLAS or the dtype is not f32/f64. */
xcs_status xcs_host_matmul_blocked(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out);
xcs_status xcs_host_matmul_blas(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out);

/* ---------------------------------------------------------------- task graph
 *
 * The host task graph runs orchestration calls (LLM / tool calls: blocking,
 * mostly waiting on the network) concurrently.  One graph per jitted call;
 * tasks are added while the caller's Python body runs, each with the tasks
 * it depends on, and run on a process-wide pool of worker threads that
 * grows on demand (a blocked call never holds a compute thread, and a task
 * that itself runs a jitted call can always get a worker, so nesting cannot
 * deadlock).  At most max_workers tasks of one graph run at once.  A waiting
 * caller runs its graph's ready tasks itself when the pool cannot grow (it
 * is at its cap), and otherwise sleeps until its tasks are done.
 *
 * Why not OpenMP tasks (DESIGN.md §7 suggests them): an OpenMP team has a
 * fixed size, so blocked calls would occupy the threads that run the fused
 * kernels; tensor work done by the caller while its tasks run would sit
 * inside an active parallel region and lose its own parallelism (nested
 * regions run on one thread by default); and OpenMP offers no way to wait
 * for one given task while helping, nor to cancel queued tasks.  So the
 * graph has its own threads (C11 threads), and OpenMP stays the compute
 * layer.
 *
 * The graph knows nothing of Python: a task is fn(arg), returning 0 on
 * success; arg is borrowed (the caller keeps it alive until the task is
 * finished or cancelled). */

typedef struct xcs_taskgraph xcs_taskgraph;

typedef enum xcs_task_state {
    XCS_TASK_PENDING,   /* waiting for dependencies */
    XCS_TASK_READY,     /* queued */
    XCS_TASK_RUNNING,
    XCS_TASK_DONE,
    XCS_TASK_FAILED,
    XCS_TASK_CANCELLED, /* never ran: cancelled, or a dependency failed */
} xcs_task_state;

typedef int (*xcs_task_fn)(void *arg);

typedef struct xcs_taskgraph_stats {
    int tasks;          /* submitted */
    int peak_running;   /* most tasks running at once */
    int helped;         /* tasks run by a waiting caller */
    int cancelled;
    double wait_s;      /* time callers spent in waits */
} xcs_taskgraph_stats;

/* What a worker does around the tasks of a graph: enter() before running
 * one (after it may run more without leaving), leave() before it waits for
 * work or moves to a graph with other hooks, thread_exit() when a worker
 * that used them ends.  For Python: take the GIL once for a run of short
 * tasks instead of once per task.  Hooks are compared by address. */
typedef struct xcs_task_hooks {
    void (*enter)(void);
    void (*leave)(void);
    void (*thread_exit)(void);
} xcs_task_hooks;

xcs_status xcs_taskgraph_new(int max_workers, xcs_taskgraph **out);
/* Same, with hooks (borrowed; must outlive the graph and every worker). */
xcs_status xcs_taskgraph_new_hooked(int max_workers, const xcs_task_hooks *hooks, xcs_taskgraph **out);
/* Cancels what has not started, waits for what runs, frees.  NULL is fine. */
void xcs_taskgraph_free(xcs_taskgraph *g);
/* Adds fn(arg) depending on tasks deps[0..n_deps) (ids from this graph; a
 * repeated one counts once, and xcs_taskgraph_deps lists them sorted);
 * *id receives its id (0, 1, 2, ... in submission order).  A task whose
 * dependency failed or was cancelled is cancelled at once. */
xcs_status xcs_taskgraph_submit(xcs_taskgraph *g, xcs_task_fn fn, void *arg, int n_deps, const int32_t *deps,
                                int32_t *id);
/* Waits until task id has finished (DONE, FAILED or CANCELLED) or timeout_s
 * (< 0: no limit) has passed, running the graph's ready tasks meanwhile;
 * returns the task's state then.  id < 0 waits for every task. */
xcs_task_state xcs_taskgraph_wait(xcs_taskgraph *g, int32_t id, double timeout_s);
xcs_task_state xcs_taskgraph_state(xcs_taskgraph *g, int32_t id);
/* Cancels every task that has not started; returns how many. */
int xcs_taskgraph_cancel(xcs_taskgraph *g);
/* Tasks running or queued (not finished, not cancelled). */
int xcs_taskgraph_active(xcs_taskgraph *g);
void xcs_taskgraph_stats_get(xcs_taskgraph *g, xcs_taskgraph_stats *out);
/* Dependency level of a task: 0 without dependencies, else 1 + the
 * deepest dependency's level; its dependencies (up to cap) and their count. */
int xcs_taskgraph_level(xcs_taskgraph *g, int32_t id);
int xcs_taskgraph_deps(xcs_taskgraph *g, int32_t id, int32_t *deps, int cap);
/* Worker threads alive in the pool (for tests). */
int xcs_taskpool_threads(void);

#ifdef __cplusplus
}
#endif
#endif /* XCS_HOST_H */
