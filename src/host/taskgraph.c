/* taskgraph.c — the host task graph (xcs_host.h): orchestration calls run
 * concurrently on a process-wide pool of worker threads.
 *
 * One mutex guards the pool and every graph: a task is a few hundred
 * nanoseconds of bookkeeping around a call that takes milliseconds to
 * seconds, so contention is not what limits it, and one lock keeps the
 * invariants (counts, queues, the runnable ring) easy to state:
 *
 *   - g->n_ready tasks are READY; their ids are in g->ready[g->rhead..rtail)
 *     together with stale ids of tasks that left READY (skipped on pop);
 *   - g->running tasks are RUNNING, at most g->max_workers;
 *   - g->active = PENDING + READY + RUNNING;
 *   - g is on the pool's runnable ring iff n_ready > 0 and running <
 *     max_workers (listed() below).
 *
 * Workers take graphs round-robin from the ring.  A submit that makes a
 * graph runnable wakes an idle worker or, when none is free, starts one:
 * the pool grows to the number of calls in flight (up to XCS_POOL_MAX) and
 * idle workers exit after XCS_POOL_IDLE_S.  When the pool can grow no more,
 * a caller waiting for one of its tasks runs that task (or a ready
 * dependency of it) itself, so progress never depends on a free worker.
 *
 * Failure policy: when a task fails, every task of its graph that has not
 * started is cancelled (the call it belongs to will raise; plain Python
 * would not have run what comes after the failing call either), and so is
 * any later task that depends on a failed or cancelled one. */
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>

#include "xcs_host.h"

#define XCS_POOL_MAX 4096   /* worker threads at most */
#define XCS_POOL_IDLE_S 30  /* an idle worker exits after this long */

typedef struct task {
    xcs_task_fn fn;
    void *arg;
    xcs_task_state state;
    int unmet;                /* dependencies not finished */
    int level;
    int n_deps, n_next, cap_next;
    int32_t *deps;            /* owned */
    int32_t *next;            /* dependents, owned */
} task;

struct xcs_taskgraph {
    task *tasks;
    int n, cap;
    int32_t *ready;
    int rhead, rtail, rcap;
    int n_ready, running, active, max_workers;
    const xcs_task_hooks *hooks;
    bool on_ring;
    xcs_taskgraph *rnext, *rprev;
    cnd_t changed;            /* a task finished or was cancelled */
    xcs_taskgraph_stats st;
};

static struct {
    once_flag once;
    mtx_t lock;
    cnd_t work;
    int threads, idle, wakeups;
    int searching;            /* workers woken or started that have not claimed a task yet */
    bool spawn_failed;        /* the last thread creation failed: waiters run their own tasks */
    xcs_taskgraph *ring;      /* runnable graphs, circular */
} P = {.once = ONCE_FLAG_INIT};

static void pool_init(void) {
    mtx_init(&P.lock, mtx_plain);
    cnd_init(&P.work);
}

static double now_s(void) {
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static struct timespec at(double t) {
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    return ts;
}

static bool terminal(xcs_task_state s) { return s >= XCS_TASK_DONE; }

/* ------------------------------------------------------------ the ring */

static void relist(xcs_taskgraph *g) {
    bool want = g->n_ready > 0 && g->running < g->max_workers;
    if (want == g->on_ring) return;
    if (want) {
        if (!P.ring) {
            g->rnext = g->rprev = g;
            P.ring = g;
        } else {
            g->rnext = P.ring;
            g->rprev = P.ring->rprev;
            P.ring->rprev->rnext = g;
            P.ring->rprev = g;
        }
    } else {
        if (g->rnext == g) P.ring = NULL;
        else {
            g->rprev->rnext = g->rnext;
            g->rnext->rprev = g->rprev;
            if (P.ring == g) P.ring = g->rnext;
        }
        g->rnext = g->rprev = NULL;
    }
    g->on_ring = want;
}

/* ------------------------------------------------------------ tasks */

static int worker_main(void *unused);

/* True on the pool's own threads (worker_main). */
static _Thread_local bool in_worker;

/* A runnable graph needs a thread: wake an idle one, else start one.  At
 * most one worker is "searching" (woken, not yet holding a task) at a time;
 * when it claims a task and more are runnable it wakes the next (a baton,
 * as in Go's scheduler).  Blocking calls still each get a thread within
 * microseconds, while a burst of short tasks is run by the few threads that
 * are already awake instead of waking a thread (and a GIL hand-off) per
 * task. */
static void want_worker(void) {
    if (!P.ring || P.searching > 0) return;
    if (P.idle > P.wakeups) {
        P.wakeups++;
        P.searching++;
        cnd_signal(&P.work);
        return;
    }
    if (P.threads >= XCS_POOL_MAX) return; /* the waiting callers run their tasks themselves */
    thrd_t th;
    if (thrd_create(&th, worker_main, NULL) == thrd_success) {
        thrd_detach(th);
        P.threads++;
        P.searching++;
        P.spawn_failed = false;
    } else {
        P.spawn_failed = true;
    }
}

static void push_ready(xcs_taskgraph *g, int32_t id) {
    g->tasks[id].state = XCS_TASK_READY;
    g->ready[g->rtail++] = id; /* rcap >= cap: every id enters at most once */
    g->n_ready++;
}

/* Cancels task id if it has not started, and its pending dependents. */
static void cancel_task(xcs_taskgraph *g, int32_t id) {
    task *t = &g->tasks[id];
    if (t->state != XCS_TASK_PENDING && t->state != XCS_TASK_READY) return;
    if (t->state == XCS_TASK_READY) g->n_ready--;
    t->state = XCS_TASK_CANCELLED;
    g->active--;
    g->st.cancelled++;
    for (int k = 0; k < t->n_next; k++) cancel_task(g, t->next[k]);
}

static int cancel_unstarted(xcs_taskgraph *g) {
    int before = g->st.cancelled;
    for (int32_t i = 0; i < g->n; i++) cancel_task(g, i);
    return g->st.cancelled - before;
}

/* Task id finished in state s: release or cancel its dependents; returns
 * how many became ready. */
static int finish(xcs_taskgraph *g, int32_t id, xcs_task_state s) {
    task *t = &g->tasks[id];
    int released = 0;
    t->state = s;
    g->active--;
    for (int k = 0; k < t->n_next; k++) {
        task *u = &g->tasks[t->next[k]];
        if (u->state != XCS_TASK_PENDING) continue;
        if (s != XCS_TASK_DONE) cancel_task(g, t->next[k]);
        else if (--u->unmet == 0) {
            push_ready(g, t->next[k]);
            released++;
        }
    }
    if (s == XCS_TASK_FAILED) cancel_unstarted(g);
    return released;
}

/* Takes READY task id for this thread (lock held).  A worker passes the
 * baton here, before it enters the graph's hooks (which may wait for the
 * GIL), so the next worker is already on its way. */
static void claim_task(xcs_taskgraph *g, int32_t id, bool helper) {
    g->tasks[id].state = XCS_TASK_RUNNING;
    g->n_ready--;
    g->running++;
    if (g->running > g->st.peak_running) g->st.peak_running = g->running;
    if (helper) g->st.helped++;
    relist(g);
    if (!helper) want_worker(); /* the baton: more runnable work wakes the next worker */
}

/* Runs claimed task id on this thread (lock held on entry and exit).  A
 * worker has entered the graph's hooks; a helping caller has not (its task
 * function copes, e.g. by taking the GIL itself). */
static void run_task(xcs_taskgraph *g, int32_t id, bool helper) {
    task *t = &g->tasks[id];
    xcs_task_fn fn = t->fn;
    void *arg = t->arg;
    (void)helper;
    mtx_unlock(&P.lock);
    int rc = fn(arg);
    mtx_lock(&P.lock);
    g->running--;
    int released = finish(g, id, rc ? XCS_TASK_FAILED : XCS_TASK_DONE);
    relist(g);
    /* this thread goes on with the next runnable task itself; a helping
     * caller does not, so it passes what it released on */
    if (helper && released > 0) want_worker();
    cnd_broadcast(&g->changed);
}

/* The oldest READY task, or -1. */
static int32_t pop_ready(xcs_taskgraph *g) {
    while (g->rhead < g->rtail) {
        int32_t id = g->ready[g->rhead++];
        if (g->tasks[id].state == XCS_TASK_READY) return id;
    }
    return -1;
}

/* Switches this worker from hooks *cur to h (lock held; released meanwhile). */
static void switch_hooks(const xcs_task_hooks **cur, const xcs_task_hooks *h, const xcs_task_hooks **last) {
    if (*cur == h) return;
    mtx_unlock(&P.lock);
    if (*cur && (*cur)->leave) (*cur)->leave();
    if (h && h->enter) h->enter();
    mtx_lock(&P.lock);
    *cur = h;
    if (h) *last = h;
}

static int worker_main(void *unused) {
    (void)unused;
    in_worker = true;
    const xcs_task_hooks *cur = NULL, *last = NULL;
    bool searching = true; /* counted in P.searching by want_worker, which started us */
    mtx_lock(&P.lock);
    for (;;) {
        xcs_taskgraph *g = P.ring;
        if (!g && cur) {
            switch_hooks(&cur, NULL, &last);
            continue;
        }
        if (!g) {
            if (searching) {
                searching = false;
                P.searching--;
            }
            P.idle++;
            struct timespec ts = at(now_s() + XCS_POOL_IDLE_S);
            int r = cnd_timedwait(&P.work, &P.lock, &ts);
            P.idle--;
            if (P.wakeups > 0) { /* woken by want_worker, which counted us as searching */
                P.wakeups--;
                searching = true;
            }
            if (r == thrd_timedout && !P.ring && !searching) break;
            continue;
        }
        P.ring = g->rnext; /* round robin over graphs */
        int32_t id = pop_ready(g);
        if (id < 0) { /* only stale entries: n_ready says otherwise, so this cannot happen; unlist */
            g->n_ready = 0;
            relist(g);
            continue;
        }
        if (searching) {
            searching = false;
            P.searching--;
        }
        claim_task(g, id, false);
        switch_hooks(&cur, g->hooks, &last); /* g cannot go away: it has a running task */
        run_task(g, id, false);
    }
    P.threads--;
    mtx_unlock(&P.lock);
    if (last && last->thread_exit) last->thread_exit();
    return 0;
}

/* ------------------------------------------------------------ public */

xcs_status xcs_taskgraph_new(int max_workers, xcs_taskgraph **out) {
    return xcs_taskgraph_new_hooked(max_workers, NULL, out);
}

xcs_status xcs_taskgraph_new_hooked(int max_workers, const xcs_task_hooks *hooks, xcs_taskgraph **out) {
    *out = NULL;
    if (max_workers < 1) return xcs_error(XCS_ERR_VALUE, "task graph: max_workers must be >= 1, got %d", max_workers);
    call_once(&P.once, pool_init);
    xcs_taskgraph *g = calloc(1, sizeof *g);
    if (!g || cnd_init(&g->changed) != thrd_success) {
        free(g);
        return xcs_error(XCS_ERR_MEMORY, "out of memory creating a task graph");
    }
    g->max_workers = max_workers;
    g->hooks = hooks;
    *out = g;
    return XCS_OK;
}

void xcs_taskgraph_free(xcs_taskgraph *g) {
    if (!g) return;
    mtx_lock(&P.lock);
    cancel_unstarted(g);
    relist(g);
    while (g->running > 0) cnd_wait(&g->changed, &P.lock);
    mtx_unlock(&P.lock);
    for (int i = 0; i < g->n; i++) {
        free(g->tasks[i].deps);
        free(g->tasks[i].next);
    }
    free(g->tasks);
    free(g->ready);
    cnd_destroy(&g->changed);
    free(g);
}

static int cmp_id(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* deps[0..n) copied into own, sorted, repeats dropped: their count.  A task
 * named twice is one dependency (each was linked once per mention, past the
 * room reserved for one: a heap overflow). */
static int distinct_deps(int n, const int32_t *deps, int32_t *own) {
    memcpy(own, deps, (size_t)n * sizeof *own);
    qsort(own, (size_t)n, sizeof *own, cmp_id);
    int m = 0;
    for (int k = 0; k < n; k++)
        if (m == 0 || own[m - 1] != own[k]) own[m++] = own[k];
    return m;
}

static bool grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

xcs_status xcs_taskgraph_submit(xcs_taskgraph *g, xcs_task_fn fn, void *arg, int n_deps, const int32_t *deps,
                                int32_t *id) {
    if (!fn) return xcs_error(XCS_ERR_VALUE, "task graph: a task needs a function");
    if (n_deps < 0 || (n_deps > 0 && !deps)) return xcs_error(XCS_ERR_VALUE, "task graph: bad dependency list");
    mtx_lock(&P.lock);
    xcs_status st = XCS_OK;
    for (int k = 0; k < n_deps && !st; k++)
        if (deps[k] < 0 || deps[k] >= g->n)
            st = xcs_error(XCS_ERR_VALUE, "task graph: dependency %d is not a task of this graph (it has %d)",
                           (int)deps[k], g->n);
    int cap = g->cap;
    int32_t *own = NULL;
    if (!st && (!grow((void **)&g->tasks, &cap, g->n + 1, sizeof *g->tasks) ||
                !grow((void **)&g->ready, &g->rcap, cap, sizeof *g->ready) ||
                (n_deps && !(own = malloc((size_t)n_deps * sizeof *own)))))
        st = xcs_error(XCS_ERR_MEMORY, "out of memory adding a task");
    if (!st) g->cap = cap;
    if (!st && n_deps) n_deps = distinct_deps(n_deps, deps, own);
    /* dependents lists first, so nothing is half-linked on failure */
    for (int k = 0; k < n_deps && !st; k++) {
        task *u = &g->tasks[own[k]];
        if (!terminal(u->state) && !grow((void **)&u->next, &u->cap_next, u->n_next + 1, sizeof *u->next))
            st = xcs_error(XCS_ERR_MEMORY, "out of memory adding a task");
    }
    if (st) {
        free(own);
        mtx_unlock(&P.lock);
        return st;
    }
    int32_t me = g->n++;
    task *t = &g->tasks[me];
    memset(t, 0, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    t->state = XCS_TASK_PENDING;
    t->deps = own;
    t->n_deps = n_deps;
    g->active++;
    g->st.tasks++;
    bool doomed = false;
    for (int k = 0; k < n_deps; k++) {
        task *u = &g->tasks[own[k]];
        if (u->level + 1 > t->level) t->level = u->level + 1;
        if (u->state == XCS_TASK_DONE) continue;
        if (u->state == XCS_TASK_FAILED || u->state == XCS_TASK_CANCELLED) doomed = true;
        else {
            u->next[u->n_next++] = me;
            t->unmet++;
        }
    }
    if (doomed) cancel_task(g, me);
    else if (t->unmet == 0) push_ready(g, me);
    relist(g);
    want_worker();
    *id = me;
    mtx_unlock(&P.lock);
    return XCS_OK;
}

/* A READY task worth running while waiting for `id`: id itself or one of its
 * direct dependencies; any ready task when waiting for all (id < 0).  A
 * pool thread waiting (a task of one graph waiting for its own calls: a
 * vmap example for its LLM call) runs it itself: it would only sleep, and
 * a hop to another thread costs wake-ups and a GIL hand-off (64 examples
 * around a call: 1078 -> 787 context switches a map).  Any other caller
 * only when the pool cannot give the task a thread (at its cap, or thread
 * creation failed): otherwise a worker takes it, and the caller stays free
 * to be interrupted (a signal lands on the main thread, never in a task's
 * call) and to return as soon as its own task is done. */
static int32_t helpable(xcs_taskgraph *g, int32_t id) {
    if (g->n_ready == 0 || g->running >= g->max_workers) return -1;
    if (!in_worker && P.threads < XCS_POOL_MAX && !P.spawn_failed) return -1;
    if (id < 0) return pop_ready(g);
    const task *t = &g->tasks[id];
    if (t->state == XCS_TASK_READY) return id;
    for (int k = 0; k < t->n_deps; k++)
        if (g->tasks[t->deps[k]].state == XCS_TASK_READY) return t->deps[k];
    return -1;
}

xcs_task_state xcs_taskgraph_wait(xcs_taskgraph *g, int32_t id, double timeout_s) {
    double t0 = now_s(), end = timeout_s < 0 ? 0 : t0 + timeout_s;
    mtx_lock(&P.lock);
    xcs_task_state s = XCS_TASK_RUNNING;
    if (id >= g->n) {
        mtx_unlock(&P.lock);
        return XCS_TASK_CANCELLED;
    }
    for (;;) {
        bool over = id >= 0 ? terminal(g->tasks[id].state) : g->active == 0;
        if (over) break;
        int32_t h = helpable(g, id);
        if (h >= 0) {
            claim_task(g, h, true);
            run_task(g, h, true);
            continue;
        }
        double now = now_s();
        if (timeout_s >= 0 && now >= end) break;
        struct timespec ts = at(timeout_s >= 0 && end < now + 1.0 ? end : now + 1.0);
        cnd_timedwait(&g->changed, &P.lock, &ts);
    }
    if (id >= 0) s = g->tasks[id].state;
    else s = g->active == 0 ? XCS_TASK_DONE : XCS_TASK_RUNNING;
    g->st.wait_s += now_s() - t0;
    mtx_unlock(&P.lock);
    return s;
}

xcs_task_state xcs_taskgraph_state(xcs_taskgraph *g, int32_t id) {
    mtx_lock(&P.lock);
    xcs_task_state s = id >= 0 && id < g->n ? g->tasks[id].state : XCS_TASK_CANCELLED;
    mtx_unlock(&P.lock);
    return s;
}

int xcs_taskgraph_cancel(xcs_taskgraph *g) {
    mtx_lock(&P.lock);
    int n = cancel_unstarted(g);
    relist(g);
    cnd_broadcast(&g->changed);
    mtx_unlock(&P.lock);
    return n;
}

int xcs_taskgraph_active(xcs_taskgraph *g) {
    mtx_lock(&P.lock);
    int n = g->active;
    mtx_unlock(&P.lock);
    return n;
}

void xcs_taskgraph_stats_get(xcs_taskgraph *g, xcs_taskgraph_stats *out) {
    mtx_lock(&P.lock);
    *out = g->st;
    mtx_unlock(&P.lock);
}

int xcs_taskgraph_level(xcs_taskgraph *g, int32_t id) {
    mtx_lock(&P.lock);
    int l = id >= 0 && id < g->n ? g->tasks[id].level : -1;
    mtx_unlock(&P.lock);
    return l;
}

int xcs_taskgraph_deps(xcs_taskgraph *g, int32_t id, int32_t *deps, int cap) {
    mtx_lock(&P.lock);
    int n = 0;
    if (id >= 0 && id < g->n) {
        n = g->tasks[id].n_deps;
        for (int k = 0; k < n && k < cap; k++) deps[k] = g->tasks[id].deps[k];
    }
    mtx_unlock(&P.lock);
    return n;
}

int xcs_taskpool_threads(void) {
    call_once(&P.once, pool_init);
    mtx_lock(&P.lock);
    int n = P.threads;
    mtx_unlock(&P.lock);
    return n;
}
