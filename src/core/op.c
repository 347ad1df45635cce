/* op.c — the op table (generated from ops.def) and the backend registry. */
#include "xcs.h"

#include <stdatomic.h>
#include <string.h>

static const xcs_op_info op_table[XCS_OP_COUNT] = {
#define XCS_OP(e, nm, kind, rule) [XCS_OP_##e] = {nm, XCS_KIND_##kind, XCS_RULE_##rule},
#include "ops.def"
#undef XCS_OP
};

const xcs_op_info *xcs_op_get_info(xcs_op op) {
    return (unsigned)op < XCS_OP_COUNT ? &op_table[op] : NULL;
}

const char *xcs_op_name(xcs_op op) {
    return (unsigned)op < XCS_OP_COUNT ? op_table[op].name : "invalid-op";
}

bool xcs_op_int_faults(xcs_op op) {
    return op == XCS_OP_FLOOR_DIV || op == XCS_OP_MOD || op == XCS_OP_FMOD || op == XCS_OP_POW;
}

xcs_status xcs_op_from_name(const char *name, xcs_op *out) {
    for (int i = 0; i < XCS_OP_COUNT; i++) {
        if (strcmp(op_table[i].name, name) == 0) {
            *out = (xcs_op)i;
            return XCS_OK;
        }
    }
    return xcs_error(XCS_ERR_VALUE, "unknown op '%s'", name);
}

/* The registry is written once per device by that backend's init and read
 * by every op afterwards; an atomic pointer makes the hand-over race-free. */
static _Atomic(const xcs_backend *) backends[XCS_DEVICE_COUNT];

xcs_status xcs_backend_register(const xcs_backend *b) {
    if (!b || (unsigned)b->device >= XCS_DEVICE_COUNT)
        return xcs_error(XCS_ERR_VALUE, "invalid backend registration");
    atomic_store(&backends[b->device], b);
    return XCS_OK;
}

const xcs_backend *xcs_backend_for(xcs_device device) {
    const xcs_backend *b = (unsigned)device < XCS_DEVICE_COUNT ? atomic_load(&backends[device]) : NULL;
    if (!b)
        xcs_error(XCS_ERR_UNSUPPORTED,
                  "no backend registered for device %d (call xcs_host_init() for the CPU)",
                  (int)device);
    return b;
}
