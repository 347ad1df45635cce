/* backend.h — the module's device entries (backend.c), gathered into the
 * module table by driver.c; xcs_cuda.h says what each does. */
#ifndef XCS_CUDA_BACKEND_H
#define XCS_CUDA_BACKEND_H

#include "runtime.h"
#include "xcs_cuda.h"

xcs_status xcs_cuda_be_open(int ordinal);
const char *xcs_cuda_be_describe(int ordinal);
xcs_status xcs_cuda_be_alloc(int ordinal, size_t nbytes, void **out);
void xcs_cuda_be_free(int ordinal, void *p);
xcs_status xcs_cuda_be_upload(int ordinal, void *dst, const void *src, size_t nbytes);
xcs_status xcs_cuda_be_download(int ordinal, void *dst, const void *src, size_t nbytes);
xcs_status xcs_cuda_be_sync(int ordinal);
xcs_status xcs_cuda_be_wait(int ordinal, const void *p);
xcs_status xcs_cuda_be_elementwise(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_dtype compute,
                                   xcs_tensor *out);
xcs_status xcs_cuda_be_reduce(xcs_op op, const xcs_tensor *x, unsigned axes, xcs_tensor *out);
/* As xcs_backend.take / scatter_add on a device (xcs.h): index kernels
 * (codegen.h), waited for so that an index out of range is reported here. */
xcs_status xcs_cuda_be_take(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out);
/* take with indices known in range: not waited for. */
xcs_status xcs_cuda_be_take_in_range(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out);
/* scatter_add: a sort of the indices and a sum per output element in
 * order (codegen.h), the CPU's bits; its last kernel is waited for. */
xcs_status xcs_cuda_be_scatter_add(const xcs_tensor *idx, const xcs_tensor *src, int axis, xcs_tensor *out);
/* As xcs_backend.random: a uniform / normal draw (float32, float64) by a
 * kernel on the device (codegen.h), the CPU's stream; and its arguments. */
xcs_status xcs_cuda_be_random(xcs_op op, xcs_rng_key key, double a, double b, xcs_tensor *out);
xcs_status xcs_cuda_random_args_of(xcs_op op, xcs_rng_key key, double a, double b, const xcs_tensor *out,
                                   xcs_cuda_random_args *args);
/* As xcs_backend.argsort: a tile sort and merges (codegen.h), async. */
xcs_status xcs_cuda_be_argsort(const xcs_tensor *x, int axis, xcs_tensor *out);
/* solve, slogdet, cholesky, eigh (float32/64): the kernels of linalg.c;
 * XCS_ERR_UNSUPPORTED for the others (core runs them on the host). */
xcs_status xcs_cuda_be_linalg(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_tensor *out);
/* As xcs_backend.argreduce: a kernel with a block per output (codegen.h). */
xcs_status xcs_cuda_be_argreduce(xcs_op op, const xcs_tensor *x, int axis, xcs_tensor *out);
xcs_status xcs_cuda_argred_args_of(xcs_op op, const xcs_tensor *x, int axis, const xcs_tensor *out,
                                   xcs_cuda_argred_args *a);
/* Their kernels' arguments (the operands checked; addresses are the
 * storages' data plus offsets, so host tensors give host pointers: tests
 * run the kernels on the host with them). */
xcs_status xcs_cuda_take_args(const xcs_tensor *x, const xcs_tensor *idx, int axis, const xcs_tensor *out,
                              xcs_cuda_index_args *a);
xcs_status xcs_cuda_scatter_args(const xcs_tensor *idx, const xcs_tensor *src, int axis, const xcs_tensor *out,
                                 xcs_cuda_index_args *a);
xcs_status xcs_cuda_be_matmul(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out);
xcs_status xcs_cuda_be_run_rows(const xcs_row_chain *rc);
/* The row kernel's spec and arguments for a chain (what run_rows launches);
 * XCS_ERR_UNSUPPORTED when the chain does not fit it.  Tests use it to
 * compile real chains' kernels with NVRTC without a GPU. */
struct xcs_cuda_row_spec;
struct xcs_cuda_row_args;
xcs_status xcs_cuda_row_spec_of(const xcs_row_chain *rc, struct xcs_cuda_row_spec *out, struct xcs_cuda_row_args *args,
                                bool *checked, int *dev);
/* A scan loop (xcs_backend.run_scan) as one kernel; and its spec and
 * arguments, device addresses as they are (tests run the kernel's source
 * on the host); XCS_ERR_UNSUPPORTED when the loop does not fit. */
struct xcs_cuda_scan_spec;
struct xcs_cuda_scan_args;
xcs_status xcs_cuda_be_run_scan(const xcs_scan_loop *sl);
xcs_status xcs_cuda_scan_spec_of(const xcs_scan_loop *sl, struct xcs_cuda_scan_spec *ss, struct xcs_cuda_scan_args *args,
                                 int *dev);
xcs_status xcs_cuda_be_run_fused(const xcs_fused_program *p, const xcs_tensor *const *in, xcs_tensor *const *out);
/* A matmul group (xcs_backend.matmul_fused): a bias (+ relu) epilogue inside
 * the GEMM through cuBLASLt where it applies, else the GEMM into prod and the
 * program as a kernel. */
xcs_status xcs_cuda_be_matmul_fused(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *prod,
                                    const xcs_fused_program *p, const xcs_tensor *const *in, xcs_tensor *const *out);
void xcs_cuda_be_mem_stats(int ordinal, xcs_cuda_mem_stats *out);
void xcs_cuda_be_empty_cache(int ordinal);
void xcs_cuda_be_set_tf32(int on);
int xcs_cuda_be_kernels_cached(int ordinal);
/* The device address of t's element [0, ...] (storage data plus offset). */
xcs_cu_ptr xcs_cuda_be_addr(const xcs_tensor *t);
/* collective.c: combines parts on several devices through NCCL. */
xcs_status xcs_cuda_be_collective(xcs_cuda_coll kind, int n, const xcs_tensor *const *part, xcs_tensor *const *out);
/* NCCL's version, or 0 and why not in why[cap]: the module's one NCCL handle,
 * opened here at the first call (the probe's) and kept for the collectives. */
int xcs_cuda_be_nccl_info(char *why, size_t cap);

/* For C tests and benchmarks that link the backend (not the module): opens
 * the device and registers these entries with this copy of the core as
 * XCS_DEVICE_CUDA; and the device's runtime (events, copies). */
struct xcs_cu_runtime;
xcs_status xcs_cuda_be_register(int ordinal);
struct xcs_cu_runtime *xcs_cuda_be_runtime(int ordinal);

#endif /* XCS_CUDA_BACKEND_H */
