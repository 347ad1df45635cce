/* blocks.h — a device's live memory blocks and the stream order each needs.
 *
 * Work on one device is queued on several streams (one per host thread,
 * runtime.c), so two kernels that touch the same block from different
 * streams are not ordered by the hardware.  This table keeps, for every
 * block the caching allocator has handed out, which stream last wrote it
 * and which streams have read it since, and answers one question before
 * each kernel or copy: which other streams must stream s wait for first?
 *
 *   - a read waits for the last writer, once (later reads on s are
 *     already ordered after it);
 *   - a write waits for the last writer and every reader since, so it
 *     overwrites nothing another stream still reads;
 *   - a block handed out again waits for every stream that used it before
 *     it went back to the cache, and then counts as written by its new
 *     stream, so whoever touches it next is ordered after all of them.
 *
 * Reads on one stream, or reads of one block by many streams, never wait:
 * the single-thread case costs a hash lookup per operand and nothing on the
 * device.  Streams are slots 0..XCS_CU_MAX_STREAMS-1 (masks of them: the
 * streams to wait for); waiting is the caller's (an event recorded on each
 * stream of the mask, then waited for on s).  Memory the table does not
 * know (DLPack imports) is not ordered across streams.  Not thread-safe: the
 * runtime holds its allocator lock around every call. */
#ifndef XCS_CUDA_BLOCKS_H
#define XCS_CUDA_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XCS_CU_MAX_STREAMS 32
typedef uint32_t xcs_cu_smask; /* bit s: stream slot s */

typedef struct xcs_cu_blocks xcs_cu_blocks;

xcs_cu_blocks *xcs_cu_blocks_new(void); /* NULL when out of memory */
void xcs_cu_blocks_free(xcs_cu_blocks *b);

/* Block [base, base + size) is handed out to stream s; `users` are the
 * streams that may still have work on it (0 for memory fresh from the
 * driver).  *wait: the streams s must wait for before using it.  false when
 * out of memory (nothing changed). */
bool xcs_cu_blocks_add(xcs_cu_blocks *b, uint64_t base, size_t size, int s, xcs_cu_smask users,
                       xcs_cu_smask *wait);
/* Takes the block at `base` out of the table: its size and the streams that
 * may still have work on it (for the cache).  false when unknown. */
bool xcs_cu_blocks_remove(xcs_cu_blocks *b, uint64_t base, size_t *size, xcs_cu_smask *users);
/* Stream s is about to read (write false) or write the block that starts
 * at addr (exact) or holds it (!exact: a scan when addr is not a block's
 * start): the streams it must wait for first; 0 when none or the memory is
 * not in the table. */
xcs_cu_smask xcs_cu_blocks_access(xcs_cu_blocks *b, uint64_t addr, bool exact, int s, bool write);

int xcs_cu_blocks_count(const xcs_cu_blocks *b);
/* The i-th live block's base (i < count), in no particular order. */
uint64_t xcs_cu_blocks_base(const xcs_cu_blocks *b, int i);

#endif /* XCS_CUDA_BLOCKS_H */
