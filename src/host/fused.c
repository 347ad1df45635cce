/* fused.c — the CPU backend's fused tile VM (xcs_cpu_run_fused): validation,
 * the plan, the tile executor and the elementwise driver.  Reductions are in
 * fused_reduce.c.
 *
 * Why tiles.  Eager elementwise ops stream every intermediate through memory:
 * an 8-op chain reads and writes the array 8 times.  Here each register is a
 * per-thread buffer of FU_TILE elements (<= 8 KiB), so a chain touches main
 * memory once per input and once per output, and the live registers of a
 * typical program (2-4 of them) stay in L1.  The kernels are the contiguous
 * ones of the eager path (ew_kernels.h), so results are bit-identical to
 * running the ops one by one.
 *
 * Copies avoided.  LOAD points the register at the input's own memory when
 * the dtype matches and the tile is a unit-stride run of it; a broadcast
 * scalar is converted once per call into a pre-filled buffer.  An OP (or a
 * converting CAST) whose result register is next stored, to an output of the
 * same dtype stored only there, writes straight into the output tile and the
 * STORE is skipped.  Nothing is allocated per tile: registers live on each
 * thread's stack (fu_regs, ~136 KiB); the only heap use per call is the
 * scalar buffers and, for split reductions, the partial results.
 *
 * Errors: kernels' XCS_EW_ERR_* bits are OR-reduced over the parallel region
 * and reported after it, with elementwise.c's messages.
 *
 * Everything borrows its arguments and writes the preallocated outputs. */
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "fused_plan.h"

#ifdef _OPENMP
#include <omp.h>
#define FU_IN_PARALLEL() omp_in_parallel()
#else
#define FU_IN_PARALLEL() 0
#endif
#define FU_HAVE_STREAM XCS_HOST_STREAM

/* n copies of the dsize-byte value at v into `to`: one vector loop (a
 * chain of doubling memcpys costs ten library calls per tile). */
static void fu_fill(char *to, const char *v, size_t dsize, int64_t n) {
    if (dsize == 4) {
        uint32_t u;
        memcpy(&u, v, 4);
        for (int64_t i = 0; i < n; i++) memcpy(to + 4 * i, &u, 4);
    } else if (dsize == 8) {
        uint64_t u;
        memcpy(&u, v, 8);
        for (int64_t i = 0; i < n; i++) memcpy(to + 8 * i, &u, 8);
    } else {
        for (int64_t i = 0; i < n; i++) memcpy(to + (size_t)i * dsize, v, dsize);
    }
}

#define FU_ROW_MIN 256 /* rows at least this long are tiled row by row */

#define FU_BAD(fmt, ...) xcs_error(XCS_ERR_VALUE, "invalid fused program: " fmt, __VA_ARGS__)

/* ---------------------------------------------------------------- validation */

static bool fu_dtype_ok(xcs_dtype dt) { return (unsigned)dt < XCS_DTYPE_COUNT; }

static int fu_arity(xcs_op op) {
    const xcs_op_info *info = xcs_op_get_info(op);
    if (!info) return -1;
    switch (info->kind) {
    case XCS_KIND_UNARY: return 1;
    case XCS_KIND_BINARY: return 2;
    case XCS_KIND_TERNARY: return 3;
    default: return -1;
    }
}

/* out must have shape p->shape, 1 on `axes`; a REDUCE output (reduce) must
 * be C-contiguous, a STORE one must not overlap itself. */
static xcs_status fu_check_out(const xcs_fused_program *p, const xcs_tensor *t, int k,
                               unsigned axes, bool reduce) {
    if (t->ndim != p->ndim) return FU_BAD("output %d has %d dims, program %d", k, t->ndim, p->ndim);
    for (int d = 0; d < p->ndim; d++)
        if (t->shape[d] != (axes >> d & 1u ? 1 : p->shape[d]))
            return FU_BAD("output %d has size %lld on dim %d, expected %lld", k,
                          (long long)t->shape[d], d, (long long)(axes >> d & 1u ? 1 : p->shape[d]));
    if (reduce && !xcs_tensor_is_contiguous(t)) return FU_BAD("output %d is not C-contiguous", k);
    for (int d = 0; d < p->ndim; d++)
        if (t->shape[d] > 1 && t->strides[d] == 0) return FU_BAD("output %d overlaps itself (dim %d)", k, d);
    return XCS_OK;
}

static xcs_status fu_validate(fu_plan *P, const xcs_fused_program *p, const xcs_tensor *const *in,
                              xcs_tensor *const *out) {
    if (p->ndim < 0 || p->ndim > XCS_MAX_DIMS) return FU_BAD("ndim %d", p->ndim);
    for (int d = 0; d < p->ndim; d++)
        if (p->shape[d] < 0) return FU_BAD("negative size on dim %d", d);
    if (p->n_inputs < 0 || p->n_inputs > XCS_FUSED_MAX_IO || p->n_outputs < 0 ||
        p->n_outputs > XCS_FUSED_MAX_IO || p->n_regs < 0 || p->n_regs > XCS_FUSED_MAX_REGS ||
        p->n_instr < 0 || p->n_instr > XCS_FUSED_MAX_INSTR)
        return FU_BAD("counts out of range (%d inputs, %d outputs, %d registers, %d instructions)",
                      p->n_inputs, p->n_outputs, p->n_regs, p->n_instr);
    for (int k = 0; k < p->n_inputs; k++) {
        const xcs_tensor *t = in[k];
        if (!t || !fu_dtype_ok(t->dtype) || t->ndim != p->ndim)
            return FU_BAD("input %d is missing or has the wrong rank/dtype", k);
        for (int d = 0; d < p->ndim; d++)
            if (t->shape[d] != p->shape[d] && t->strides[d] != 0)
                return FU_BAD("input %d is not broadcast to the program shape (dim %d)", k, d);
    }
    for (int k = 0; k < p->n_outputs; k++)
        if (!out[k] || !fu_dtype_ok(out[k]->dtype))
            return FU_BAD("output %d is missing or has an invalid dtype", k);

    /* (cleared for the counts used only: this runs on every call of a fused step) */
    bool def[XCS_FUSED_MAX_REGS], written[XCS_FUSED_MAX_IO];
    for (int r = 0; r < p->n_regs; r++) def[r] = false;
    for (int k = 0; k < p->n_outputs; k++) written[k] = false;
    xcs_dtype dt[XCS_FUSED_MAX_REGS];
    P->p = p;
    P->n_exec = p->n_instr;
    for (int i = 0; i < p->n_instr; i++) {
        const xcs_fused_instr *ins = &p->instr[i];
        P->kern[i] = NULL;
        P->conv[i] = NULL;
        P->target[i] = -1;
        P->skip[i] = false;
        P->overlap[i] = false;
        P->scalar[i] = NULL;
        bool reads_a = ins->kind != XCS_FUSED_LOAD;
        if (reads_a && (ins->a < 0 || ins->a >= p->n_regs || !def[ins->a]))
            return FU_BAD("instruction %d reads register %d before it is written", i, ins->a);
        if (reads_a) P->adt[i] = dt[ins->a];
        bool writes_reg = ins->kind == XCS_FUSED_LOAD || ins->kind == XCS_FUSED_OP ||
                          ins->kind == XCS_FUSED_CAST;
        if (writes_reg && (ins->dst < 0 || ins->dst >= p->n_regs))
            return FU_BAD("instruction %d writes register %d of %d", i, ins->dst, p->n_regs);
        if (writes_reg && !fu_dtype_ok(ins->dtype))
            return FU_BAD("instruction %d has an invalid dtype", i);
        if (!writes_reg && (ins->dst < 0 || ins->dst >= p->n_outputs))
            return FU_BAD("instruction %d writes output %d of %d", i, ins->dst, p->n_outputs);
        xcs_status st;
        switch (ins->kind) {
        case XCS_FUSED_LOAD:
            if (ins->a < 0 || ins->a >= p->n_inputs)
                return FU_BAD("instruction %d loads input %d of %d", i, ins->a, p->n_inputs);
            P->conv[i] = xcs_ew_convert_get(in[ins->a]->dtype, ins->dtype);
            dt[ins->dst] = ins->dtype;
            break;
        case XCS_FUSED_OP: {
            int n = fu_arity(ins->op);
            if (n < 0) return FU_BAD("instruction %d: %s is not an elementwise op", i, xcs_op_name(ins->op));
            const int regs[3] = {ins->a, ins->b, ins->c};
            for (int k = 1; k < n; k++)
                if (regs[k] < 0 || regs[k] >= p->n_regs || !def[regs[k]])
                    return FU_BAD("instruction %d reads register %d before it is written", i, regs[k]);
            if (!(P->kern[i] = xcs_ew_kernel_get(ins->op, ins->dtype)))
                return xcs_error(XCS_ERR_TYPE, "%s: not supported for dtype %s", xcs_op_name(ins->op),
                                 xcs_dtype_name(ins->dtype));
            for (int k = 0; k < n; k++)
                if (dt[regs[k]] != xcs_ew_in_dtype(ins->op, k, ins->dtype))
                    return FU_BAD("instruction %d (%s): register %d holds %s, the kernel reads %s", i,
                                  xcs_op_name(ins->op), regs[k], xcs_dtype_name(dt[regs[k]]),
                                  xcs_dtype_name(xcs_ew_in_dtype(ins->op, k, ins->dtype)));
            /* the kernels run in place only over an operand of the result's
             * width: over a narrower or wider one their writes would overtake
             * their reads (lower_group never allocates so; a program may) */
            for (int k = 0; k < n; k++)
                P->overlap[i] |= regs[k] == ins->dst &&
                                 xcs_dtype_size(dt[regs[k]]) != xcs_dtype_size(xcs_ew_out_dtype(ins->op, ins->dtype));
            dt[ins->dst] = xcs_ew_out_dtype(ins->op, ins->dtype);
            break;
        }
        case XCS_FUSED_CAST:
            if (ins->src_dtype != dt[ins->a])
                return FU_BAD("instruction %d casts from %s but register %d holds %s", i,
                              xcs_dtype_name(ins->src_dtype), ins->a, xcs_dtype_name(dt[ins->a]));
            if (ins->src_dtype != ins->dtype) P->conv[i] = xcs_ew_convert_get(ins->src_dtype, ins->dtype);
            dt[ins->dst] = ins->dtype;
            break;
        case XCS_FUSED_STORE:
            if ((st = fu_check_out(p, out[ins->dst], ins->dst, 0, false))) return st;
            if (dt[ins->a] != out[ins->dst]->dtype)
                P->conv[i] = xcs_ew_convert_get(dt[ins->a], out[ins->dst]->dtype);
            written[ins->dst] = true;
            break;
        case XCS_FUSED_REDUCE:
            if (i != p->n_instr - 1) return FU_BAD("REDUCE at %d is not the last instruction", i);
            if (ins->op != XCS_OP_SUM && ins->op != XCS_OP_PROD && ins->op != XCS_OP_MAX &&
                ins->op != XCS_OP_MIN)
                return FU_BAD("REDUCE with %s", xcs_op_name(ins->op));
            if (p->reduce_axes >> p->ndim) return FU_BAD("reduce_axes 0x%x past ndim %d", p->reduce_axes, p->ndim);
            if (xcs_dtype_is_half(dt[ins->a]))
                return FU_BAD("REDUCE of a %s register (reduce its float32 cast)", xcs_dtype_name(dt[ins->a]));
            if ((st = fu_check_out(p, out[ins->dst], ins->dst, p->reduce_axes, true))) return st;
            written[ins->dst] = true;
            P->n_exec = i;
            break;
        default:
            return FU_BAD("instruction %d has unknown kind %d", i, (int)ins->kind);
        }
        if (writes_reg) {
            def[ins->dst] = true;
            P->dsize[i] = xcs_dtype_size(dt[ins->dst]);
        }
    }
    for (int k = 0; k < p->n_outputs; k++)
        if (!written[k]) return FU_BAD("output %d is never written", k);
    /* in place: an input that is an output's memory is copied into registers
     * (LOAD never aliases it), and must be loaded before that output is
     * written (checked below, once the writers are known) */
    int alias[XCS_FUSED_MAX_IO];
    for (int k = 0; k < p->n_inputs; k++) {
        alias[k] = -1;
        for (int o = 0; o < p->n_outputs && alias[k] < 0; o++)
            if (xcs_tensor_data(in[k]) == xcs_tensor_data(out[o])) alias[k] = o;
        P->copy_in[k] = alias[k] >= 0;
    }

    /* Streamed outputs (big and not re-read soon): their STOREs copy the
     * register with non-temporal stores, so no OP writes them directly. */
    for (int k = 0; k < p->n_outputs; k++) /* (not in reductions: their drivers do not fence) */
        P->stream[k] = FU_HAVE_STREAM && (p->stream_outputs >> k & 1u) && P->n_exec == p->n_instr;
    /* Targets: the last writer of a stored register writes the output tile
     * itself when the output has that dtype and no other STORE. */
    int last[XCS_FUSED_MAX_REGS], nstore[XCS_FUSED_MAX_IO];
    for (int r = 0; r < p->n_regs; r++) last[r] = -1;
    for (int k = 0; k < p->n_outputs; k++) nstore[k] = 0;
    for (int i = 0; i < P->n_exec; i++)
        if (p->instr[i].kind == XCS_FUSED_STORE) nstore[p->instr[i].dst]++;
    for (int i = 0; i < P->n_exec; i++) {
        const xcs_fused_instr *ins = &p->instr[i];
        if (ins->kind != XCS_FUSED_STORE) {
            last[ins->dst] = i;
            continue;
        }
        int w = last[ins->a];
        const xcs_fused_instr *wi = &p->instr[w];
        bool can = wi->kind == XCS_FUSED_OP || (wi->kind == XCS_FUSED_CAST && P->conv[w]);
        if (can && P->target[w] < 0 && nstore[ins->dst] == 1 && !P->conv[i] && !P->stream[ins->dst]) {
            P->target[w] = ins->dst;
            P->skip[i] = true;
        }
    }
    bool out_written[XCS_FUSED_MAX_IO];
    for (int k = 0; k < p->n_outputs; k++) out_written[k] = false;
    for (int i = 0; i < P->n_exec; i++) {
        const xcs_fused_instr *ins = &p->instr[i];
        if (ins->kind == XCS_FUSED_LOAD && alias[ins->a] >= 0 && out_written[alias[ins->a]])
            return FU_BAD("instruction %d loads input %d after output %d, its memory, was written", i,
                          ins->a, alias[ins->a]);
        if (ins->kind == XCS_FUSED_STORE) out_written[ins->dst] = true;
        if (P->target[i] >= 0) out_written[P->target[i]] = true;
    }
    return XCS_OK;
}

/* ---------------------------------------------------------------- the space */

void fu_space_build(fu_plan *P, const xcs_tensor *const *inputs, xcs_tensor *const *outputs,
                    const int *order, const int *group) {
    const xcs_fused_program *p = P->p;
    /* operand k < n_inputs: input k; then the outputs (only STORE ones matter;
     * a REDUCE output's reduced dims read as stride 0) */
    const int nops = p->n_inputs + p->n_outputs;
#define FU_OSTR(k, d) (outputs[k]->shape[d] == p->shape[d] ? outputs[k]->strides[d] : 0)
    int nd = 0;
    P->numel = 1;
    for (int j = 0; j < p->ndim; j++) {
        int d = order[j];
        int64_t n = p->shape[d];
        P->numel *= n;
        if (n == 1) continue;
        bool merge = nd > 0 && P->group[nd - 1] == group[j];
        for (int k = 0; k < nops && merge; k++) {
            const fu_operand *o = k < p->n_inputs ? &P->in[k] : &P->out[k - p->n_inputs];
            int64_t s = k < p->n_inputs ? inputs[k]->strides[d] : FU_OSTR(k - p->n_inputs, d);
            merge = o->strides[nd - 1] == s * n;
        }
        if (merge) P->shape[nd - 1] *= n;
        else {
            P->shape[nd] = n;
            P->group[nd] = group[j];
            nd++;
        }
        for (int k = 0; k < nops; k++) {
            fu_operand *o = k < p->n_inputs ? &P->in[k] : &P->out[k - p->n_inputs];
            o->strides[nd - 1] = k < p->n_inputs ? inputs[k]->strides[d] : FU_OSTR(k - p->n_inputs, d);
        }
    }
    if (nd == 0) {
        P->shape[0] = 1;
        P->group[0] = 0;
        for (int k = 0; k < nops; k++) {
            fu_operand *o = k < p->n_inputs ? &P->in[k] : &P->out[k - p->n_inputs];
            o->strides[0] = 0;
        }
        nd = 1;
    }
#undef FU_OSTR
    P->nd = nd;
    for (int k = 0; k < nops; k++) {
        const xcs_tensor *t = k < p->n_inputs ? inputs[k] : outputs[k - p->n_inputs];
        fu_operand *o = k < p->n_inputs ? &P->in[k] : &P->out[k - p->n_inputs];
        o->base = (char *)xcs_tensor_data(t);
        o->dtype = t->dtype;
        o->isize = xcs_dtype_size(t->dtype);
    }
}

/* Copies of a broadcast scalar in its buffer: no tile is longer. */
static int64_t fu_scalar_copies(const fu_plan *P) { return P->numel < FU_TILE ? P->numel : FU_TILE; }

xcs_status fu_prepare(fu_plan *P) {
    const xcs_fused_program *p = P->p;
    for (int k = 0; k < p->n_inputs + p->n_outputs; k++) {
        fu_operand *o = k < p->n_inputs ? &P->in[k] : &P->out[k - p->n_inputs];
        o->scalar = true;
        for (int d = 0; d < P->nd; d++) o->scalar = o->scalar && o->strides[d] == 0;
        o->run = 0;
        if (o->strides[P->nd - 1] == 1) {
            o->run = P->shape[P->nd - 1];
            for (int d = P->nd - 2; d >= 0 && o->strides[d] == o->strides[d + 1] * P->shape[d + 1]; d--)
                o->run *= P->shape[d];
        }
    }
    int nscalar = 0;
    for (int i = 0; i < P->n_exec; i++)
        if (p->instr[i].kind == XCS_FUSED_LOAD && P->in[p->instr[i].a].scalar) nscalar++;
    P->scalar_mem = NULL;
    if (nscalar == 0 || P->numel == 0) return XCS_OK;
    char *m = P->scalar_mem = malloc((size_t)nscalar * (size_t)fu_scalar_copies(P) * 8);
    if (!m) return xcs_error(XCS_ERR_MEMORY, "fused program: cannot allocate scalar buffers");
    for (int i = 0; i < P->n_exec; i++) {
        const xcs_fused_instr *ins = &p->instr[i];
        if (ins->kind != XCS_FUSED_LOAD || !P->in[ins->a].scalar) continue;
        P->scalar[i] = m;
        m += fu_scalar_copies(P) * 8;
    }
    return XCS_OK;
}

void fu_fill_scalars(const fu_plan *P) {
    for (int i = 0; i < P->n_exec; i++) {
        if (!P->scalar[i]) continue;
        char *m = (char *)P->scalar[i];
        const size_t es = P->dsize[i];
        P->conv[i](1, P->in[P->p->instr[i].a].base, 0, m);
        fu_fill(m + es, m, es, fu_scalar_copies(P) - 1);
    }
}

/* ---------------------------------------------------------------- executor */

/* Offset (elements) of flat index s in o, with the index. */
static int64_t fu_unravel(const fu_plan *P, const fu_operand *o, int64_t s, xcs_strided_walk *w) {
    return xcs_walk_start(w, P->nd, P->shape, o->strides, s);
}

/* o's memory for tile [s, s+len) when the tile is one unit-stride run of it. */
static char *fu_direct(const fu_plan *P, const fu_operand *o, int64_t s, int64_t len) {
    if (o->run >= P->numel) return o->base + s * (int64_t)o->isize; /* one run over the whole space: no division */
    if (o->run == 0 || s / o->run != (s + len - 1) / o->run) return NULL;
    xcs_strided_walk w;
    return o->base + fu_unravel(P, o, s, &w) * (int64_t)o->isize;
}

/* Walks tile [s, s+len) of o segment by segment along the last dim:
 * gather (to != NULL: convert o's elements into `to`, dsize bytes each) or
 * scatter (from != NULL: copy o-dtype elements from `from` into o). */
static void fu_walk(const fu_plan *P, const fu_operand *o, int64_t s, int64_t len,
                    xcs_ew_convert_fn conv, size_t dsize, char *to, const char *from) {
    xcs_strided_walk w;
    fu_unravel(P, o, s, &w);
    const int64_t st = o->strides[P->nd - 1], es = (int64_t)o->isize;
    while (len > 0) {
        int64_t seg = xcs_walk_run(&w, len);
        char *at = o->base + w.off * es;
        if (to && st == 0) { /* a broadcast run: convert once, then fill */
            char one[8];
            conv(1, at, 0, one);
            fu_fill(to, one, dsize, seg);
            to += seg * (int64_t)dsize;
        } else if (to) {
            conv(seg, at, st, to);
            to += seg * (int64_t)dsize;
        } else {
            for (int64_t i = 0; i < seg; i++) memcpy(at + i * st * es, from + i * es, (size_t)es);
            from += seg * es;
        }
        len -= seg;
        xcs_walk_advance(&w, seg);
    }
}

/* Where instruction i's result goes for this tile: its target output's
 * memory when that is a direct run, else its register buffer. */
static char *fu_dest(const fu_plan *P, fu_regs *R, int i, int64_t s, int64_t len) {
    int o = P->target[i];
    char *d = o >= 0 ? fu_direct(P, &P->out[o], s, len) : NULL;
    return d ? d : R->buf[P->p->instr[i].dst];
}

unsigned fu_exec_tile(const fu_plan *P, fu_regs *R, int64_t s, int64_t len) {
    const xcs_fused_program *p = P->p;
    unsigned err = 0;
    for (int i = 0; i < P->n_exec; i++) {
        const xcs_fused_instr *ins = &p->instr[i];
        switch (ins->kind) {
        case XCS_FUSED_LOAD: {
            const fu_operand *o = &P->in[ins->a];
            char *d = NULL;
            if (P->scalar[i]) R->ptr[ins->dst] = P->scalar[i];
            else if (o->dtype == ins->dtype && !P->copy_in[ins->a] && (d = fu_direct(P, o, s, len)))
                R->ptr[ins->dst] = d;
            else {
                fu_walk(P, o, s, len, P->conv[i], P->dsize[i], R->buf[ins->dst], NULL);
                R->ptr[ins->dst] = R->buf[ins->dst];
            }
            break;
        }
        case XCS_FUSED_OP: {
            char *d = fu_dest(P, R, i, s, len);
            err |= P->kern[i](len, R->ptr[ins->a], ins->b >= 0 ? R->ptr[ins->b] : NULL,
                              ins->c >= 0 ? R->ptr[ins->c] : NULL, P->overlap[i] ? R->scratch : d);
            if (P->overlap[i]) memcpy(d, R->scratch, (size_t)len * P->dsize[i]);
            R->ptr[ins->dst] = d;
            break;
        }
        case XCS_FUSED_CAST: {
            const char *a = R->ptr[ins->a];
            if (!P->conv[i]) { /* same dtype: alias what is never written, else copy */
                if (ins->dst == ins->a) break;
                if (a != R->buf[ins->a]) R->ptr[ins->dst] = a;
                else {
                    memcpy(R->buf[ins->dst], a, (size_t)len * P->dsize[i]);
                    R->ptr[ins->dst] = R->buf[ins->dst];
                }
                break;
            }
            char *d = fu_dest(P, R, i, s, len);
            if (d == a) { /* in place, sizes may differ: go through scratch */
                P->conv[i](len, a, 1, R->scratch);
                memcpy(d, R->scratch, (size_t)len * P->dsize[i]);
            } else {
                P->conv[i](len, a, 1, d);
            }
            R->ptr[ins->dst] = d;
            break;
        }
        case XCS_FUSED_STORE: {
            const fu_operand *o = &P->out[ins->dst];
            char *d = fu_direct(P, o, s, len);
            if (d && P->skip[i]) break; /* the writer already put it there */
            const char *a = R->ptr[ins->a];
            if (d) {
                if (P->conv[i]) P->conv[i](len, a, 1, d);
                else if (P->stream[ins->dst]) xcs_host_stream_copy(d, a, (size_t)len * o->isize);
                else if (d != a) memcpy(d, a, (size_t)len * o->isize);
            } else {
                if (P->conv[i]) {
                    P->conv[i](len, a, 1, R->scratch);
                    a = R->scratch;
                }
                fu_walk(P, o, s, len, NULL, 0, NULL, a);
            }
            break;
        }
        default:
            break;
        }
    }
    return err;
}

/* ---------------------------------------------------------------- elementwise */

/* How the elementwise driver cuts the space into tiles. */
typedef struct fu_tiling {
    bool rows;               /* tiles never cross a row (long rows) */
    int64_t inner, per_row, chunk, ntiles;
} fu_tiling;

/* Tiles [t0, t1) on this thread. */
static unsigned fu_run_tiles(const fu_plan *P, const fu_tiling *T, fu_regs *R, int64_t t0, int64_t t1) {
    unsigned err = 0;
    for (int64_t t = t0; t < t1; t++) {
        int64_t s, len;
        if (T->rows) {
            int64_t j = t % T->per_row * T->chunk;
            s = t / T->per_row * T->inner + j;
            len = T->inner - j < T->chunk ? T->inner - j : T->chunk;
        } else {
            s = t * FU_TILE;
            len = P->numel - s < FU_TILE ? P->numel - s : FU_TILE;
        }
        err |= fu_exec_tile(P, R, s, len);
    }
    xcs_host_stream_fence(); /* this thread's streamed stores, before anyone reads them */
    return err;
}

static unsigned fu_run_elementwise(const fu_plan *P) {
    fu_tiling T = {.inner = P->shape[P->nd - 1], .per_row = 1, .chunk = FU_TILE};
    T.rows = P->nd == 1 || T.inner >= FU_ROW_MIN;
    if (T.rows) { /* equal pieces per row, so no row ends in a sliver */
        T.per_row = (T.inner + FU_TILE - 1) / FU_TILE;
        T.chunk = (T.inner + T.per_row - 1) / T.per_row;
        T.ntiles = P->numel / T.inner * T.per_row;
    } else {
        T.ntiles = (P->numel + FU_TILE - 1) / FU_TILE;
    }
    unsigned err = 0;
    if (!(P->parallel && P->numel >= XCS_CPU_PAR_MIN && T.ntiles > 1)) {
        fu_regs R; /* no OpenMP region at all: entering one costs a futex call even for one thread */
        return fu_run_tiles(P, &T, &R, 0, T.ntiles);
    }
#pragma omp parallel reduction(| : err)
    {
        fu_regs R;
        int nt = 1, me = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        me = omp_get_thread_num();
#endif
        err |= fu_run_tiles(P, &T, &R, T.ntiles * me / nt, T.ntiles * (me + 1) / nt);
    }
    return err;
}

/* ---------------------------------------------------------------- entry */

/* P for program p over these operands: checked, its space built, its
 * operands prepared (scalar buffers allocated; fu_execute fills them). */
static xcs_status fu_build(fu_plan *P, const xcs_fused_program *p, const xcs_tensor *const *inputs,
                           xcs_tensor *const *outputs) {
    P->scalar_mem = NULL;
    xcs_status st = fu_validate(P, p, inputs, outputs);
    if (st != XCS_OK) return st;
    if (P->n_exec < p->n_instr) {
        fu_reduce_space(P, inputs, outputs);
    } else {
        int order[XCS_MAX_DIMS], group[XCS_MAX_DIMS] = {0};
        for (int d = 0; d < p->ndim; d++) order[d] = d;
        fu_space_build(P, inputs, outputs, order, group);
    }
    return P->numel > 0 ? fu_prepare(P) : XCS_OK;
}

_Static_assert(XCS_EW_ERR_ZERO_DIV == XCS_FUSED_FAULT_ZERO_DIV && XCS_EW_ERR_NEG_POW == XCS_FUSED_FAULT_NEG_POW,
               "the CPU kernels' error bits are core's fault bits");

/* Runs a built plan over the memory its operands' bases point at. */
static xcs_status fu_execute(const fu_plan *P) {
    unsigned err = 0;
    xcs_status st = XCS_OK;
    if (P->numel > 0 && P->scalar_mem) fu_fill_scalars(P); /* (scalar buffers exist only for scalar LOADs) */
    if (P->n_exec < P->p->n_instr) st = fu_reduce_run(P, &err);
    else if (P->numel > 0) err = fu_run_elementwise(P);
    if (st == XCS_OK && err) st = xcs_fused_fault(P->p, err, "");
    return st;
}

xcs_status xcs_cpu_run_fused(const xcs_fused_program *p, const xcs_tensor *const *inputs,
                             xcs_tensor *const *outputs) {
    return xcs_cpu_run_fused_ex(p, inputs, outputs, true);
}

xcs_status xcs_cpu_run_fused_ex(const xcs_fused_program *p, const xcs_tensor *const *inputs,
                                xcs_tensor *const *outputs, bool parallel) {
    if (!p) return xcs_error(XCS_ERR_VALUE, "invalid fused program: NULL");
    fu_plan plan; /* ~6 KiB on the stack: the serial path keeps ~136 KiB of registers there too */
    plan.parallel = parallel && !FU_IN_PARALLEL(); /* inside a worker: that worker's thread only */
    xcs_status st = fu_build(&plan, p, inputs, outputs);
    if (st == XCS_OK) st = fu_execute(&plan);
    free(plan.scalar_mem);
    return st;
}

/* ---------------------------------------------------------------- kept plans
 *
 * A loop's step runs the same program over operands that differ from the
 * last step's only in where they are (a scan's carry buffers, its rows of
 * xs and ys).  The plan built for the first step is kept, with the layout
 * of every operand; a later call whose operands have that layout (dtype,
 * shape, strides) and the same in-place aliasing only points the plan at
 * the new memory and refills the broadcast scalars: no validation, no
 * space, no allocation. */
struct xcs_fused_cache {
    bool built;
    const xcs_fused_program *key; /* the program the plan was built for (its shape: `shape`) */
    int ndim;
    int64_t shape[XCS_MAX_DIMS];
    xcs_layout lay[2 * XCS_FUSED_MAX_IO]; /* inputs, then outputs */
    fu_plan plan;
};

/* True when c's plan serves p over these operands as they are now. */
static bool fu_cache_fits(const xcs_fused_cache *c, const xcs_fused_program *key, const xcs_fused_program *p,
                          const xcs_tensor *const *in, xcs_tensor *const *out) {
    if (!c->built || c->key != key || c->ndim != p->ndim) return false;
    for (int d = 0; d < p->ndim; d++)
        if (c->shape[d] != p->shape[d]) return false;
    for (int k = 0; k < p->n_inputs; k++) {
        if (!xcs_layout_is(&c->lay[k], in[k])) return false;
        bool alias = false;
        for (int o = 0; o < p->n_outputs && !alias; o++) alias = xcs_tensor_data(in[k]) == xcs_tensor_data(out[o]);
        if (alias != c->plan.copy_in[k]) return false;
    }
    for (int k = 0; k < p->n_outputs; k++)
        if (!xcs_layout_is(&c->lay[p->n_inputs + k], out[k])) return false;
    return true;
}

void xcs_cpu_fused_cache_free(xcs_fused_cache *c) {
    if (!c) return;
    free(c->plan.scalar_mem);
    free(c);
}

xcs_status xcs_cpu_run_fused_kept(const xcs_fused_program *key, const xcs_fused_program *p, xcs_fused_cache **cache,
                                  const xcs_tensor *const *inputs, xcs_tensor *const *outputs, bool parallel) {
    if (!cache) return xcs_cpu_run_fused_ex(p, inputs, outputs, parallel);
    if (!p) return xcs_error(XCS_ERR_VALUE, "invalid fused program: NULL");
    xcs_fused_cache *c = *cache;
    if (!c && !(c = *cache = calloc(1, sizeof *c)))
        return xcs_error(XCS_ERR_MEMORY, "out of memory keeping a fused plan");
    fu_plan *P = &c->plan;
    if (fu_cache_fits(c, key, p, inputs, outputs)) { /* the same plan, over this call's memory */
        P->p = p;
        for (int k = 0; k < p->n_inputs; k++) P->in[k].base = (char *)xcs_tensor_data(inputs[k]);
        for (int k = 0; k < p->n_outputs; k++) P->out[k].base = (char *)xcs_tensor_data(outputs[k]);
    } else {
        free(P->scalar_mem);
        c->built = false;
        xcs_status st = fu_build(P, p, inputs, outputs);
        if (st != XCS_OK) {
            free(P->scalar_mem);
            P->scalar_mem = NULL;
            return st;
        }
        c->built = true;
        c->key = key;
        c->ndim = p->ndim;
        memcpy(c->shape, p->shape, sizeof c->shape);
        for (int k = 0; k < p->n_inputs; k++) xcs_layout_of(inputs[k], &c->lay[k]);
        for (int k = 0; k < p->n_outputs; k++) xcs_layout_of(outputs[k], &c->lay[p->n_inputs + k]);
    }
    P->parallel = parallel && !FU_IN_PARALLEL();
    return fu_execute(P);
}

xcs_status xcs_cpu_run_fused_cached(const xcs_fused_program *p, xcs_fused_cache **cache,
                                    const xcs_tensor *const *inputs, xcs_tensor *const *outputs) {
    return xcs_cpu_run_fused_kept(p, p, cache, inputs, outputs, true);
}
