/* names.h — a string-keyed hash map for the frontend's symbol tables, so
 * resolving names stays O(1) however many statements a file has.  Keys are
 * borrowed (they must outlive the map). */
#ifndef KF_NAMES_H
#define KF_NAMES_H

#include <stddef.h>

typedef struct {
    const char *key;
    int value;       /* value id */
    int line, col;   /* where the name was defined */
} kf_name_entry;

typedef struct {
    kf_name_entry *slots;
    size_t cap, count;
} kf_names;

void kf_names_init(kf_names *m);
void kf_names_free(kf_names *m);
/* NULL if absent. */
const kf_name_entry *kf_names_get(const kf_names *m, const char *key);
/* Inserts or overwrites. */
void kf_names_put(kf_names *m, const char *key, int value, int line, int col);
/* Nearest key by edit distance (for "did you mean"), or NULL.  Linear: only
 * called on the error path. */
const char *kf_names_nearest(const kf_names *m, const char *key);

#endif
