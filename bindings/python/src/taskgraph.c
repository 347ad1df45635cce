/* taskgraph.c — ember.xcs._xcs.TaskGraph: the host task graph
 * (src/host/taskgraph.c) for Python.
 *
 * A task is a Python object whose `_run()` method is called on a worker
 * thread holding the GIL only for that call; it returns True on success.
 * The TaskGraph keeps a reference to every submitted object until it is
 * itself destroyed, which first waits for its running tasks.  Tasks refer
 * back to their graph (a Deferred's scope holds it), so the type takes part
 * in garbage collection: a graph with nothing queued or running lets its
 * tasks go, which breaks the cycle (it leaked every orchestration call).
 * Waiting releases the GIL, so workers can call Python meanwhile, and the
 * waiting thread may run queued tasks itself (they take the GIL again). */
#include "xcs_py.h"
#include "xcs_host.h"

typedef struct XcsTaskGraph {
    PyObject_HEAD
    xcs_taskgraph *g; /* owned */
    PyObject *tasks;  /* list: every submitted object, alive as long as the graph */
} XcsTaskGraph;

/* Workers keep the GIL across a run of tasks (xcs_task_hooks): a zero-latency
 * task then costs no GIL hand-off and no thread switch, and each worker
 * thread has one Python thread state for its whole life instead of one per
 * task. */
static _Thread_local PyThreadState *worker_ts;

static void py_enter(void) {
    if (_Py_IsFinalizing()) return;
    if (worker_ts) {
        PyEval_RestoreThread(worker_ts);
        return;
    }
    PyGILState_Ensure(); /* this thread's state, kept until the thread ends */
    worker_ts = PyThreadState_Get();
}

static void py_leave(void) {
    if (worker_ts && PyGILState_Check()) PyEval_SaveThread();
}

static void py_thread_exit(void) {
    if (!worker_ts || _Py_IsFinalizing()) return;
    PyEval_RestoreThread(worker_ts);
    PyThreadState_Clear(worker_ts);
    PyThreadState_DeleteCurrent();
    worker_ts = NULL;
}

static const xcs_task_hooks py_hooks = {py_enter, py_leave, py_thread_exit};

/* Runs obj._run() with the GIL (a worker holds it already; a caller that
 * runs a task while waiting takes it here); 0 when it returned True. */
static int py_task_run(void *arg) {
    if (Py_IsInitialized() == 0 || _Py_IsFinalizing()) return 1;
    bool held = PyGILState_Check();
    PyGILState_STATE gs = held ? PyGILState_LOCKED : PyGILState_Ensure();
    PyObject *r = PyObject_CallMethod((PyObject *)arg, "_run", NULL);
    int rc = 1;
    if (r) {
        rc = PyObject_IsTrue(r) == 1 ? 0 : 1;
        Py_DECREF(r);
    } else {
        PyErr_WriteUnraisable((PyObject *)arg); /* _run() catches everything; this is a bug if it happens */
    }
    if (!held) PyGILState_Release(gs);
    return rc;
}

static PyObject *tg_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *names[] = {"max_workers", NULL};
    int max_workers = 32;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|i:TaskGraph", names, &max_workers)) return NULL;
    XcsTaskGraph *self = (XcsTaskGraph *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    if (!(self->tasks = PyList_New(0))) {
        Py_DECREF(self);
        return NULL;
    }
    xcs_status st = xcs_taskgraph_new_hooked(max_workers, &py_hooks, &self->g);
    if (st) {
        Py_DECREF(self);
        return xcs_py_raise(st);
    }
    return (PyObject *)self;
}

static int tg_traverse(PyObject *o, visitproc visit, void *arg) {
    Py_VISIT(((XcsTaskGraph *)o)->tasks);
    return 0;
}

/* Drops the tasks only when none is queued or running: the C graph reads a
 * task object until it has finished (a graph still working is reachable from
 * the worker that runs its task anyway). */
static int tg_clear(PyObject *o) {
    XcsTaskGraph *self = (XcsTaskGraph *)o;
    if (!self->g || xcs_taskgraph_active(self->g) == 0) Py_CLEAR(self->tasks);
    return 0;
}

static void tg_dealloc(PyObject *o) {
    XcsTaskGraph *self = (XcsTaskGraph *)o;
    PyObject_GC_UnTrack(o);
    if (self->g) {
        xcs_taskgraph *g = self->g;
        self->g = NULL;
        Py_BEGIN_ALLOW_THREADS
        xcs_taskgraph_free(g); /* cancels what has not started, waits for running tasks */
        Py_END_ALLOW_THREADS
    }
    Py_CLEAR(self->tasks); /* only now: no worker can still hold one */
    Py_TYPE(o)->tp_free(o);
}

/* A task id from Python: -1 (no task) where int32 cannot hold it, so a huge
 * id is refused as unknown rather than truncated onto task 0. */
static int task_id(PyObject *o, int32_t *id) {
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
    }
    *id = v >= 0 && v <= INT32_MAX ? (int32_t)v : -1;
    return 0;
}

/* submit(task, deps=()) -> int id */
static PyObject *tg_submit(PyObject *o, PyObject *args) {
    XcsTaskGraph *self = (XcsTaskGraph *)o;
    PyObject *task, *deps = NULL;
    if (!PyArg_ParseTuple(args, "O|O:submit", &task, &deps)) return NULL;
    Py_ssize_t n = 0;
    int32_t small[16], *ids = small;
    PyObject *fast = NULL;
    if (deps && deps != Py_None) {
        fast = PySequence_Fast(deps, "TaskGraph.submit: deps must be a sequence of task ids");
        if (!fast) return NULL;
        n = PySequence_Fast_GET_SIZE(fast);
        if (n > 16 && !(ids = PyMem_Malloc((size_t)n * sizeof *ids))) {
            Py_DECREF(fast);
            return PyErr_NoMemory();
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (task_id(PySequence_Fast_GET_ITEM(fast, i), &ids[i])) {
                if (ids != small) PyMem_Free(ids);
                Py_DECREF(fast);
                return NULL;
            }
        }
    }
    int32_t id = -1;
    if (!self->tasks && !(self->tasks = PyList_New(0))) { /* cleared by the collector, then revived */
        if (ids != small) PyMem_Free(ids);
        Py_XDECREF(fast);
        return NULL;
    }
    xcs_status st = PyList_Append(self->tasks, task) ? XCS_ERR_MEMORY : XCS_OK;
    if (st) {
        if (ids != small) PyMem_Free(ids);
        Py_XDECREF(fast);
        return NULL;
    }
    st = xcs_taskgraph_submit(self->g, py_task_run, task, (int)n, ids, &id);
    if (ids != small) PyMem_Free(ids);
    Py_XDECREF(fast);
    if (st) return xcs_py_raise(st);
    return PyLong_FromLong(id);
}

/* wait(id=-1, timeout=-1.0) -> state (int); the GIL is released meanwhile. */
static PyObject *tg_wait(PyObject *o, PyObject *args) {
    XcsTaskGraph *self = (XcsTaskGraph *)o;
    int id = -1;
    double timeout = -1.0;
    if (!PyArg_ParseTuple(args, "|id:wait", &id, &timeout)) return NULL;
    xcs_task_state s;
    Py_BEGIN_ALLOW_THREADS
    s = xcs_taskgraph_wait(self->g, id, timeout);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong((long)s);
}

static PyObject *tg_state(PyObject *o, PyObject *arg) {
    int32_t id;
    if (task_id(arg, &id)) return NULL;
    return PyLong_FromLong((long)xcs_taskgraph_state(((XcsTaskGraph *)o)->g, id));
}

static PyObject *tg_cancel(PyObject *o, PyObject *unused) {
    return PyLong_FromLong(xcs_taskgraph_cancel(((XcsTaskGraph *)o)->g));
}

static PyObject *tg_level(PyObject *o, PyObject *arg) {
    int32_t id;
    if (task_id(arg, &id)) return NULL;
    return PyLong_FromLong(xcs_taskgraph_level(((XcsTaskGraph *)o)->g, id));
}

static PyObject *tg_deps(PyObject *o, PyObject *arg) {
    int32_t id;
    if (task_id(arg, &id)) return NULL;
    xcs_taskgraph *g = ((XcsTaskGraph *)o)->g;
    int n = xcs_taskgraph_deps(g, id, NULL, 0);
    int32_t small[16], *d = n > 16 ? PyMem_Malloc((size_t)n * sizeof *d) : small;
    if (!d) return PyErr_NoMemory();
    n = xcs_taskgraph_deps(g, id, d, n);
    PyObject *t = PyTuple_New(n);
    for (int i = 0; t && i < n; i++) {
        PyObject *v = PyLong_FromLong(d[i]);
        if (!v) Py_CLEAR(t);
        else PyTuple_SET_ITEM(t, i, v);
    }
    if (d != small) PyMem_Free(d);
    return t;
}

static PyObject *tg_stats(PyObject *o, PyObject *unused) {
    xcs_taskgraph_stats s;
    xcs_taskgraph_stats_get(((XcsTaskGraph *)o)->g, &s);
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:d}", "tasks", s.tasks, "peak_running", s.peak_running, "helped",
                         s.helped, "cancelled", s.cancelled, "wait_s", s.wait_s);
}

static PyObject *tg_active(PyObject *o, void *c) {
    (void)c;
    return PyLong_FromLong(xcs_taskgraph_active(((XcsTaskGraph *)o)->g));
}

static PyMethodDef tg_methods[] = {
    {"submit", tg_submit, METH_VARARGS,
     "submit(task, deps=()) -> id: task._run() runs on a worker once the tasks `deps` are done."},
    {"wait", tg_wait, METH_VARARGS,
     "wait(id=-1, timeout=-1.0) -> state: until task id (-1: every task) finished or timeout seconds "
     "(< 0: none) passed; runs the graph's queued tasks meanwhile."},
    {"state", tg_state, METH_O, "state(id) -> 0 pending, 1 ready, 2 running, 3 done, 4 failed, 5 cancelled."},
    {"cancel", tg_cancel, METH_NOARGS, "cancel() -> number of tasks cancelled (those not started)."},
    {"level", tg_level, METH_O, "level(id) -> dependency level (0: no dependencies)."},
    {"deps", tg_deps, METH_O, "deps(id) -> tuple of the ids task id depends on."},
    {"stats", tg_stats, METH_NOARGS, "stats() -> {tasks, peak_running, helped, cancelled, wait_s}."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef tg_getset[] = {
    {"active", tg_active, NULL, "Tasks queued or running.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject XcsTaskGraph_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ember.xcs._xcs.TaskGraph",
    .tp_doc = "TaskGraph(max_workers=32): the host task graph of one jitted call (orchestration tasks with "
              "dependencies on a shared pool of worker threads).",
    .tp_basicsize = sizeof(XcsTaskGraph),
    .tp_dealloc = tg_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = tg_traverse,
    .tp_clear = tg_clear,
    .tp_free = PyObject_GC_Del,
    .tp_methods = tg_methods,
    .tp_getset = tg_getset,
    .tp_new = tg_new,
};

static PyObject *py_pool_threads(PyObject *m, PyObject *unused) {
    (void)m;
    return PyLong_FromLong(xcs_taskpool_threads());
}

PyMethodDef xcs_py_taskgraph_methods[] = {
    {"_pool_threads", py_pool_threads, METH_NOARGS, "_pool_threads() -> worker threads alive in the task pool."},
    {NULL, NULL, 0, NULL},
};
