/* nccl.h — collectives across devices through NCCL, opened with dlopen
 * (libnccl.so.2, or $XCS_NCCL_LIBRARY; XCS_NCCL=0 turns it off), for pmap's
 * staged psum / pmax / all_gather when its blocks sit on several GPUs: the
 * blocks' parts are combined device to device, and every device goes on
 * with the result in its own memory, without a round trip through the host.
 *
 * Communicators are made once per ordered set of devices (rank i = the i-th
 * device = block i) and kept.  A collective is one NCCL group: on each
 * device it goes on the calling thread's stream (runtime.h), ordered after
 * the work that writes its input through the block table, like a kernel.
 * Groups on one set of devices are issued under that set's lock, so two
 * threads' collectives reach every rank in the same order (NCCL's rule). */
#ifndef XCS_CUDA_NCCL_H
#define XCS_CUDA_NCCL_H

#include <stddef.h>

#include "runtime.h"
#include "xcs_cuda.h"

typedef struct xcs_nccl xcs_nccl;

/* kind (xcs_cuda.h): SUM and MAX give out[i] the elementwise sum / max of
 * every in[j] (counts[0] elements each); GATHER gives out[i] in[0] ++ in[1]
 * ++ ... (counts[j] elements from rank j). */

/* Opens NCCL: XCS_ERR_UNSUPPORTED with the reason when it is missing, too
 * old or turned off. */
xcs_status xcs_nccl_open(xcs_nccl **out);
void xcs_nccl_close(xcs_nccl *nc); /* destroys the communicators */
int xcs_nccl_version(const xcs_nccl *nc); /* e.g. 22805 */

/* True when NCCL can carry dtype for kind (else the caller combines on the host). */
bool xcs_nccl_supports(xcs_cuda_coll kind, xcs_dtype dt);

/* One collective over n devices (distinct, n <= XCS_CUDA_MAX_DEVICES):
 * rank i's input in[i] and output out[i] are device addresses on rts[i]
 * (in[i] == out[i] is allowed for SUM and MAX).  Returns once the group is
 * queued; a later read of out[i] waits for it like any kernel's output. */
xcs_status xcs_nccl_run(xcs_nccl *nc, xcs_cuda_coll kind, int n, xcs_cu_runtime *const *rts, const xcs_cu_ptr *in,
                        const xcs_cu_ptr *out, const size_t *counts, xcs_dtype dt);

/* Communicator sets made so far (for tests). */
int xcs_nccl_cliques(xcs_nccl *nc);

#endif /* XCS_CUDA_NCCL_H */
