/* runtime.h — the CUDA device runtime's first layer: a device (primary
 * context) through the driver API opened with dlopen, device memory, and
 * fused programs run as NVRTC-compiled kernels (codegen.h), each compiled
 * once per (source, device) and kept in an in-memory module cache.
 *
 * Streams: every host thread queues its work on a stream of its own (up to
 * XCS_CUDA_STREAMS, default 16, then shared round-robin), so threads do not
 * wait for each other's kernels, and a host copy waits only for its own
 * stream.  Where threads share memory, the allocator's block table
 * (blocks.h) orders the streams with events: a read after another stream's
 * write waits for that write, a write waits for the other streams' reads,
 * and a block freed by one stream and handed out to another waits for its
 * last users.  Host copies go through pinned staging buffers: an upload
 * returns once its data is staged, a download waits for its own stream only.
 *
 * Launches are asynchronous; programs that can raise (integer division,
 * negative integer powers) are waited for so that the error is reported at
 * the kernel.  XCS_CUDA_SYNC=1 waits for every launch and upload.  Kernels
 * are also kept on disk (see runtime.c).
 * Every driver and NVRTC call is checked; failures return XCS_ERR_* with a
 * message naming the call, the kernel and the driver's error name. */
#ifndef XCS_CUDA_RUNTIME_H
#define XCS_CUDA_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blocks.h"
#include "codegen.h"
#include "xcs.h"

typedef struct xcs_cu_runtime xcs_cu_runtime;
typedef uint64_t xcs_cu_ptr; /* a device address (CUdeviceptr) */

/* Opens device `ordinal`: XCS_ERR_UNSUPPORTED with the reason when there is
 * no driver, no such device, or no NVRTC. */
xcs_status xcs_cu_open(int ordinal, xcs_cu_runtime **out);
void xcs_cu_close(xcs_cu_runtime *rt);
/* "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, driver 12040". */
const char *xcs_cu_describe(const xcs_cu_runtime *rt);
int xcs_cu_cc(const xcs_cu_runtime *rt); /* compute capability, e.g. 90 */
int xcs_cu_ordinal(const xcs_cu_runtime *rt); /* the device's number */
/* Makes rt's context current on the calling thread (before cuBLAS calls). */
xcs_status xcs_cu_make_current(xcs_cu_runtime *rt);

/* The caching allocator: blocks come in size classes (512 B steps under
 * 1 MiB, 2 MiB steps above) and go back to a per-device cache when freed;
 * on out-of-memory the cache is emptied and the allocation tried once more,
 * then the error names the sizes in use and free. */
typedef struct xcs_cu_mem_stats {
    int64_t current_bytes, peak_bytes, cached_bytes; /* handed out / most ever / kept for reuse */
    int64_t allocs, reused, device_allocs;           /* requests / served from the cache / cuMemAlloc calls */
    int64_t row_chains;                              /* row-chain kernels launched */
    int64_t gemm_epilogues;                          /* GEMMs run with their epilogue (cuBLASLt) */
    int64_t scan_loops;                              /* scan loops run as one kernel */
    int64_t downloads;                               /* copies to the host (xcs_cu_to_host) */
    int64_t uploads;                                 /* copies to the device (xcs_cu_to_device) */
    int64_t solver_factorizations;                   /* matrices factored by cuSOLVER */
} xcs_cu_mem_stats;
/* Counts, in the stats above: n GEMMs that ran with their group's epilogue
 * inside them (GEMM_EPILOGUE), n matrices that cuSOLVER factored (SOLVER),
 * n row-chain or scan-loop kernels launched (ROW_CHAIN, SCAN_LOOP). */
typedef enum {
    XCS_CU_NOTE_GEMM_EPILOGUE,
    XCS_CU_NOTE_SOLVER,
    XCS_CU_NOTE_ROW_CHAIN,
    XCS_CU_NOTE_SCAN_LOOP
} xcs_cu_note_kind;
void xcs_cu_note(xcs_cu_runtime *rt, xcs_cu_note_kind kind, int64_t n);
xcs_status xcs_cu_alloc(xcs_cu_runtime *rt, size_t nbytes, xcs_cu_ptr *out);
void xcs_cu_free(xcs_cu_runtime *rt, xcs_cu_ptr p);
void xcs_cu_empty_cache(xcs_cu_runtime *rt);
void xcs_cu_mem_stats_get(xcs_cu_runtime *rt, xcs_cu_mem_stats *out);
void xcs_cu_mem_reset_peak(xcs_cu_runtime *rt);
/* One use of device memory by the next piece of work on the calling
 * thread's stream: the block starting at addr (exact: a tensor's storage
 * data) or holding it (!exact), read or written. */
typedef struct xcs_cu_use {
    xcs_cu_ptr addr;
    bool write, exact;
} xcs_cu_use;
/* Orders the calling thread's stream after the work of other streams that
 * these uses must follow (blocks.h).  Kernels' callers (backend.c) call it
 * with their operands first; the copies below order themselves. */
xcs_status xcs_cu_order(xcs_cu_runtime *rt, int n, const xcs_cu_use *use);
/* The calling thread's stream: its handle (a CUstream) and its number
 * (either may be NULL; NULL and -1 on failure). */
xcs_status xcs_cu_stream(xcs_cu_runtime *rt, void **handle, int *index);

/* Zeroes nbytes (a multiple of 4) at dst, on the calling thread's stream. */
xcs_status xcs_cu_zero(xcs_cu_runtime *rt, xcs_cu_ptr dst, size_t nbytes);
/* Device-to-device copy, on the calling thread's stream. */
xcs_status xcs_cu_copy(xcs_cu_runtime *rt, xcs_cu_ptr dst, xcs_cu_ptr src, size_t nbytes);
/* Waits for every launch on every stream; an asynchronous kernel fault is
 * reported here, naming the last kernel this thread launched. */
xcs_status xcs_cu_sync(xcs_cu_runtime *rt);
/* Waits for the calling thread's stream only. */
xcs_status xcs_cu_sync_stream(xcs_cu_runtime *rt);
/* Waits until the work queued so far that writes the block holding addr
 * (on any stream) is done: the calling thread's stream is ordered after it
 * and waited for. */
xcs_status xcs_cu_wait(xcs_cu_runtime *rt, xcs_cu_ptr addr);
/* CUDA events on the calling thread's stream, for timing (benchmarks). */
xcs_status xcs_cu_event_new(xcs_cu_runtime *rt, void **ev);
xcs_status xcs_cu_event_record(xcs_cu_runtime *rt, void *ev);
xcs_status xcs_cu_event_ms(xcs_cu_runtime *rt, void *start, void *stop, float *ms);
void xcs_cu_event_free(xcs_cu_runtime *rt, void *ev);
/* Host copies (dst / src may point inside a block), ordered after the
 * other streams' work on that block.  to_device returns once src has been
 * staged (src may change right after); uploads of at most
 * XCS_CU_SCALAR_BYTES (multiples of 4, aligned) are queued as memsets
 * instead, the host not waiting for a staging buffer.  to_host returns once
 * dst holds the data. */
#define XCS_CU_SCALAR_BYTES 16
xcs_status xcs_cu_to_device(xcs_cu_runtime *rt, xcs_cu_ptr dst, const void *src, size_t nbytes);
xcs_status xcs_cu_to_host(xcs_cu_runtime *rt, void *dst, xcs_cu_ptr src, size_t nbytes);

/* A fused-program operand on the device: base address of element [0, ...]
 * and strides (elements) per dim of the program's space (0: broadcast). */
typedef struct xcs_cu_operand {
    xcs_cu_ptr base;
    xcs_dtype dtype;
    int64_t strides[XCS_MAX_DIMS];
} xcs_cu_operand;

/* Runs program p over its space: inputs/outputs as above (a REDUCE output is
 * C-contiguous with 1 on the reduced axes).  Picks the flat variant when
 * every operand allows it.  Waits for the kernel; integer division by zero
 * and negative integer powers come back as the CPU backend reports them. */
xcs_status xcs_cu_run_fused(xcs_cu_runtime *rt, const xcs_fused_program *p, const xcs_cu_operand *in,
                            const xcs_cu_operand *out);

/* What xcs_cu_run_fused launches for p over these operands, without a
 * device (tests run the kernel on the host with it): the kernel's spec (the
 * flat variant when every operand is C-contiguous over the space or a
 * broadcast scalar; vec4 when, besides, every streamed operand is 4 or 2
 * bytes wide, aligned to four elements, and the count a multiple of 4), its
 * argument block (all but the fault word) and its grid for a device of
 * sm_count SMs.  False when the space is empty: nothing to launch. */
bool xcs_cu_fused_launch(const xcs_fused_program *p, const xcs_cu_operand *in, const xcs_cu_operand *out, int sm_count,
                         xcs_cuda_spec *spec, xcs_cuda_args *args, long long *blocks);

/* Runs a row chain's kernel (codegen.h) with args (err filled in here);
 * `checked`: some program can raise (then the launch is waited for). */
xcs_status xcs_cu_run_rows(xcs_cu_runtime *rt, const xcs_cuda_row_spec *rs, const xcs_cuda_row_args *args,
                           bool checked);
/* Runs a scan loop's kernel (codegen.h) with args (err filled in here). */
xcs_status xcs_cu_run_scan(xcs_cu_runtime *rt, const xcs_cuda_scan_spec *ss, const xcs_cuda_scan_args *args);
/* Runs an index kernel (codegen.h: take, one of scatter_add's steps) over
 * its work (err filled in here); `checked`: waited for, so an index out of
 * range is XCS_ERR_INDEX (else the caller knows them in range). */
xcs_status xcs_cu_run_index(xcs_cu_runtime *rt, const xcs_cuda_index_spec *is, const xcs_cuda_index_args *args,
                            bool checked);
/* Runs one launch of an argsort of x (dtype: x's) from its plan
 * (codegen.h), asynchronously. */
xcs_status xcs_cu_run_sort(xcs_cu_runtime *rt, const xcs_cuda_sort_step *step, xcs_dtype dtype);
/* Runs a linalg kernel (codegen.h) over the batch, a block a matrix (err
 * filled in here); solve and cholesky are waited for, so a singular or
 * not positive definite matrix is XCS_ERR_LINALG at the op (slogdet and
 * eigh are not). */
xcs_status xcs_cu_run_linalg(xcs_cu_runtime *rt, const xcs_cuda_linalg_spec *ls, const xcs_cuda_linalg_args *args);
/* Runs a uniform / normal draw's kernel (codegen.h), asynchronously. */
xcs_status xcs_cu_run_random(xcs_cu_runtime *rt, const xcs_cuda_random_spec *rs, const xcs_cuda_random_args *args);
/* Runs an argmax/argmin kernel (codegen.h), a block per output. */
xcs_status xcs_cu_run_argred(xcs_cu_runtime *rt, const xcs_cuda_argred_spec *as, const xcs_cuda_argred_args *args);

/* The error a kernel's fault word err reports (XCS_OK for none): an op's
 * fault as the program that set it names it (progs: the kernel's n_progs
 * programs, their bits where XCS_ROW_FAULT_SHIFT puts them; none: a
 * generic message), or the kernel's own XCS_CUDA_ERR_* naming `kernel`. */
xcs_status xcs_cu_fault_status(unsigned err, const xcs_fused_program *const *progs, int n_progs, const char *kernel);

/* Kernels compiled so far (module cache size), for tests. */
int xcs_cu_kernels_cached(const xcs_cu_runtime *rt);

#endif /* XCS_CUDA_RUNTIME_H */
