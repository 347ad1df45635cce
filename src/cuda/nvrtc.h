/* nvrtc.h — NVRTC opened at run time (dlopen), so nothing links against it:
 * a build or a wheel without the CUDA libraries still loads and says which
 * library is missing.  NVRTC needs no GPU, so CI compiles every generated
 * kernel with it. */
#ifndef XCS_CUDA_NVRTC_H
#define XCS_CUDA_NVRTC_H

#include <stddef.h>

#include "xcs.h"

typedef struct xcs_nvrtc xcs_nvrtc;

/* Opens libnvrtc (XCS_NVRTC_LIBRARY, else libnvrtc.so.13/.12/.11/libnvrtc.so).
 * On failure returns the error with a message naming what was tried. */
xcs_status xcs_nvrtc_open(xcs_nvrtc **out);
void xcs_nvrtc_close(xcs_nvrtc *n);
/* NVRTC's version (major * 1000 + minor * 10, like CUDA's). */
int xcs_nvrtc_version(const xcs_nvrtc *n);

/* Compiles CUDA C `src` for compute capability cc (e.g. 90) to a cubin
 * (`cubin` true; falls back to PTX when NVRTC cannot emit one) or to PTX.
 * *image (malloc'ed) receives it and *size its bytes; *is_cubin says which.
 * A compile error returns XCS_ERR_VALUE whose message holds the log and the
 * kernel's name. */
xcs_status xcs_nvrtc_compile(const xcs_nvrtc *n, const char *src, const char *name, int cc, bool cubin,
                             char **image, size_t *size, bool *is_cubin);

#endif /* XCS_CUDA_NVRTC_H */
