/* test_cuda_blocks.c — the stream order of the CUDA allocator's block table
 * (src/cuda/blocks.h), without a GPU.
 *
 * A simulated device: random programs of reads, writes, frees and
 * allocations (a cache handing freed blocks to other streams) are issued
 * from several streams in one host order, as threads would; the waits the
 * table asks for become edges, and vector clocks give the happens-before
 * order every schedule the hardware may pick must respect.  The check is the
 * definition of correctness: every two accesses to the same memory from
 * different streams, at least one a write (handing a block out counts as
 * one), happen in host order.  A table that forgot a wait fails it; the
 * efficiency tests make sure it does not get there by waiting for
 * everything: one stream never waits, readers of a shared block wait once
 * each, and never for each other. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blocks.h"
#include "check.h"
#include "testutil.h"

enum { S = 6, MAXOPS = 3000, NBLK = 12 };

static test_rng R;
static uint64_t rng_u64(void) { return test_rnd(&R); }

typedef struct op {
    int stream, addr;
    bool write;
    int seq;          /* its number on its stream, from 1 */
    int clock[S];     /* ops of each stream that happen before it (inclusive) */
} op;

typedef struct sim {
    xcs_cu_blocks *t;
    int clock[S][S]; /* per stream: what its next op will follow */
    op ops[MAXOPS];
    int n;
    long waits;
} sim;

static void apply_wait(sim *m, int s, xcs_cu_smask mask) {
    for (int t = 0; t < S; t++) {
        if (!(mask >> t & 1u)) continue;
        CHECK(t != s); /* never asked to wait for itself */
        m->waits++;
        for (int k = 0; k < S; k++)
            if (m->clock[t][k] > m->clock[s][k]) m->clock[s][k] = m->clock[t][k];
    }
}

static void issue(sim *m, int s, int addr, bool write) {
    if (m->n == MAXOPS) return;
    op *o = &m->ops[m->n++];
    o->stream = s;
    o->addr = addr;
    o->write = write;
    o->seq = ++m->clock[s][s];
    memcpy(o->clock, m->clock[s], sizeof o->clock);
}

/* Stream s touches the block at addr (addr + off: an inner address). */
static void access(sim *m, int s, int addr, int off, bool write) {
    apply_wait(m, s, xcs_cu_blocks_access(m->t, (uint64_t)(addr + off), off == 0, s, write));
    issue(m, s, addr, write);
}

static void hand_out(sim *m, int s, int addr, xcs_cu_smask users) {
    xcs_cu_smask wait = 0;
    CHECK(xcs_cu_blocks_add(m->t, (uint64_t)addr, 256, s, users, &wait));
    apply_wait(m, s, wait);
    issue(m, s, addr, true);
}

/* Every conflicting pair on different streams happens in host order. */
static int violations(const sim *m) {
    int bad = 0;
    for (int b = 0; b < m->n; b++)
        for (int a = 0; a < b; a++) {
            const op *x = &m->ops[a], *y = &m->ops[b];
            if (x->addr != y->addr || x->stream == y->stream || !(x->write || y->write)) continue;
            if (y->clock[x->stream] < x->seq) bad++;
        }
    return bad;
}

static void sim_init(sim *m) {
    memset(m, 0, sizeof *m);
    m->t = xcs_cu_blocks_new();
    CHECK(m->t != NULL);
}

/* Random programs over a few streams and blocks with a cache: no schedule
 * the waits allow reorders a conflict. */
static void test_random_programs_are_ordered(void) {
    static sim m;
    for (int round = 0; round < 40; round++) {
        sim_init(&m);
        int n_streams = 2 + (int)(rng_u64() % (S - 1));
        bool live[NBLK] = {0};
        xcs_cu_smask cached_users[NBLK];
        bool cached[NBLK] = {0};
        for (int b = 0; b < NBLK; b++) { /* all start live, fresh from the driver */
            hand_out(&m, (int)(rng_u64() % (uint64_t)n_streams), 1000 * (b + 1), 0);
            live[b] = true;
        }
        for (int step = 0; step < 2000; step++) {
            int s = (int)(rng_u64() % (uint64_t)n_streams), b = (int)(rng_u64() % NBLK), addr = 1000 * (b + 1);
            int r = (int)(rng_u64() % 10);
            if (live[b] && r < 4) {
                access(&m, s, addr, rng_u64() % 4 == 0 ? 17 : 0, false);
            } else if (live[b] && r < 7) {
                access(&m, s, addr, rng_u64() % 4 == 0 ? 33 : 0, true);
            } else if (live[b]) { /* freed (from any thread) into the cache */
                size_t size = 0;
                CHECK(xcs_cu_blocks_remove(m.t, (uint64_t)addr, &size, &cached_users[b]));
                CHECK_EQ_I(size, 256);
                live[b] = false;
                cached[b] = true;
            } else if (cached[b]) { /* handed out again, to any stream */
                hand_out(&m, s, addr, cached_users[b]);
                live[b] = true;
                cached[b] = false;
            }
        }
        int bad = violations(&m);
        CHECK_EQ_I(bad, 0);
        xcs_cu_blocks_free(m.t);
    }
}

/* The same programs with the waits dropped do reorder conflicts: the check
 * above can fail. */
static void test_check_catches_missing_waits(void) {
    static sim m;
    sim_init(&m);
    issue(&m, 0, 1000, true); /* written on stream 0 */
    issue(&m, 1, 1000, false); /* read on stream 1 with no wait */
    CHECK(violations(&m) > 0);
    xcs_cu_blocks_free(m.t);
}

static void test_one_stream_never_waits(void) {
    static sim m;
    sim_init(&m);
    for (int b = 0; b < NBLK; b++) hand_out(&m, 3, 1000 * (b + 1), 0);
    for (int i = 0; i < 1000; i++) access(&m, 3, 1000 * (1 + (int)(rng_u64() % NBLK)), 0, rng_u64() % 2 == 0);
    size_t size = 0;
    xcs_cu_smask users = 0;
    CHECK(xcs_cu_blocks_remove(m.t, 1000, &size, &users));
    CHECK_EQ_I(users, 1u << 3);
    hand_out(&m, 3, 1000, users); /* reused by the stream that freed it: no wait */
    CHECK_EQ_I(m.waits, 0);
    CHECK_EQ_I(violations(&m), 0);
    xcs_cu_blocks_free(m.t);
}

/* Weights written once, then read by five streams many times: each reader
 * waits for the writer once, and for no other reader. */
static void test_shared_reads_wait_once(void) {
    static sim m;
    sim_init(&m);
    hand_out(&m, 0, 1000, 0);
    access(&m, 0, 1000, 0, true);
    for (int i = 0; i < 500; i++) access(&m, 1 + i % 5, 1000, 0, false);
    CHECK_EQ_I(m.waits, 5);
    /* a new write by stream 0 waits for the five readers */
    long before = m.waits;
    access(&m, 0, 1000, 0, true);
    CHECK_EQ_I(m.waits - before, 5);
    CHECK_EQ_I(violations(&m), 0);
    xcs_cu_blocks_free(m.t);
}

/* Memory the table does not know asks for nothing; removal of an unknown
 * block fails; the index survives many adds and removes (growth, deletion
 * by backward shift) with every live block still found. */
static void test_table(void) {
    xcs_cu_blocks *t = xcs_cu_blocks_new();
    CHECK_EQ_I(xcs_cu_blocks_access(t, 12345, true, 0, true), 0);
    CHECK_EQ_I(xcs_cu_blocks_access(t, 12345, false, 0, true), 0);
    size_t size = 0;
    xcs_cu_smask users = 0, wait = 0;
    CHECK(!xcs_cu_blocks_remove(t, 12345, &size, &users));
    enum { N = 5000 };
    static bool in[N];
    memset(in, 0, sizeof in);
    int live = 0;
    for (int i = 0; i < 40000; i++) {
        int k = (int)(rng_u64() % N);
        uint64_t base = (uint64_t)k * 512 + 0x7f0000000000ull;
        if (in[k]) {
            CHECK(xcs_cu_blocks_remove(t, base, &size, &users));
            CHECK_EQ_I(size, 512);
            CHECK_EQ_I(users, 1u << (k % 7)); /* handed out to stream k % 7, touched by it alone */
            in[k] = false;
            live--;
        } else {
            CHECK(xcs_cu_blocks_add(t, base, 512, k % 7, 0, &wait));
            CHECK_EQ_I(wait, 0);
            in[k] = true;
            live++;
        }
    }
    CHECK_EQ_I(xcs_cu_blocks_count(t), live);
    int found = 0;
    for (int k = 0; k < N; k++) {
        uint64_t base = (uint64_t)k * 512 + 0x7f0000000000ull;
        /* a read from another stream of a live block waits for its writer */
        xcs_cu_smask w = xcs_cu_blocks_access(t, base + 100, false, (k % 7) + 1, false);
        if (in[k]) found += w == 1u << (k % 7);
        else CHECK_EQ_I(w, 0);
    }
    CHECK_EQ_I(found, live);
    xcs_cu_blocks_free(t);
}

int main(void) {
    R.state = test_run_seed(); /* fresh programs each run; the seed reproduces one */
    RUN(test_check_catches_missing_waits);
    RUN(test_random_programs_are_ordered);
    RUN(test_one_stream_never_waits);
    RUN(test_shared_reads_wait_once);
    RUN(test_table);
    return check_report();
}
