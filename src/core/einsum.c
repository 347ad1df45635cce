/* einsum.c — einsum for one or two operands, lowered to primitives:
 * labels only in one operand and not in the output are summed first; the
 * rest are sorted into batch (both operands and output), contracted (both
 * operands, not output) and free labels, which makes the product one batched
 * matmul [B, M, K] @ [B, K, N] followed by a reshape and a permute. */
#include "xcs.h"

#include <string.h>

#define NLABELS 52

typedef struct operand_spec { int n; int label[XCS_MAX_DIMS]; } operand_spec;

static int label_index(char c) {
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return 26 + c - 'A';
    return -1;
}

static xcs_status parse_term(const char *s, size_t len, operand_spec *o, const char *subs) {
    o->n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') continue;
        int l = label_index(s[i]);
        if (l < 0) return xcs_error(XCS_ERR_VALUE, "einsum '%s': invalid subscript character '%c'", subs, s[i]);
        for (int k = 0; k < o->n; k++)
            if (o->label[k] == l)
                return xcs_error(XCS_ERR_UNSUPPORTED, "einsum '%s': repeated subscript '%c' within one operand "
                                 "(diagonals/traces) is not supported", subs, s[i]);
        if (o->n == XCS_MAX_DIMS) return xcs_error(XCS_ERR_VALUE, "einsum '%s': too many subscripts", subs);
        o->label[o->n++] = l;
    }
    return XCS_OK;
}

static bool has_label(const operand_spec *o, int l) {
    for (int i = 0; i < o->n; i++)
        if (o->label[i] == l) return true;
    return false;
}

/* Sums x over the axes whose labels are not in `keep1` nor `keep2`; updates spec. */
static xcs_status sum_unused(const xcs_tensor *x, operand_spec *o, const operand_spec *keep1,
                             const operand_spec *keep2, xcs_tensor **out) {
    unsigned axes = 0;
    operand_spec r = {0};
    for (int i = 0; i < o->n; i++) {
        if (has_label(keep1, o->label[i]) || (keep2 && has_label(keep2, o->label[i]))) r.label[r.n++] = o->label[i];
        else axes |= 1u << i;
    }
    *o = r;
    if (!axes) return xcs_tensor_view(x, out);
    /* numpy's einsum sums in the operands' dtype: an int32 sum wraps as
     * int32 (the int64 sum cast back has its bits), a bool one is an "or" */
    if (xcs_dtype_is_float(x->dtype)) return xcs_reduce(XCS_OP_SUM, x, axes, false, out);
    xcs_tensor *wide;
    xcs_status st = xcs_reduce(XCS_OP_SUM, x, axes, false, &wide);
    if (st) return st;
    st = xcs_cast(wide, x->dtype, out);
    xcs_tensor_free(wide);
    return st;
}

/* Permutes x (labels o) into the order `order` (labels) and reshapes to groups. */
static xcs_status arrange(const xcs_tensor *x, const operand_spec *o, const int *order, int n,
                          const int *groups, int ngroups, xcs_tensor **out) {
    int perm[XCS_MAX_DIMS];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < o->n; k++)
            if (o->label[k] == order[i]) perm[i] = k;
    xcs_tensor *p;
    xcs_status st = xcs_permute(x, perm, &p);
    if (st) return st;
    int64_t shape[3];
    for (int g = 0, i = 0; g < ngroups; g++) {
        shape[g] = 1;
        for (int k = 0; k < groups[g]; k++, i++) shape[g] *= p->shape[i];
    }
    st = xcs_reshape(p, ngroups, shape, out);
    xcs_tensor_free(p);
    return st;
}

/* Rewrites "...ij,...jk->...ik" with fresh letters for the ellipsis dims
 * (right-aligned across operands, as numpy broadcasts them); an implicit
 * output puts the ellipsis dims first.  Operands with fewer ellipsis dims
 * simply lack the leading letters, which then act as free labels. */
static xcs_status expand_ellipsis(const char *subs, int n, const xcs_tensor *const *xs, char *buf, size_t cap) {
    bool used[NLABELS] = {false};
    for (const char *p = subs; *p; p++)
        if (label_index(*p) >= 0) used[label_index(*p)] = true;
    char fresh[XCS_MAX_DIMS];
    for (int l = NLABELS - 1, k = 0; l >= 0 && k < XCS_MAX_DIMS; l--)
        if (!used[l]) fresh[k++] = (char)(l < 26 ? 'a' + l : 'A' + l - 26);
    const char *arrow = strstr(subs, "->");
    size_t o = 0;
    int term = 0, max_e = 0, explicit_n = 0;
    bool ell_in_term = false;
    char ell_dims[3] = {0};
    /* first pass: ellipsis width per input term */
    for (const char *p = subs;; p++) {
        if (p == arrow || *p == ',' || *p == '\0') {
            if (term < n) {
                int e = ell_in_term ? xs[term]->ndim - explicit_n : 0;
                if (e < 0) return xcs_error(XCS_ERR_SHAPE, "einsum '%s': operand %d has %d dimensions, fewer "
                                            "than its %d subscripts", subs, term, xs[term]->ndim, explicit_n);
                ell_dims[term] = (char)e;
                if (e > max_e) max_e = e;
            }
            term++;
            explicit_n = 0;
            ell_in_term = false;
            if (p == arrow || *p == '\0') break;
            continue;
        }
        if (*p == '.') {
            if (strncmp(p, "...", 3) != 0) return xcs_error(XCS_ERR_VALUE, "einsum '%s': invalid '.'", subs);
            ell_in_term = true;
            p += 2;
            continue;
        }
        if (label_index(*p) >= 0) explicit_n++;
    }
    /* second pass: write the expanded string */
    term = 0;
    for (const char *p = subs; *p; p++) {
        if (o + XCS_MAX_DIMS + 2 >= cap) return xcs_error(XCS_ERR_VALUE, "einsum: subscripts too long");
        if (p == arrow) { term = -1; buf[o++] = '-'; buf[o++] = '>'; p++; continue; }
        if (*p == ',') term++;
        if (*p == '.') {
            if (strncmp(p, "...", 3) != 0) return xcs_error(XCS_ERR_VALUE, "einsum '%s': invalid '.'", subs);
            int e = term < 0 ? max_e : ell_dims[term];
            for (int k = max_e - e; k < max_e; k++) buf[o++] = fresh[k];
            p += 2;
            continue;
        }
        buf[o++] = *p;
    }
    if (!arrow && max_e > 0) { /* implicit output: ellipsis dims, then labels seen once */
        int count[NLABELS] = {0};
        for (size_t i = 0; i < o; i++)
            if (label_index(buf[i]) >= 0) count[label_index(buf[i])]++;
        buf[o++] = '-'; buf[o++] = '>';
        for (int k = 0; k < max_e; k++) buf[o++] = fresh[k];
        for (int l = 0; l < NLABELS; l++) {
            char c = (char)(l < 26 ? 'a' + l : 'A' + l - 26);
            if (count[l] == 1 && !memchr(fresh, c, (size_t)max_e)) buf[o++] = c;
        }
    }
    buf[o] = '\0';
    return XCS_OK;
}

xcs_status xcs_einsum(const char *user_subs, int n, const xcs_tensor *const *xs, xcs_tensor **out) {
    if (n < 1 || n > 2)
        return xcs_error(XCS_ERR_UNSUPPORTED, "einsum '%s': %d operands; xcs supports 1 or 2", user_subs, n);
    char subs[256];
    if (strlen(user_subs) > 128) return xcs_error(XCS_ERR_VALUE, "einsum: subscripts too long");
    xcs_status est = expand_ellipsis(user_subs, n, xs, subs, sizeof subs);
    if (est) return est;
    const char *arrow = strstr(subs, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - subs) : strlen(subs);
    const char *comma = memchr(subs, ',', lhs_len);
    int nterms = comma ? 2 : 1;
    if (comma && memchr(comma + 1, ',', lhs_len - (size_t)(comma + 1 - subs)))
        nterms = 3;
    if (nterms != n)
        return xcs_error(XCS_ERR_VALUE, "einsum '%s': %d operand subscripts for %d operands", subs, nterms, n);
    operand_spec in[2], res;
    xcs_status st;
    size_t len0 = comma ? (size_t)(comma - subs) : lhs_len;
    if ((st = parse_term(subs, len0, &in[0], subs))) return st;
    if (n == 2 && (st = parse_term(comma + 1, lhs_len - len0 - 1, &in[1], subs))) return st;
    int64_t size[NLABELS];
    int count[NLABELS] = {0};
    for (int t = 0; t < n; t++) {
        if (in[t].n != xs[t]->ndim)
            return xcs_error(XCS_ERR_SHAPE, "einsum '%s': operand %d has %d dimensions but %d subscripts",
                             subs, t, xs[t]->ndim, in[t].n);
        for (int i = 0; i < in[t].n; i++) {
            int l = in[t].label[i];
            const int64_t d = xs[t]->shape[i];
            if (count[l] && size[l] != d && size[l] != 1 && d != 1) /* size 1 broadcasts, as numpy's */
                return xcs_error(XCS_ERR_SHAPE, "einsum '%s': subscript '%c' has size %lld in one operand "
                                 "and %lld in another", subs, l < 26 ? 'a' + l : 'A' + l - 26,
                                 (long long)size[l], (long long)d);
            if (!count[l] || size[l] == 1) size[l] = d;
            count[l]++;
        }
    }
    if (arrow) {
        if ((st = parse_term(arrow + 2, strlen(arrow + 2), &res, subs))) return st;
        for (int i = 0; i < res.n; i++)
            if (!count[res.label[i]])
                return xcs_error(XCS_ERR_VALUE, "einsum '%s': output subscript does not appear in the inputs", subs);
    } else { /* implicit output: labels seen once, in alphabetical order */
        res.n = 0;
        for (int l = 0; l < NLABELS; l++)
            if (count[l] == 1) res.label[res.n++] = l;
    }

    /* an operand with a size-1 dim another one has longer: broadcast to it */
    xcs_tensor *a = NULL, *b = NULL, *a3 = NULL, *b3 = NULL, *prod = NULL, *shaped = NULL, *wide[2] = {NULL, NULL};
    const xcs_tensor *x[2] = {xs[0], n == 2 ? xs[1] : NULL};
    for (int t = 0; t < n; t++) {
        int64_t full[XCS_MAX_DIMS];
        bool grow = false;
        for (int i = 0; i < in[t].n; i++) {
            full[i] = size[in[t].label[i]];
            grow |= full[i] != xs[t]->shape[i];
        }
        if (grow) {
            if ((st = xcs_broadcast_to(xs[t], in[t].n, full, &wide[t]))) goto done;
            x[t] = wide[t];
        }
    }
    if ((st = sum_unused(x[0], &in[0], &res, n == 2 ? &in[1] : NULL, &a))) goto done;
    if (n == 1) { /* a holds exactly the output labels: permute into place */
        int perm[XCS_MAX_DIMS];
        for (int i = 0; i < res.n; i++)
            for (int k = 0; k < in[0].n; k++)
                if (in[0].label[k] == res.label[i]) perm[i] = k;
        st = xcs_permute(a, perm, out);
        goto done;
    }
    if ((st = sum_unused(x[1], &in[1], &res, &in[0], &b))) goto done;
    /* classify: batch, free-A, contracted, free-B */
    int batch[XCS_MAX_DIMS], fa[XCS_MAX_DIMS], fb[XCS_MAX_DIMS], con[XCS_MAX_DIMS];
    int nb = 0, nfa = 0, nfb = 0, nc = 0;
    for (int i = 0; i < in[0].n; i++) {
        int l = in[0].label[i];
        bool inb = has_label(&in[1], l), ino = has_label(&res, l);
        if (inb && ino) batch[nb++] = l;
        else if (inb) con[nc++] = l;
        else fa[nfa++] = l;
    }
    for (int i = 0; i < in[1].n; i++)
        if (!has_label(&in[0], in[1].label[i])) fb[nfb++] = in[1].label[i];
    int order_a[XCS_MAX_DIMS], order_b[XCS_MAX_DIMS], na = 0, nbb = 0;
    for (int i = 0; i < nb; i++) order_a[na++] = order_b[nbb++] = batch[i];
    for (int i = 0; i < nfa; i++) order_a[na++] = fa[i];
    for (int i = 0; i < nc; i++) order_a[na++] = order_b[nbb++] = con[i];
    for (int i = 0; i < nfb; i++) order_b[nbb++] = fb[i];
    int ga[3] = {nb, nfa, nc}, gb[3] = {nb, nc, nfb};
    if ((st = arrange(a, &in[0], order_a, na, ga, 3, &a3))) goto done;
    if ((st = arrange(b, &in[1], order_b, nbb, gb, 3, &b3))) goto done;
    if ((st = xcs_matmul(a3, b3, &prod))) goto done;
    /* [B, M, N] -> [batch..., free-A..., free-B...] -> output order */
    operand_spec mid = {0};
    int64_t mshape[XCS_MAX_DIMS];
    for (int i = 0; i < nb; i++) mid.label[mid.n++] = batch[i];
    for (int i = 0; i < nfa; i++) mid.label[mid.n++] = fa[i];
    for (int i = 0; i < nfb; i++) mid.label[mid.n++] = fb[i];
    for (int i = 0; i < mid.n; i++) mshape[i] = size[mid.label[i]];
    if ((st = xcs_reshape(prod, mid.n, mshape, &shaped))) goto done;
    int perm[XCS_MAX_DIMS];
    for (int i = 0; i < res.n; i++)
        for (int k = 0; k < mid.n; k++)
            if (mid.label[k] == res.label[i]) perm[i] = k;
    st = xcs_permute(shaped, perm, out);
done:
    xcs_tensor_free(wide[0]);
    xcs_tensor_free(wide[1]);
    xcs_tensor_free(a);
    xcs_tensor_free(b);
    xcs_tensor_free(a3);
    xcs_tensor_free(b3);
    xcs_tensor_free(prod);
    xcs_tensor_free(shaped);
    return st;
}
