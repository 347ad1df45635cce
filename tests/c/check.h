/* check.h — a tiny assertion harness for the C unit tests.
 *
 * Each test file defines `static void test_xxx(void)` functions and a main()
 * that calls RUN(test_xxx) for each, then `return check_report();`.  A failed
 * CHECK prints file:line, the expression and xcs_last_error(), and the test
 * goes on (so one run reports every failure); the exit code is the number of
 * failures (capped), which CTest reads as pass/fail. */
#ifndef XCS_TEST_CHECK_H
#define XCS_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "xcs.h"

/* needle == NULL: any text. */
static inline int check_contains(const char *hay, const char *needle) {
    return !needle || strstr(hay, needle) != NULL;
}

static int check_failures;
static int check_count;
static const char *check_current = "";

#define CHECK(cond)                                                                    \
    do {                                                                               \
        check_count++;                                                                 \
        if (!(cond)) {                                                                 \
            check_failures++;                                                          \
            fprintf(stderr, "%s:%d: [%s] CHECK(%s) failed (last error: %s)\n",         \
                    __FILE__, __LINE__, check_current, #cond, xcs_last_error());       \
        }                                                                              \
    } while (0)

#define CHECK_EQ_I(a, b)                                                               \
    do {                                                                               \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                \
        check_count++;                                                                 \
        if (check_a_ != check_b_) {                                                    \
            check_failures++;                                                          \
            fprintf(stderr, "%s:%d: [%s] %s == %s failed: %lld vs %lld\n", __FILE__,   \
                    __LINE__, check_current, #a, #b, check_a_, check_b_);              \
        }                                                                              \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                          \
    do {                                                                               \
        double check_a_ = (double)(a), check_b_ = (double)(b);                         \
        check_count++;                                                                 \
        if (!(fabs(check_a_ - check_b_) <= (tol))) {                                   \
            check_failures++;                                                          \
            fprintf(stderr, "%s:%d: [%s] %s ~= %s failed: %.17g vs %.17g\n", __FILE__, \
                    __LINE__, check_current, #a, #b, check_a_, check_b_);              \
        }                                                                              \
    } while (0)

/* The call must return XCS_OK. */
#define CHECK_OK(call)                                                                 \
    do {                                                                               \
        xcs_status check_s_ = (call);                                                  \
        check_count++;                                                                 \
        if (check_s_ != XCS_OK) {                                                      \
            check_failures++;                                                          \
            fprintf(stderr, "%s:%d: [%s] %s returned %s: %s\n", __FILE__, __LINE__,     \
                    check_current, #call, xcs_status_name(check_s_), xcs_last_error()); \
        }                                                                              \
    } while (0)

/* The call must fail with `status` and leave a message containing `needle`
 * (NULL: any non-empty message). */
#define CHECK_ERR(call, status, needle)                                                \
    do {                                                                               \
        xcs_error_clear();                                                             \
        xcs_status check_s_ = (call);                                                  \
        const char *check_m_ = xcs_last_error();                                       \
        check_count++;                                                                 \
        if (check_s_ != (status)) {                                                    \
            check_failures++;                                                          \
            fprintf(stderr, "%s:%d: [%s] %s returned %s, expected %s (message: %s)\n", \
                    __FILE__, __LINE__, check_current, #call, xcs_status_name(check_s_), \
                    xcs_status_name(status), check_m_ ? check_m_ : "(null)");          \
        } else if (!check_m_ || !check_m_[0] || !check_contains(check_m_, (needle))) { \
            check_failures++;                                                          \
            fprintf(stderr, "%s:%d: [%s] %s: message \"%s\" lacks \"%s\"\n", __FILE__, \
                    __LINE__, check_current, #call, check_m_ ? check_m_ : "(null)",     \
                    (needle) ? (needle) : "(any text)");                               \
        }                                                                              \
    } while (0)

#define RUN(fn)                                                                        \
    do {                                                                               \
        int check_before_ = check_failures;                                            \
        check_current = #fn;                                                           \
        xcs_error_clear();                                                             \
        fn();                                                                          \
        printf("%-48s %s\n", #fn, check_failures == check_before_ ? "ok" : "FAILED");  \
    } while (0)

static inline int check_report(void) {
    printf("%d checks, %d failed\n", check_count, check_failures);
    return check_failures > 100 ? 100 : check_failures;
}

/* Shape helper: CHECK that t has exactly the given shape. */
static inline int check_shape_is(const xcs_tensor *t, int ndim, const int64_t *shape) {
    if (!t || t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define CHECK_SHAPE(t, nd, ...) CHECK(check_shape_is((t), (nd), SHAPE(__VA_ARGS__)))

#endif
