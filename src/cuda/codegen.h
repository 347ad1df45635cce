/* codegen.h — fused programs (xcs.h) lowered to CUDA C for NVRTC.
 *
 * Pure C, no CUDA header: it builds wherever the core builds, so CI (which
 * has NVRTC but no GPU) compiles every generated kernel.  The generated
 * source includes nothing: a fixed prelude (types, numpy-faithful helpers,
 * dtype converters) followed by one kernel whose body is the program's
 * instruction list as straight-line code.
 *
 * float16 and bfloat16 are storage types: the prelude's structs xcs_h and
 * xcs_bh, converted bit for bit by src/core/half.h's own code; no
 * op computes in them (core computes in float32).
 *
 * Kernels take one parameter, `xcs_args` (declared in the prelude and
 * mirrored by xcs_cuda_args below, so the runtime fills it in C):
 *   elementwise  a grid-stride loop over the n elements of the space; each
 *                element's operand offsets come from unravelling its index
 *                over the shape (or are the index itself when every operand
 *                is C-contiguous over the space / a broadcast scalar: the
 *                "flat" variant);
 *   reduction    one block per output element (grid-stride over outputs),
 *                its threads striding over the reduced elements, partial
 *                results combined by warp shuffles and one shared array;
 *                float sums and products accumulate in double, integer ones
 *                in int64 (as xcs_reduce does on the CPU).
 * Integer floor_divide/mod by zero and negative integer powers set bits in
 * *err (XCS_EW_ERR_* values), which the runtime turns into XCSError. */
#ifndef XCS_CUDA_CODEGEN_H
#define XCS_CUDA_CODEGEN_H

#include "xcs.h"

#define XCS_CUDA_BLOCK 256 /* threads per block of every generated kernel */
#define XCS_CUDA_UNROLL 4  /* elements per thread per step of a flat elementwise kernel */

/* What a kernel is specialised for besides its program. */
typedef struct xcs_cuda_spec {
    const xcs_fused_program *p;
    xcs_dtype in_dtype[XCS_FUSED_MAX_IO];
    xcs_dtype out_dtype[XCS_FUSED_MAX_IO];
    /* Elementwise only: every operand is C-contiguous over the space or a
     * broadcast scalar (bit k of scalar_inputs), so offsets are the index. */
    bool flat;
    unsigned scalar_inputs;
    /* Flat only: every non-scalar operand is float32/int32 (16-byte aligned)
     * or float16/bfloat16 (8-byte aligned), and the element count a multiple
     * of 4, so each thread moves four elements a load (float4/int4, or the
     * prelude's xcs_h4/xcs_bh4). */
    bool vec4;
    /* The kernel's name (NULL: XCS_CUDA_KERNEL_NAME) and whether to leave the
     * prelude out: several kernels can then share one NVRTC program (the
     * prelude once, then each kernel). */
    const char *name;
    bool no_prelude;
} xcs_cuda_spec;

/* The kernel's argument block, as the prelude declares it. */
typedef struct xcs_cuda_args {
    const void *in[XCS_FUSED_MAX_IO];
    void *out[XCS_FUSED_MAX_IO];
    unsigned int *err;
    long long n;                                   /* elements (elementwise) or outputs (reduction) */
    long long rn;                                  /* reduction: elements folded into each output */
    long long shape[XCS_MAX_DIMS];                 /* the program's space */
    long long in_stride[XCS_FUSED_MAX_IO][XCS_MAX_DIMS];  /* elements, per dim of the space */
    long long out_stride[XCS_FUSED_MAX_IO][XCS_MAX_DIMS];
} xcs_cuda_args;

/* Writes the CUDA C source of spec's kernel into buf (NUL-terminated,
 * truncated at cap) and returns the length it needs, like snprintf; 0 with
 * the error set when the program cannot be lowered (an op/dtype pair with no
 * kernel, a malformed program).  The kernel is named XCS_CUDA_KERNEL_NAME. */
#define XCS_CUDA_KERNEL_NAME "xcs_fused"
size_t xcs_cuda_codegen(const xcs_cuda_spec *spec, char *buf, size_t cap);
/* Same, allocated (free() it); NULL with the error set. */
char *xcs_cuda_codegen_alloc(const xcs_cuda_spec *spec);

/* A matmul group whose program is the product plus a bias row, optionally
 * through relu, stored once: what cuBLASLt's BIAS / RELU_BIAS epilogues
 * compute inside the GEMM (the product never goes to memory).  The program
 * reads the product as input 0 (a 16-bit one widened by a CAST or by its
 * LOAD), the bias as input `bias_input` (same dtype as the product, widened
 * the same way), adds them in float32 or the product's own float dtype,
 * applies relu or nothing, and stores output 0; nothing else, and the
 * product is not needed after it (product_used).  Whether the
 * bias tensor is a row broadcast over the product is the caller's check. */
typedef enum { XCS_GEMM_EPI_NONE = 0, XCS_GEMM_EPI_BIAS, XCS_GEMM_EPI_RELU_BIAS } xcs_gemm_epi_kind;
typedef struct xcs_gemm_epi {
    xcs_gemm_epi_kind kind;
    int bias_input;
} xcs_gemm_epi;
bool xcs_cuda_gemm_epilogue(const xcs_fused_program *p, xcs_dtype prod_dtype, const xcs_dtype *in_dtypes,
                            xcs_gemm_epi *out);

/* The prelude alone (static text; what no_prelude leaves out).  Its size: */
size_t xcs_cuda_prelude(char *buf, size_t cap);

/* A hash of everything the generated source depends on (the program's
 * instructions and rank, not its shape; dtypes; variant; name): the
 * in-memory kernel cache's key, so a cached kernel is found without
 * generating its source again. */
uint64_t xcs_cuda_spec_hash(const xcs_cuda_spec *spec);

/* 64-bit FNV-1a of a NUL-terminated string: the cache key of a source. */
uint64_t xcs_cuda_source_hash(const char *src);

/* ---------------------------------------------------------------- row chains
 *
 * A chain of fused programs over the same rows (xcs_row_chain, xcs.h),
 * lowered to one kernel: a block per row, each thread holding `per`
 * columns in registers, so values made and used inside the chain never
 * reach device memory (softmax: one read of x, one write of the result).
 * Every program's space is [R, C], or [R, 1] (a program on one value per
 * row: mean = sum / n); a reduction folds axis 1 into one value per row.  Kernel parameter: struct xcs_row_args (emitted in the source,
 * mirrored by xcs_cuda_row_args). */
#define XCS_ROW_MAX 8         /* programs */
#define XCS_ROW_MAX_EXT 16    /* distinct operands read from memory */
#define XCS_ROW_MAX_OUT 16    /* values written to memory */
#define XCS_ROW_MAX_VALUES 64 /* program outputs */
#define XCS_ROW_MAX_PER 32    /* columns per thread: C <= 32 * XCS_CUDA_BLOCK */
/* Where program g of a kernel of n programs sets its fault bits
 * (XCS_FUSED_FAULT_*) in the fault word: at bit 0 when it is the only one;
 * in a row chain of several, at bit XCS_ROW_FAULT_SHIFT(g, n), above
 * XCS_CUDA_ERR_*, so that the error names the op of the program that
 * faulted. */
#define XCS_ROW_FAULT_SHIFT(g, n) ((n) > 1 ? 8 + 2 * (g) : 0)
_Static_assert(8 + 2 * XCS_ROW_MAX <= 32, "a row chain's fault bits fit the 32-bit fault word");

typedef struct xcs_cuda_row_spec {
    int n;
    const xcs_fused_program *prog[XCS_ROW_MAX];
    /* per program input: value id (>= 0, made earlier in the chain), or
     * -(e + 1) for operand e read from memory */
    int in_src[XCS_ROW_MAX][XCS_FUSED_MAX_IO];
    xcs_dtype in_dtype[XCS_ROW_MAX][XCS_FUSED_MAX_IO];
    /* per program output: its value id, and its slot in args.out (-1: not
     * written to memory) */
    int out_value[XCS_ROW_MAX][XCS_FUSED_MAX_IO];
    int out_slot[XCS_ROW_MAX][XCS_FUSED_MAX_IO];
    xcs_dtype out_dtype[XCS_ROW_MAX][XCS_FUSED_MAX_IO];
    int n_values, n_ext, n_out;
    bool value_scalar[XCS_ROW_MAX_VALUES]; /* one per row (a reduction's) */
    bool value_read[XCS_ROW_MAX_VALUES];   /* read by a later program */
    xcs_dtype value_dtype[XCS_ROW_MAX_VALUES];
    bool prog_scalar[XCS_ROW_MAX];         /* the program's space is [R, 1]: once per row, on row values */
    int ext_kind[XCS_ROW_MAX_EXT];         /* 0: per column, 1: one per row (column stride 0),
                                            * 2: per column, column stride 1 */
    bool out_unit[XCS_ROW_MAX_OUT];        /* the output's column stride is 1 */
    xcs_dtype ext_dtype[XCS_ROW_MAX_EXT];
    int per;                               /* columns per thread */
} xcs_cuda_row_spec;

typedef struct xcs_cuda_row_args {
    const void *in[XCS_ROW_MAX_EXT];
    long long in_rs[XCS_ROW_MAX_EXT], in_cs[XCS_ROW_MAX_EXT];
    void *out[XCS_ROW_MAX_OUT];
    long long out_rs[XCS_ROW_MAX_OUT], out_cs[XCS_ROW_MAX_OUT];
    unsigned int *err;
    long long R, C;
} xcs_cuda_row_args;

size_t xcs_cuda_row_codegen(const xcs_cuda_row_spec *rs, char *buf, size_t cap);
/* A hash of everything a row kernel's source depends on (the kernel cache's
 * key: a cached kernel is found without generating its source). */
uint64_t xcs_cuda_row_spec_hash(const xcs_cuda_row_spec *rs);
char *xcs_cuda_row_codegen_alloc(const xcs_cuda_row_spec *rs);

/* ---------------------------------------------------------------- scan loops
 *
 * scan's device-side loop (xcs_scan_loop, xcs.h) as one kernel: each
 * thread owns elements of the program's space (grid-stride), keeps every
 * carry of its element in a register across the `length` steps, reads
 * step t's operands at their offset plus t * in_step and writes each step's
 * outputs at theirs plus t * out_step; the carries reach memory once, at the
 * end.  A carry is read and written in its own dtype (a float16 carry is
 * rounded every step, as the step-by-step loop rounds it).  Kernel
 * parameter: struct xcs_scan_args (emitted in the source, mirrored by
 * xcs_cuda_scan_args). */
typedef struct xcs_cuda_scan_spec {
    xcs_cuda_spec base;                  /* p and its operand dtypes (a carry's: the carry's); flat/vec4 unused */
    int n_carry;                         /* <= XCS_SCAN_MAX_CARRY */
    xcs_dtype carry_dtype[XCS_SCAN_MAX_CARRY];
    int in_carry[XCS_FUSED_MAX_IO];      /* per input: the carry it reads, -1: memory */
    int out_carry[XCS_FUSED_MAX_IO];     /* per output: the carry it becomes, -1: none */
    unsigned out_mem;                    /* bit o: output o is also written to memory every step */
} xcs_cuda_scan_spec;

typedef struct xcs_cuda_scan_args {
    const void *in[XCS_FUSED_MAX_IO];
    void *out[XCS_FUSED_MAX_IO];
    const void *carry_in[XCS_SCAN_MAX_CARRY]; /* C-contiguous over the space */
    void *carry_out[XCS_SCAN_MAX_CARRY];
    unsigned int *err;
    long long n;                              /* elements of the space */
    long long length, t0, dt;                 /* steps; the first t; +1, or -1 (reverse) */
    long long shape[XCS_MAX_DIMS];
    long long in_stride[XCS_FUSED_MAX_IO][XCS_MAX_DIMS];
    long long out_stride[XCS_FUSED_MAX_IO][XCS_MAX_DIMS];
    long long in_step[XCS_FUSED_MAX_IO], out_step[XCS_FUSED_MAX_IO]; /* elements per t */
} xcs_cuda_scan_args;

size_t xcs_cuda_scan_codegen(const xcs_cuda_scan_spec *ss, char *buf, size_t cap);
char *xcs_cuda_scan_codegen_alloc(const xcs_cuda_scan_spec *ss);
uint64_t xcs_cuda_scan_spec_hash(const xcs_cuda_scan_spec *ss);

/* ---------------------------------------------------------------- index kernels
 *
 * take and scatter_add on device arrays (indexing.c), one small kernel
 * each, a grid-stride loop over its elements:
 *   take         out[o, j, q] = src[o, idx[j], q] over out's n = O*J*Q
 *                elements: src contiguous [O, A, Q], idx contiguous int64
 *                (a negative index counts from the end); TAKE_ROWS, for
 *                rows of a warp or more (an embedding lookup), a block per
 *                row (o, j): the index read once, the row copied by the
 *                block's threads side by side (no division per element);
 *   scatter_add  out[o, a, q] = the sum from zero, in order of j, of
 *                src[o, j, q] over the j with idx[j] == a (src [O, J, Q],
 *                out [O, A, Q]): the CPU's order, so the same bits, and the
 *                same from run to run (no atomics).  Four kernels
 *                (xcs_cuda_scatter_plan lists the launches): SCATTER_SORT
 *                sorts tiles of XCS_CUDA_SCATTER_TILE keys idx[j] << 32 | j
 *                (an index out of range sorts last, as A) in shared memory
 *                (bitonic); SCATTER_MERGE merges pairs of sorted runs of
 *                `width` keys (each key's place: its own rank plus a binary
 *                search in the other run), ping-ponging keys / keys2;
 *                SCATTER_BOUNDS: start[a] = the first key of position a,
 *                a <= A; SCATTER_ADD (per dtype: float32/float64/int32/
 *                int64) a thread an output element walks its segment.
 *                BOUNDS and ADD set XCS_CUDA_ERR_INDEX when start[A] != J.
 * An index out of range sets XCS_CUDA_ERR_INDEX in *err (take skips the
 * element).  Kernel parameter: struct xcs_index_args, mirrored by
 * xcs_cuda_index_args. */
#define XCS_CUDA_ERR_INDEX 4u
#define XCS_CUDA_SCATTER_TILE 2048

typedef enum {
    XCS_CUDA_TAKE = 1,
    XCS_CUDA_SCATTER_ADD = 2,
    XCS_CUDA_TAKE_ROWS = 3,
    XCS_CUDA_SCATTER_SORT = 4,
    XCS_CUDA_SCATTER_MERGE = 5,
    XCS_CUDA_SCATTER_BOUNDS = 6
} xcs_cuda_index_kind;

typedef struct xcs_cuda_index_spec {
    xcs_cuda_index_kind kind;
    xcs_dtype dtype; /* the elements' (take: only their width matters; the sort's kernels: none) */
} xcs_cuda_index_spec;

typedef struct xcs_cuda_index_args {
    const void *src;
    const long long *idx;
    void *out;
    unsigned int *err;
    long long n, A, J, Q; /* n outputs (O*J*Q for take, O*A*Q for scatter_add) */
    /* scatter_add: the sort's keys (J each; MERGE reads keys, writes keys2),
     * the A + 1 segment starts, and MERGE's run length */
    unsigned long long *keys, *keys2;
    long long *start;
    long long width;
} xcs_cuda_index_args;

/* The launches of a scatter_add, in order, each with its arguments (a: from
 * xcs_cuda_scatter_args, its keys, keys2 and start set, J < 2^32 and
 * A < 2^32 - 1): the sort's (none when J <= 1), BOUNDS, then ADD (when n >
 * 0).  The last one is the one to check.  At most XCS_CUDA_SCATTER_STEPS. */
#define XCS_CUDA_SCATTER_STEPS 26
typedef struct xcs_cuda_scatter_step {
    xcs_cuda_index_kind kind;
    xcs_cuda_index_args args;
} xcs_cuda_scatter_step;
int xcs_cuda_scatter_plan(const xcs_cuda_index_args *a, xcs_cuda_scatter_step *steps);
/* Blocks of XCS_CUDA_BLOCK threads an index kernel's work fills (its grid
 * strides over more when the device holds fewer). */
long long xcs_cuda_index_blocks(xcs_cuda_index_kind kind, const xcs_cuda_index_args *a);

/* argmax / argmin over one axis: out (int64, one per kept element, in C
 * order) = the first index of the extreme along the axis, or of the first
 * NaN (numpy's rule); a block per output, its threads striding over the
 * axis and meeting in shared memory.  bool/int32/int64/float32/float64
 * (core reduces a 16-bit float's float32 cast).  Kernel parameter: struct
 * xcs_argred_args, mirrored by xcs_cuda_argred_args. */
typedef struct xcs_cuda_argred_spec {
    xcs_op op; /* XCS_OP_ARGMAX or XCS_OP_ARGMIN */
    xcs_dtype dtype;
} xcs_cuda_argred_spec;

typedef struct xcs_cuda_argred_args {
    const void *x;     /* element [0, ...] */
    long long *out;
    long long n_out, A, sa; /* outputs; the axis' length and stride (elements) */
    int nd;                 /* x's other dims: */
    long long shape[XCS_MAX_DIMS], stride[XCS_MAX_DIMS];
} xcs_cuda_argred_args;

size_t xcs_cuda_argred_codegen(const xcs_cuda_argred_spec *as, char *buf, size_t cap);
char *xcs_cuda_argred_codegen_alloc(const xcs_cuda_argred_spec *as);
uint64_t xcs_cuda_argred_spec_hash(const xcs_cuda_argred_spec *as);

/* uniform / normal draws (float32, float64), a Philox block per thread:
 * the stream of src/host/random.c (src/core/philox.h, pasted into the
 * source), uniforms bit-identical to the CPU's, normals to its libm's
 * rounding of log/sin/cos.  Kernel parameter: struct xcs_random_args,
 * mirrored by xcs_cuda_random_args. */
typedef struct xcs_cuda_random_spec {
    xcs_op op; /* XCS_OP_RANDOM_UNIFORM or XCS_OP_RANDOM_NORMAL */
    xcs_dtype dtype;
} xcs_cuda_random_spec;

typedef struct xcs_cuda_random_args {
    void *out;          /* contiguous, n elements */
    unsigned int key[2];
    long long n;
    double lo, hi;      /* uniform: [lo, hi); normal: loc, scale */
} xcs_cuda_random_args;

size_t xcs_cuda_random_codegen(const xcs_cuda_random_spec *rs, char *buf, size_t cap);
char *xcs_cuda_random_codegen_alloc(const xcs_cuda_random_spec *rs);
uint64_t xcs_cuda_random_spec_hash(const xcs_cuda_random_spec *rs);

/* argsort along one axis (sort.c): out (int64, contiguous in x's shape) =
 * numpy.argsort(x, axis, kind="stable"), NaNs last; bool/int32/int64/
 * float32/float64 (core sorts a 16-bit float's float32 cast).  Each
 * element is a key {v, j}: its value as an unsigned integer of the same
 * order, and its position j along the axis; a row's keys are distinct, and
 * sorted by (v, j) they are its stable order.  Two kernels
 * (xcs_cuda_sort_plan lists the launches): SORT_TILE (per dtype) reads x
 * (any strides) and sorts tiles of T keys (T: the power of two that holds
 * a row, at most XCS_CUDA_SORT_SLOTS) in shared memory, bitonically,
 * XCS_CUDA_SORT_SLOTS / T tiles a block; SORT_MERGE merges pairs of a
 * row's sorted runs of `width` keys (a key's place: its rank in its own
 * run plus a binary search in the other), ping-ponging keys / keys2.  The
 * last launch (emit) writes the j's to out.  Kernel parameter: struct
 * xcs_sort_args, mirrored by xcs_cuda_sort_args. */
#define XCS_CUDA_SORT_SLOTS 2048 /* keys a tile-sort block holds (shared memory) */

typedef enum { XCS_CUDA_SORT_TILE = 1, XCS_CUDA_SORT_MERGE = 2 } xcs_cuda_sort_kind;

typedef struct xcs_cuda_sort_spec {
    xcs_cuda_sort_kind kind;
    xcs_dtype dtype; /* x's (the merge: none) */
} xcs_cuda_sort_spec;

typedef struct xcs_cuda_sort_key {
    unsigned long long v, j;
} xcs_cuda_sort_key;

typedef struct xcs_cuda_sort_args {
    const void *x;  /* element [0, ...] */
    long long *out; /* contiguous, x's shape */
    xcs_cuda_sort_key *keys, *keys2; /* R * L each (keys2: when two merges or more) */
    long long R, L, T, width; /* rows, their length, the tile, the merge's runs */
    long long sa, so;         /* the axis' stride in x; out's (the elements after the axis) */
    int nd, emit;             /* x's other dims (below); emit: write the j's to out */
    long long shape[XCS_MAX_DIMS], stride[XCS_MAX_DIMS];
} xcs_cuda_sort_args;

size_t xcs_cuda_sort_codegen(const xcs_cuda_sort_spec *ss, char *buf, size_t cap);
char *xcs_cuda_sort_codegen_alloc(const xcs_cuda_sort_spec *ss);
uint64_t xcs_cuda_sort_spec_hash(const xcs_cuda_sort_spec *ss);

/* The arguments of an argsort of x along axis into out (addresses as
 * xcs_cuda_be_addr gives them; keys unset): XCS_ERR_UNSUPPORTED for a
 * dtype without a kernel. */
xcs_status xcs_cuda_sort_args_of(const xcs_tensor *x, int axis, const xcs_tensor *out, xcs_cuda_sort_args *a);

/* The launches of an argsort (a: from xcs_cuda_sort_args_of, keys and
 * keys2 set), in order, each with its arguments: at most
 * XCS_CUDA_SORT_STEPS. */
#define XCS_CUDA_SORT_STEPS 32
typedef struct xcs_cuda_sort_step {
    xcs_cuda_sort_kind kind;
    xcs_cuda_sort_args args;
} xcs_cuda_sort_step;
int xcs_cuda_sort_plan(const xcs_cuda_sort_args *a, xcs_cuda_sort_step *steps);
/* Blocks of XCS_CUDA_BLOCK threads a step's work fills. */
long long xcs_cuda_sort_blocks(const xcs_cuda_sort_step *s);

/* Linear algebra on a batch of contiguous n x n matrices (float32,
 * float64), a block per matrix (grid-stride over the batch), its threads
 * cooperating through shared memory and barriers, with the CPU's arithmetic
 * (src/host/linalg.c; the pivots chosen alike, NaNs included):
 *   SOLVE     LU with partial pivoting applied to b (n x k) as it goes,
 *             then back substitution: out (n x k) = a^-1 b; an exactly zero
 *             pivot sets XCS_CUDA_ERR_SINGULAR;
 *   SLOGDET   the same LU: out = (sign, log|det|), (0, -inf) when singular;
 *   CHOLESKY  out = L from a's lower triangle (zeros above); a pivot not
 *             positive sets XCS_CUDA_ERR_NOT_PD;
 *   EIGH      cyclic Jacobi on the symmetric matrix of a's lower triangle,
 *             at most XCS_CUDA_JACOBI_SWEEPS sweeps: out (n + 1) x n, row 0
 *             the eigenvalues ascending, then V (its columns the vectors);
 *   SVD       one-sided Jacobi on the columns of a (of a^T when wide): out
 *             (m + 1 + n) x k, U, the values descending, V;
 *   QR        Householder as LAPACK's geqrf / orgqr: out (m + n) x k, Q
 *             then R^T;
 *   EIGVALSH, SVDVALS  EIGH's and SVD's rotations, not applied to vectors:
 *             out the values alone (n, k).
 * EIGH, SVD, QR, EIGVALSH, SVDVALS: the CPU's packing, for k = min(m, n) below the op's limit
 * (xcs_cuda_linalg_limit: the CPU's own loops' range, bigger ones it hands
 * to LAPACK, and so does the device); their sums and rotations in the
 * CPU's order (one thread sums, all rotate).  Kernel
 * parameter: struct xcs_linalg_args, mirrored by xcs_cuda_linalg_args. */
#define XCS_CUDA_ERR_SINGULAR 8u
#define XCS_CUDA_ERR_NOT_PD 16u
#define XCS_CUDA_JACOBI_SWEEPS 80 /* as the CPU's (linalg_jacobi.c) */
/* The smallest side from which eigh, svd, qr, eigvalsh and svdvals go to
 * the host's LAPACK instead of a kernel: where the CPU itself hands eigh,
 * svd and qr to LAPACK (xcs_linalg_lapack_min), so a device and the host
 * give the same factors (Jacobi's vector signs are not LAPACK's);
 * eigvalsh and svdvals: XCS_CUDA_EIGVALSH_MAX_ROWS and
 * XCS_CUDA_SVDVALS_MAX_ROWS (no signs to match: the values agree with
 * LAPACK's to rounding, and a block per matrix beats downloading the batch
 * up to there, linalg.c); 0 for the other ops (no limit). */
#define XCS_CUDA_EIGVALSH_MAX_ROWS 64
#define XCS_CUDA_SVDVALS_MAX_ROWS 48
int64_t xcs_cuda_linalg_limit(xcs_op op);

/* Big matrices of SOLVE, SLOGDET and CHOLESKY are factored by cuSOLVER
 * (solver.h; backend.c picks, from XCS_CUDA_SOLVER_MIN rows), one matrix a
 * call, between two kernels of this file that do the rest on the whole
 * batch, grid-stride over its elements:
 *   BEFORE  the factor's input: a copied to work (SOLVE, SLOGDET: n * n a
 *           matrix, a row-major a being the column-major a^T cuSOLVER
 *           factors) or to out (CHOLESKY, factored in place); SOLVE also
 *           moves b (n x k, row-major) to column-major after it in work
 *           (work_per n * n + n * k), for getrs to solve in place;
 *   AFTER   from the factors, the pivots (piv, batch x n, 1-based) and
 *           getrf/potrf's info (batch ints): SOLVE the solution back to
 *           row-major in out and XCS_CUDA_ERR_SINGULAR where an info is
 *           set; SLOGDET (sign, log|det|) as the host's LAPACK path sums
 *           them (src/host/linalg.c), (0, -inf) where an info is set;
 *           CHOLESKY zeros above the diagonal (potrf left a's values there)
 *           and XCS_CUDA_ERR_NOT_PD where an info is set.
 * WHOLE is the block-per-matrix kernel above. */
typedef enum { XCS_CUDA_LA_WHOLE = 0, XCS_CUDA_LA_BEFORE, XCS_CUDA_LA_AFTER } xcs_cuda_la_stage;
/* Whether op of n x n matrices goes to cuSOLVER (when it opens; else the
 * block-per-matrix kernel or the host, as before it): SOLVE, SLOGDET and
 * CHOLESKY from XCS_CUDA_SOLVER_MIN rows, where one block per matrix
 * leaves the GPU mostly idle (H200, 2026-11-27: 64 solves of 512 x 512
 * took 387 ms that way, torch's cuSOLVER calls 7.8).  The bound is an
 * estimate, to be tuned with benchmarks/gpu_linalg.py on a GPU. */
#define XCS_CUDA_SOLVER_MIN 256
bool xcs_cuda_linalg_solver(xcs_op op, int64_t n);

typedef struct xcs_cuda_linalg_spec {
    xcs_op op; /* XCS_OP_SOLVE, SLOGDET, CHOLESKY, EIGH, SVD or QR */
    xcs_dtype dtype;
    xcs_cuda_la_stage stage; /* not WHOLE: SOLVE, SLOGDET and CHOLESKY only */
} xcs_cuda_linalg_spec;

typedef struct xcs_cuda_linalg_args {
    const void *a, *b; /* batch x m x n (square but for SVD, QR); b (SOLVE): batch x n x k */
    void *out, *work;  /* work: batch x work_per elements */
    long long batch, m, n, k, work_per;
    unsigned int *err;
    const long long *piv; /* AFTER: cuSOLVER's pivots and infos */
    const int *info;
} xcs_cuda_linalg_args;

/* The BEFORE / AFTER kernels' scratch (a->work_per), in place of the
 * WHOLE kernel's that xcs_cuda_linalg_args_of set. */
void xcs_cuda_linalg_solver_args(xcs_op op, xcs_cuda_linalg_args *a);
size_t xcs_cuda_linalg_codegen(const xcs_cuda_linalg_spec *ls, char *buf, size_t cap);
/* Blocks of XCS_CUDA_BLOCK threads the kernel's work fills: a matrix each
 * (WHOLE), or its elements (BEFORE, AFTER). */
long long xcs_cuda_linalg_blocks(const xcs_cuda_linalg_spec *ls, const xcs_cuda_linalg_args *a);
char *xcs_cuda_linalg_codegen_alloc(const xcs_cuda_linalg_spec *ls);
uint64_t xcs_cuda_linalg_spec_hash(const xcs_cuda_linalg_spec *ls);

/* The arguments of op on in (the inputs broadcast to the batch and
 * contiguous, as xcs_backend.linalg gets them) into out (addresses as
 * xcs_cuda_be_addr gives them; work and err unset, work_per set):
 * XCS_ERR_UNSUPPORTED for an op, dtype or size without a kernel. */
xcs_status xcs_cuda_linalg_args_of(xcs_op op, int n_in, const xcs_tensor *const *in, const xcs_tensor *out,
                                   xcs_cuda_linalg_args *a);

/* A kernel source of the bytes gen(spec, buf, cap) writes, allocated
 * (free() it); NULL with the error set.  written(): snprintf's count as a
 * source length, 0 with the error set when it failed. */
char *xcs_cuda_source_alloc(size_t (*gen)(const void *, char *, size_t), const void *spec, const char *what);
size_t xcs_cuda_written(int w, const char *what);

size_t xcs_cuda_index_codegen(const xcs_cuda_index_spec *is, char *buf, size_t cap);
char *xcs_cuda_index_codegen_alloc(const xcs_cuda_index_spec *is);
uint64_t xcs_cuda_index_spec_hash(const xcs_cuda_index_spec *is);

#endif /* XCS_CUDA_CODEGEN_H */
