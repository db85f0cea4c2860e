/* ast.c — the bump arena behind the AST: one free for a whole file. */
#include "ast.h"

#include <stdlib.h>
#include <string.h>

struct kf_arena_block {
    kf_arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

void *kf_ast_alloc(kf_ast *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    kf_arena_block *b = a->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = kn_xmalloc(sizeof *b + cap);
        b->next = a->arena;
        b->used = 0;
        b->cap = cap;
        a->arena = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

const char *kf_ast_strndup(kf_ast *a, const char *s, size_t n)
{
    char *p = kf_ast_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void kf_ast_free(kf_ast *a)
{
    kf_arena_block *b = a->arena;
    while (b) {
        kf_arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a->stmts);
    memset(a, 0, sizeof *a);
}
