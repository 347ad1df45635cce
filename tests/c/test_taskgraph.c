/* test_taskgraph.c — the host task graph: concurrency (coarse wall-clock
 * bounds on sleeping tasks, as the project allows for concurrency checks),
 * dependency order, the max_workers bound, failure and cancellation,
 * waiting callers that run their own tasks, nested graphs inside tasks, many
 * graphs from many threads, and bad input. */
#define _POSIX_C_SOURCE 199309L
#include <stdatomic.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

#include "check.h"
#include "xcs_host.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_ms(int ms) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

typedef struct sleeper {
    int ms;
    int fail;
    atomic_int *order; /* a shared counter: the task records when it ran */
    int ran_at;        /* order value when it started (-1: never ran) */
} sleeper;

static int sleep_task(void *arg) {
    sleeper *s = arg;
    s->ran_at = s->order ? atomic_fetch_add(s->order, 1) : 0;
    sleep_ms(s->ms);
    return s->fail;
}

static void test_independent_tasks_overlap(void) {
    xcs_taskgraph *g = NULL;
    CHECK_OK(xcs_taskgraph_new(32, &g));
    sleeper s[8];
    double t0 = now_s();
    for (int i = 0; i < 8; i++) {
        s[i] = (sleeper){100, 0, NULL, -1};
        int32_t id;
        CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &s[i], 0, NULL, &id));
        CHECK_EQ_I(id, i);
    }
    CHECK_EQ_I(xcs_taskgraph_wait(g, -1, -1), XCS_TASK_DONE);
    double dt = now_s() - t0;
    CHECK(dt < 0.25); /* 8 x 100 ms, concurrently */
    xcs_taskgraph_stats st;
    xcs_taskgraph_stats_get(g, &st);
    CHECK_EQ_I(st.tasks, 8);
    CHECK(st.peak_running >= 4 && st.helped == 0); /* workers were free: the caller only waited */
    for (int i = 0; i < 8; i++) CHECK_EQ_I(xcs_taskgraph_state(g, i), XCS_TASK_DONE);
    xcs_taskgraph_free(g);
}

static void test_max_workers_bound(void) {
    xcs_taskgraph *g = NULL;
    CHECK_OK(xcs_taskgraph_new(2, &g));
    sleeper s[8];
    double t0 = now_s();
    for (int i = 0; i < 8; i++) {
        s[i] = (sleeper){50, 0, NULL, -1};
        int32_t id;
        CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &s[i], 0, NULL, &id));
    }
    CHECK_EQ_I(xcs_taskgraph_wait(g, -1, -1), XCS_TASK_DONE);
    double dt = now_s() - t0;
    xcs_taskgraph_stats st;
    xcs_taskgraph_stats_get(g, &st);
    CHECK_EQ_I(st.peak_running, 2);
    CHECK(dt >= 0.19 && dt < 0.6); /* 4 rounds of 50 ms */
    xcs_taskgraph_free(g);
}

/* A diamond a -> (b, c) -> d plus a chain: dependencies always ran first,
 * independent branches overlapped, levels are 0/1/2. */
static void test_dependencies(void) {
    xcs_taskgraph *g = NULL;
    CHECK_OK(xcs_taskgraph_new(8, &g));
    atomic_int order = 0;
    sleeper a = {60, 0, &order, -1}, b = {60, 0, &order, -1}, c = {60, 0, &order, -1}, d = {60, 0, &order, -1};
    int32_t ia, ib, ic, id;
    double t0 = now_s();
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &a, 0, NULL, &ia));
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &b, 1, &ia, &ib));
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &c, 1, &ia, &ic));
    const int32_t bc[2] = {ib, ic};
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &d, 2, bc, &id));
    CHECK_EQ_I(xcs_taskgraph_wait(g, id, -1), XCS_TASK_DONE);
    double dt = now_s() - t0;
    CHECK(dt >= 0.17 && dt < 0.3); /* three levels of 60 ms, not four */
    CHECK(a.ran_at == 0 && d.ran_at == 3 && b.ran_at >= 1 && c.ran_at >= 1);
    CHECK_EQ_I(xcs_taskgraph_level(g, ia), 0);
    CHECK_EQ_I(xcs_taskgraph_level(g, ib), 1);
    CHECK_EQ_I(xcs_taskgraph_level(g, id), 2);
    int32_t deps[4];
    CHECK_EQ_I(xcs_taskgraph_deps(g, id, deps, 4), 2);
    CHECK(deps[0] == ib && deps[1] == ic);
    /* a task added after its dependency finished runs at once */
    sleeper e = {1, 0, &order, -1};
    int32_t ie;
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &e, 1, &id, &ie));
    CHECK_EQ_I(xcs_taskgraph_wait(g, ie, -1), XCS_TASK_DONE);
    xcs_taskgraph_free(g);
}

/* A dependency named many times is one: 100 mentions of a running task
 * were linked one by one past the room grown for one (a heap overflow
 * under ASan); deps lists it once. */
static void test_repeated_dependency(void) {
    xcs_taskgraph *g = NULL;
    CHECK_OK(xcs_taskgraph_new(4, &g));
    atomic_int order = 0;
    sleeper a = {30, 0, &order, -1}, b = {1, 0, &order, -1}, c = {1, 0, &order, -1};
    int32_t ia, ib, ic, rep[100];
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &a, 0, NULL, &ia));
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &b, 0, NULL, &ib));
    for (int k = 0; k < 100; k++) rep[k] = k % 3 ? ia : ib;
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &c, 100, rep, &ic));
    CHECK_EQ_I(xcs_taskgraph_wait(g, ic, -1), XCS_TASK_DONE);
    CHECK(c.ran_at == 2);
    int32_t deps[4];
    CHECK_EQ_I(xcs_taskgraph_deps(g, ic, deps, 4), 2);
    CHECK(deps[0] == ia && deps[1] == ib);
    xcs_taskgraph_free(g);
}

/* A failure cancels everything that has not started, dependents included,
 * and later tasks that depend on it; running siblings finish. */
static void test_failure_cancels(void) {
    xcs_taskgraph *g = NULL;
    CHECK_OK(xcs_taskgraph_new(2, &g));
    sleeper bad = {20, 1, NULL, -1}, slow = {150, 0, NULL, -1}, dep = {10, 0, NULL, -1}, queued = {10, 0, NULL, -1};
    int32_t ibad, islow, idep, iq, ilate;
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &bad, 0, NULL, &ibad));
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &slow, 0, NULL, &islow));
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &dep, 1, &ibad, &idep));
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &queued, 0, NULL, &iq)); /* waits for a worker slot */
    CHECK_EQ_I(xcs_taskgraph_wait(g, ibad, -1), XCS_TASK_FAILED);
    CHECK_EQ_I(xcs_taskgraph_state(g, idep), XCS_TASK_CANCELLED);
    CHECK_EQ_I(xcs_taskgraph_state(g, iq), XCS_TASK_CANCELLED);
    sleeper late = {10, 0, NULL, -1};
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &late, 1, &idep, &ilate));
    CHECK_EQ_I(xcs_taskgraph_state(g, ilate), XCS_TASK_CANCELLED);
    CHECK_EQ_I(xcs_taskgraph_wait(g, -1, -1), XCS_TASK_DONE); /* drained */
    CHECK_EQ_I(xcs_taskgraph_state(g, islow), XCS_TASK_DONE);
    CHECK(dep.ran_at == -1 && queued.ran_at == -1 && late.ran_at == -1);
    CHECK_EQ_I(xcs_taskgraph_active(g), 0);
    xcs_taskgraph_free(g);
}

/* Explicit cancel and a wait that times out. */
static void test_cancel_and_timeout(void) {
    xcs_taskgraph *g = NULL;
    CHECK_OK(xcs_taskgraph_new(1, &g));
    sleeper a = {120, 0, NULL, -1}, b = {10, 0, NULL, -1};
    int32_t ia, ib;
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &a, 0, NULL, &ia));
    CHECK_OK(xcs_taskgraph_submit(g, sleep_task, &b, 0, NULL, &ib));
    sleep_ms(20);
    double t0 = now_s();
    xcs_task_state s = xcs_taskgraph_wait(g, ia, 0.02);
    CHECK(s == XCS_TASK_RUNNING && now_s() - t0 < 0.1);
    CHECK_EQ_I(xcs_taskgraph_cancel(g), 1); /* b never started */
    CHECK_EQ_I(xcs_taskgraph_wait(g, ia, -1), XCS_TASK_DONE);
    CHECK_EQ_I(xcs_taskgraph_state(g, ib), XCS_TASK_CANCELLED);
    xcs_taskgraph_free(g);
}

/* Tasks that run a nested graph and wait for it, 3 levels deep with a fan
 * of 6: the pool grows or the waiters run their own tasks; never stuck. */
typedef struct nest {
    int depth;
    atomic_int *leaves;
} nest;

static int nest_task(void *arg) {
    nest *n = arg;
    if (n->depth == 0) {
        sleep_ms(5);
        atomic_fetch_add(n->leaves, 1);
        return 0;
    }
    xcs_taskgraph *g = NULL;
    if (xcs_taskgraph_new(2, &g)) return 1;
    nest kids[6];
    int rc = 0;
    for (int i = 0; i < 6; i++) {
        kids[i] = (nest){n->depth - 1, n->leaves};
        int32_t id;
        if (xcs_taskgraph_submit(g, nest_task, &kids[i], 0, NULL, &id)) rc = 1;
    }
    if (xcs_taskgraph_wait(g, -1, -1) != XCS_TASK_DONE) rc = 1;
    xcs_taskgraph_free(g);
    return rc;
}

static void test_nested_graphs(void) {
    atomic_int leaves = 0;
    nest root = {3, &leaves};
    CHECK_EQ_I(nest_task(&root), 0);
    CHECK_EQ_I(atomic_load(&leaves), 6 * 6 * 6);
}

/* A task (on a pool thread) that submits calls to a graph of its own and
 * waits: for one call, it runs it itself (helped: unless a woken worker
 * claims it first, a race the waiter wins nearly always, so 20 tries); for
 * eight sleeping calls, they still overlap (workers take the others). */
typedef struct inner_calls {
    int n, ms;
    double took;
    xcs_taskgraph_stats st;
} inner_calls;

static int inner_calls_task(void *arg) {
    inner_calls *c = arg;
    xcs_taskgraph *g = NULL;
    if (xcs_taskgraph_new(32, &g)) return 1;
    sleeper s[8];
    double t0 = now_s();
    int32_t id = -1;
    for (int i = 0; i < c->n; i++) {
        s[i] = (sleeper){c->ms, 0, NULL, -1};
        if (xcs_taskgraph_submit(g, sleep_task, &s[i], 0, NULL, &id)) return 1;
    }
    int rc = xcs_taskgraph_wait(g, c->n == 1 ? id : -1, -1) == XCS_TASK_DONE ? 0 : 1;
    c->took = now_s() - t0;
    xcs_taskgraph_stats_get(g, &c->st);
    xcs_taskgraph_free(g);
    return rc;
}

static void test_worker_waits_run_tasks(void) {
    xcs_taskgraph *outer = NULL;
    CHECK_OK(xcs_taskgraph_new(4, &outer));
    inner_calls one[20], eight = {8, 100, 0, {0}};
    int32_t id;
    for (int i = 0; i < 20; i++) {
        one[i] = (inner_calls){1, 1, 0, {0}};
        CHECK_OK(xcs_taskgraph_submit(outer, inner_calls_task, &one[i], 0, NULL, &id));
    }
    CHECK_OK(xcs_taskgraph_submit(outer, inner_calls_task, &eight, 0, NULL, &id));
    CHECK_EQ_I(xcs_taskgraph_wait(outer, -1, -1), XCS_TASK_DONE);
    int helped = 0;
    for (int i = 0; i < 20; i++) helped += one[i].st.helped;
    CHECK(helped >= 1); /* the waiting pool threads ran their own calls */
    CHECK(eight.took < 0.25); /* 8 x 100 ms, concurrently */
    xcs_taskgraph_free(outer);
}

/* 16 threads, each with its own graph of 10 chained and 10 free tasks. */
static int many_caller(void *arg) {
    int *ok = arg;
    xcs_taskgraph *g = NULL;
    if (xcs_taskgraph_new(4, &g)) return 0;
    atomic_int order = 0;
    sleeper s[20];
    int32_t prev = -1;
    for (int i = 0; i < 20; i++) {
        s[i] = (sleeper){2, 0, i < 10 ? &order : NULL, -1};
        int32_t id;
        if (xcs_taskgraph_submit(g, sleep_task, &s[i], i < 10 && prev >= 0 ? 1 : 0, &prev, &id)) return 0;
        if (i < 10) prev = id;
    }
    bool good = xcs_taskgraph_wait(g, -1, -1) == XCS_TASK_DONE;
    for (int i = 0; i < 10; i++) good = good && s[i].ran_at == i;
    xcs_taskgraph_free(g);
    *ok = good;
    return 0;
}

static void test_many_threads(void) {
    thrd_t th[16];
    int ok[16] = {0};
    for (int i = 0; i < 16; i++) CHECK(thrd_create(&th[i], many_caller, &ok[i]) == thrd_success);
    for (int i = 0; i < 16; i++) {
        thrd_join(th[i], NULL);
        CHECK(ok[i]);
    }
    CHECK(xcs_taskpool_threads() >= 1);
}

static void test_bad_input(void) {
    xcs_taskgraph *g = NULL;
    CHECK_ERR(xcs_taskgraph_new(0, &g), XCS_ERR_VALUE, "max_workers");
    CHECK(g == NULL);
    CHECK_OK(xcs_taskgraph_new(3, &g));
    int32_t id = -1, bad = 5;
    sleeper s = {0, 0, NULL, -1};
    CHECK_ERR(xcs_taskgraph_submit(g, sleep_task, &s, 1, &bad, &id), XCS_ERR_VALUE, "dependency 5");
    CHECK_ERR(xcs_taskgraph_submit(g, NULL, &s, 0, NULL, &id), XCS_ERR_VALUE, "function");
    CHECK_EQ_I(xcs_taskgraph_wait(g, 99, 0), XCS_TASK_CANCELLED);
    CHECK_EQ_I(xcs_taskgraph_wait(g, -1, 0), XCS_TASK_DONE); /* nothing submitted */
    xcs_taskgraph_free(g);
    xcs_taskgraph_free(NULL);
}

int main(void) {
    RUN(test_independent_tasks_overlap);
    RUN(test_max_workers_bound);
    RUN(test_dependencies);
    RUN(test_repeated_dependency);
    RUN(test_failure_cancels);
    RUN(test_cancel_and_timeout);
    RUN(test_nested_graphs);
    RUN(test_worker_waits_run_tasks);
    RUN(test_many_threads);
    RUN(test_bad_input);
    return check_report();
}
