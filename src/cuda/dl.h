/* dl.h — the first of several names of a library that dlopen opens
 * (RTLD_NOW | RTLD_LOCAL), for the modules that open CUDA's libraries at
 * run time (blas.c, solver.c); `tried` (cap bytes, may be NULL) gets the
 * names it tried, comma-separated, for an error that says where it looked. */
#ifndef XCS_CUDA_DL_H
#define XCS_CUDA_DL_H

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>

static inline void *xcs_dlopen_first(const char *const *names, size_t n, char *tried, size_t cap) {
    size_t used = 0;
    if (tried && cap) tried[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        void *lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (lib) return lib;
        if (tried && used < cap) used += (size_t)snprintf(tried + used, cap - used, "%s%s", used ? ", " : "", names[i]);
    }
    return NULL;
}

#endif /* XCS_CUDA_DL_H */
