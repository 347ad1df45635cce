/* blocks.c — see blocks.h.  Live blocks sit in a dense array (so a scan
 * and the runtime's teardown walk them) indexed by an open-addressing table
 * over their bases (linear probing, deletion by backward shift), so the
 * lookup before every kernel operand is O(1) however many blocks are live. */
#include "blocks.h"

#include <stdlib.h>

typedef struct block {
    uint64_t base;
    size_t size;
    int writer;          /* stream of the last write; -1 none since it was handed out */
    xcs_cu_smask readers; /* streams that read it since that write */
    xcs_cu_smask seen;    /* streams already ordered after that write */
} block;

struct xcs_cu_blocks {
    block *b;
    int n, cap;
    int *slot; /* 2 * cap entries: an index into b, or -1 */
};

static xcs_cu_smask bit(int s) { return (xcs_cu_smask)1u << s; }

static unsigned home(const xcs_cu_blocks *t, uint64_t base) {
    return (unsigned)((base >> 8) * 0x9E3779B97F4A7C15ull >> 32) & (unsigned)(2 * t->cap - 1);
}

xcs_cu_blocks *xcs_cu_blocks_new(void) { return calloc(1, sizeof(xcs_cu_blocks)); }

void xcs_cu_blocks_free(xcs_cu_blocks *t) {
    if (!t) return;
    free(t->b);
    free(t->slot);
    free(t);
}

int xcs_cu_blocks_count(const xcs_cu_blocks *t) { return t->n; }
uint64_t xcs_cu_blocks_base(const xcs_cu_blocks *t, int i) { return t->b[i].base; }

/* The slot holding base, or -1. */
static int find_slot(const xcs_cu_blocks *t, uint64_t base) {
    if (!t->cap) return -1;
    unsigned mask = (unsigned)(2 * t->cap - 1);
    for (unsigned i = home(t, base);; i = (i + 1) & mask) {
        if (t->slot[i] < 0) return -1;
        if (t->b[t->slot[i]].base == base) return (int)i;
    }
}

static void place(xcs_cu_blocks *t, int k) {
    unsigned mask = (unsigned)(2 * t->cap - 1);
    unsigned i = home(t, t->b[k].base);
    while (t->slot[i] >= 0) i = (i + 1) & mask;
    t->slot[i] = k;
}

static bool grow(xcs_cu_blocks *t) {
    int cap = t->cap ? 2 * t->cap : 64;
    block *b = realloc(t->b, (size_t)cap * sizeof *b);
    if (!b) return false;
    t->b = b;
    int *slot = malloc((size_t)cap * 2 * sizeof *slot);
    if (!slot) return false;
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
    for (int i = 0; i < 2 * cap; i++) slot[i] = -1;
    for (int k = 0; k < t->n; k++) place(t, k);
    return true;
}

bool xcs_cu_blocks_add(xcs_cu_blocks *t, uint64_t base, size_t size, int s, xcs_cu_smask users, xcs_cu_smask *wait) {
    if (t->n == t->cap && !grow(t)) return false;
    /* handing it out is a write by s after everything its users queued */
    t->b[t->n] = (block){base, size, s, 0, bit(s)};
    place(t, t->n++);
    *wait = users & ~bit(s);
    return true;
}

/* Empties slot i, shifting later entries of its probe run back. */
static void unslot(xcs_cu_blocks *t, unsigned i) {
    unsigned mask = (unsigned)(2 * t->cap - 1);
    t->slot[i] = -1;
    for (unsigned j = (i + 1) & mask; t->slot[j] >= 0; j = (j + 1) & mask) {
        unsigned h = home(t, t->b[t->slot[j]].base);
        /* the entry at j may move to i when its home is not in (i, j] (cyclically) */
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (stays) continue;
        t->slot[i] = t->slot[j];
        t->slot[j] = -1;
        i = j;
    }
}

bool xcs_cu_blocks_remove(xcs_cu_blocks *t, uint64_t base, size_t *size, xcs_cu_smask *users) {
    int i = find_slot(t, base);
    if (i < 0) return false;
    int k = t->slot[i];
    block *e = &t->b[k];
    *size = e->size;
    *users = e->readers | (e->writer >= 0 ? bit(e->writer) : 0);
    unslot(t, (unsigned)i);
    int last = --t->n;
    if (k != last) { /* the last entry fills the hole */
        t->b[k] = t->b[last];
        t->slot[find_slot(t, t->b[k].base)] = k;
    }
    return true;
}

static block *holding(xcs_cu_blocks *t, uint64_t addr, bool exact) {
    int i = find_slot(t, addr);
    if (i >= 0) return &t->b[t->slot[i]];
    if (exact) return NULL;
    for (int k = 0; k < t->n; k++)
        if (addr >= t->b[k].base && addr - t->b[k].base < t->b[k].size) return &t->b[k];
    return NULL;
}

xcs_cu_smask xcs_cu_blocks_access(xcs_cu_blocks *t, uint64_t addr, bool exact, int s, bool write) {
    block *e = holding(t, addr, exact);
    if (!e) return 0;
    xcs_cu_smask me = bit(s), wait;
    if (write) {
        wait = (e->readers | (e->writer >= 0 ? bit(e->writer) : 0)) & ~me;
        e->writer = s;
        e->readers = 0;
        e->seen = me;
    } else {
        wait = e->writer >= 0 && !(e->seen & me) ? bit(e->writer) : 0;
        e->seen |= me;
        if (e->writer != s) e->readers |= me;
    }
    return wait;
}
