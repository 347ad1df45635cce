/* number.c — Python operators on Array.
 *
 * Every binary slot converts both operands with xcs_py_arg_from, so Python
 * scalars take part as weak 0-d tensors (NEP 50: float32_array * 2.0 stays
 * float32) and numpy arrays / lists as strong ones.  Python calls a slot with
 * the Array on either side (reflected forms), which the helpers handle by
 * order.  An operand that cannot be converted is an XCSTypeError naming its
 * type and the op — except for == and !=, which return NotImplemented so that
 * `x == None` falls back to identity like any Python object. */
#include "xcs_py.h"

static PyObject *nb_add(PyObject *a, PyObject *b) { return xcs_py_binary(XCS_OP_ADD, a, b); }
static PyObject *nb_sub(PyObject *a, PyObject *b) { return xcs_py_binary(XCS_OP_SUB, a, b); }
static PyObject *nb_mul(PyObject *a, PyObject *b) { return xcs_py_binary(XCS_OP_MUL, a, b); }
static PyObject *nb_truediv(PyObject *a, PyObject *b) { return xcs_py_binary(XCS_OP_DIV, a, b); }
static PyObject *nb_floordiv(PyObject *a, PyObject *b) { return xcs_py_binary(XCS_OP_FLOOR_DIV, a, b); }
static PyObject *nb_mod(PyObject *a, PyObject *b) { return xcs_py_binary(XCS_OP_MOD, a, b); }
static PyObject *nb_and(PyObject *a, PyObject *b) { return xcs_py_binary(XCS_OP_BIT_AND, a, b); }
static PyObject *nb_or(PyObject *a, PyObject *b) { return xcs_py_binary(XCS_OP_BIT_OR, a, b); }
static PyObject *nb_xor(PyObject *a, PyObject *b) { return xcs_py_binary(XCS_OP_BIT_XOR, a, b); }

/* << and >>: numpy's shifts are composites written in Python (a count past
 * the bit width gives 0 or the sign, as numpy), called from here. */
static PyObject *py_shift(const char *name, PyObject *a, PyObject *b) {
    PyObject *mod = PyImport_ImportModule("ember.xcs._np_ufuncs");
    PyObject *fn = mod ? PyObject_GetAttrString(mod, name) : NULL;
    Py_XDECREF(mod);
    if (!fn) return NULL;
    PyObject *r = PyObject_CallFunctionObjArgs(fn, a, b, NULL);
    Py_DECREF(fn);
    return r;
}

static PyObject *nb_lshift(PyObject *a, PyObject *b) { return py_shift("left_shift", a, b); }
static PyObject *nb_rshift(PyObject *a, PyObject *b) { return py_shift("right_shift", a, b); }

static PyObject *nb_pow(PyObject *a, PyObject *b, PyObject *mod) {
    if (mod != Py_None)
        return xcs_py_errorf(XCS_ERR_TYPE, "pow() with a modulus is not supported for xcs Arrays");
    return xcs_py_binary(XCS_OP_POW, a, b);
}

static PyObject *nb_divmod(PyObject *a, PyObject *b) {
    PyObject *q = xcs_py_binary(XCS_OP_FLOOR_DIV, a, b);
    if (!q) return NULL;
    PyObject *r = xcs_py_binary(XCS_OP_MOD, a, b);
    if (!r) {
        Py_DECREF(q);
        return NULL;
    }
    PyObject *t = PyTuple_Pack(2, q, r);
    Py_DECREF(q);
    Py_DECREF(r);
    return t;
}

static PyObject *nb_matmul(PyObject *a, PyObject *b) {
    xcs_py_arg x = XCS_PY_ARG_INIT, y = XCS_PY_ARG_INIT;
    if (xcs_py_operand(a, "matmul", &x) || xcs_py_operand(b, "matmul", &y)) {
        xcs_py_arg_drop(&x);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st;
    bool big = xcs_tensor_numel(x.t) + xcs_tensor_numel(y.t) >= XCS_PY_NOGIL_MIN;
    XCS_PY_CALL(st, big, xcs_matmul(x.t, y.t, &out));
    xcs_py_arg_drop(&x);
    xcs_py_arg_drop(&y);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

static PyObject *nb_neg(PyObject *a) { return xcs_py_unary(XCS_OP_NEG, a); }
static PyObject *nb_abs(PyObject *a) { return xcs_py_unary(XCS_OP_ABS, a); }
static PyObject *nb_invert(PyObject *a) { return xcs_py_unary(XCS_OP_BIT_NOT, a); }

static PyObject *nb_pos(PyObject *a) {
    xcs_tensor *v, *t = xcs_py_placed(a);
    if (!t) return NULL;
    xcs_status st = xcs_tensor_view(t, &v);
    return st ? xcs_py_raise(st) : xcs_py_wrap(v);
}

/* ---------------------------------------------------------------- scalars */

/* The single element of a size-1 array, or an error naming `what`. */
static int single(PyObject *self, const char *what) {
    if (XCS_T(self)->graph) {
        char use[64];
        PyOS_snprintf(use, sizeof use, "as a Python %s",
                      what[0] == 'b' ? "bool" : what[0] == 'i' ? "int" : what[0] == 'f' ? "float" : "index");
        return xcs_py_concrete(XCS_T(self), use);
    }
    int64_t n = xcs_tensor_numel(XCS_T(self));
    if (n != 1) {
        xcs_py_errorf(XCS_ERR_SHAPE, "%s needs an Array with exactly one element, got %lld elements%s", what,
                      (long long)n, what[0] == 'b' ? " (the truth value is ambiguous: use .any() or .all())" : "");
        return -1;
    }
    return 0;
}

static int nb_bool(PyObject *self) {
    if (single(self, "bool()")) return -1;
    const xcs_tensor *t = xcs_py_host(self);
    if (!t) return -1;
    return xcs_dtype_is_float(t->dtype) ? xcs_tensor_get_f64(t, 0) != 0.0 : xcs_tensor_get_i64(t, 0) != 0;
}

static PyObject *nb_int(PyObject *self) {
    if (single(self, "int()")) return NULL;
    const xcs_tensor *t = xcs_py_host(self);
    if (!t) return NULL;
    if (xcs_dtype_is_float(t->dtype)) {
        PyObject *f = PyFloat_FromDouble(xcs_tensor_get_f64(t, 0));
        PyObject *r = f ? PyNumber_Long(f) : NULL; /* truncation, inf/nan errors as in Python */
        Py_XDECREF(f);
        return r;
    }
    return PyLong_FromLongLong(xcs_tensor_get_i64(t, 0));
}

static PyObject *nb_float(PyObject *self) {
    if (single(self, "float()")) return NULL;
    const xcs_tensor *t = xcs_py_host(self);
    return t ? PyFloat_FromDouble(xcs_tensor_get_f64(t, 0)) : NULL;
}

static PyObject *nb_index(PyObject *self) {
    const xcs_tensor *t = XCS_T(self);
    if (t->graph) {
        (void)single(self, "__index__()"); /* raises XCSTracerError */
        return NULL;
    }
    if (!xcs_dtype_is_int(t->dtype))
        return xcs_py_errorf(XCS_ERR_TYPE, "only integer arrays can be used as an index, this one is %s",
                             xcs_dtype_name(t->dtype));
    if (single(self, "__index__()") || !(t = xcs_py_host(self))) return NULL;
    return PyLong_FromLongLong(xcs_tensor_get_i64(t, 0));
}

PyNumberMethods xcs_py_number_methods = {
    .nb_add = nb_add,
    .nb_subtract = nb_sub,
    .nb_multiply = nb_mul,
    .nb_remainder = nb_mod,
    .nb_divmod = nb_divmod,
    .nb_power = nb_pow,
    .nb_negative = nb_neg,
    .nb_positive = nb_pos,
    .nb_absolute = nb_abs,
    .nb_bool = nb_bool,
    .nb_invert = nb_invert,
    .nb_and = nb_and,
    .nb_lshift = nb_lshift,
    .nb_rshift = nb_rshift,
    .nb_xor = nb_xor,
    .nb_or = nb_or,
    .nb_int = nb_int,
    .nb_float = nb_float,
    .nb_floor_divide = nb_floordiv,
    .nb_true_divide = nb_truediv,
    .nb_index = nb_index,
    .nb_matrix_multiply = nb_matmul,
};

/* ---------------------------------------------------------------- compare */

PyObject *xcs_py_richcompare(PyObject *self, PyObject *other, int op) {
    static const xcs_op ops[] = {
        [Py_LT] = XCS_OP_LT, [Py_LE] = XCS_OP_LE, [Py_EQ] = XCS_OP_EQ,
        [Py_NE] = XCS_OP_NE, [Py_GT] = XCS_OP_GT, [Py_GE] = XCS_OP_GE,
    };
    if (xcs_py_check_live(self)) return NULL;
    if (op == Py_EQ || op == Py_NE) {
        /* convert first so an unsupported type can fall back to identity */
        xcs_py_arg o;
        if (xcs_py_operand(other, xcs_op_name(ops[op]), &o)) {
            xcs_py_state *s = xcs_py_state_get();
            if (s && PyErr_ExceptionMatches(s->XCSTypeError)) {
                PyErr_Clear();
                Py_RETURN_NOTIMPLEMENTED;
            }
            return NULL;
        }
        const xcs_tensor *t = xcs_py_placed(self);
        PyObject *r = t ? xcs_py_binary_t(ops[op], t, o.t) : NULL;
        xcs_py_arg_drop(&o);
        return r;
    }
    return xcs_py_binary(ops[op], self, other);
}
