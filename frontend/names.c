/* names.c — open-addressing hash map from names to value ids (see names.h). */
#include "names.h"

#include "../ir/kn_util.h"

#include <stdlib.h>
#include <string.h>

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void kf_names_init(kf_names *m)
{
    m->cap = 64;
    m->count = 0;
    m->slots = kn_xcalloc(m->cap, sizeof *m->slots);
}

void kf_names_free(kf_names *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

static kf_name_entry *find_slot(kf_name_entry *slots, size_t cap, const char *key)
{
    size_t i = hash(key) & (cap - 1);
    while (slots[i].key && strcmp(slots[i].key, key) != 0) i = (i + 1) & (cap - 1);
    return &slots[i];
}

const kf_name_entry *kf_names_get(const kf_names *m, const char *key)
{
    const kf_name_entry *e = find_slot(m->slots, m->cap, key);
    return e->key ? e : NULL;
}

void kf_names_put(kf_names *m, const char *key, int value, int line, int col)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap * 2;
        kf_name_entry *slots = kn_xcalloc(cap, sizeof *slots);
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key) *find_slot(slots, cap, m->slots[i].key) = m->slots[i];
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    kf_name_entry *e = find_slot(m->slots, m->cap, key);
    if (!e->key) m->count++;
    e->key = key;
    e->value = value;
    e->line = line;
    e->col = col;
}

const char *kf_names_nearest(const kf_names *m, const char *key)
{
    size_t len = strlen(key);
    int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    const char *best = NULL;
    int best_d = limit + 1;
    for (size_t i = 0; i < m->cap; i++) {
        const char *k = m->slots[i].key;
        if (!k) continue;
        int dist = kn_edit_distance(key, k);
        /* ties: prefer the lexicographically smaller, for stable hints */
        if (dist < best_d || (dist == best_d && best && strcmp(k, best) < 0)) {
            best_d = dist;
            best = k;
        }
    }
    return best;
}
