/* error.c — the per-thread error slot.  Every failing function records its
 * message here and returns its status; the Python binding turns the pair into
 * the matching XCSError subclass. */
#include "xcs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XCS_ERR_CAP 1024

static _Thread_local char err_msg[XCS_ERR_CAP];
static _Thread_local xcs_status err_status;

xcs_status xcs_error(xcs_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    err_status = status;
    return status;
}

xcs_status xcs_error_context(xcs_status status, const char *fmt, ...) {
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n > sizeof prefix - 3) n = (int)sizeof prefix - 3;
    memcpy(prefix + n, ": ", 3);
    n += 2;
    /* shift the old message right and put the prefix in front */
    size_t old = strlen(err_msg);
    if (old + (size_t)n > XCS_ERR_CAP - 1) old = XCS_ERR_CAP - 1 - (size_t)n;
    memmove(err_msg + n, err_msg, old);
    memcpy(err_msg, prefix, (size_t)n);
    err_msg[n + old] = '\0';
    err_status = status;
    return status;
}

const char *xcs_last_error(void) { return err_msg[0] ? err_msg : "unknown error"; }
xcs_status xcs_last_status(void) { return err_status; }

void xcs_error_clear(void) {
    err_msg[0] = '\0';
    err_status = XCS_OK;
}

const char *xcs_status_name(xcs_status s) {
    switch (s) {
    case XCS_OK: return "ok";
    case XCS_ERR_VALUE: return "value error";
    case XCS_ERR_SHAPE: return "shape error";
    case XCS_ERR_TYPE: return "type error";
    case XCS_ERR_INDEX: return "index error";
    case XCS_ERR_MEMORY: return "memory error";
    case XCS_ERR_ZERO_DIV: return "division by zero";
    case XCS_ERR_UNSUPPORTED: return "unsupported";
    case XCS_ERR_INTERNAL: return "internal error";
    case XCS_ERR_LINALG: return "linear algebra error";
    case XCS_ERR_OVERFLOW: return "integer overflow";
    }
    return "unknown status";
}

bool xcs_env_off(const char *name) {
    const char *e = getenv(name);
    return e && strcmp(e, "0") == 0;
}
