/* kn_rt_train_log.h — the training history: one row per epoch, kept in
 * checkpoint metadata (so a resumed run has the whole curve) and written
 * next to `--save CKPT` as CSV and as a small hand-written SVG plot. */
#ifndef KN_RT_TRAIN_LOG_H
#define KN_RT_TRAIN_LOG_H

#include <stddef.h>

typedef struct {
    int epoch;
    double train_loss, train_acc, val_loss, val_acc, seconds, lr;
} kn_train_row;

/* "epoch,train_loss,train_acc,val_loss,val_acc,seconds,lr" then one line
 * per row; written atomically. */
int kn_train_write_csv(const char *path, const kn_train_row *rows, int n, char *err, size_t errcap);
/* Two panels (loss, accuracy) of train and val curves over epochs, with
 * axes, ticks and a legend; written atomically. */
int kn_train_write_svg(const char *path, const char *title, const kn_train_row *rows, int n,
                       char *err, size_t errcap);

/* History as compact JSON ([[epoch,train_loss,...,lr],...]) for checkpoint
 * metadata; malloc'd.  Parsing returns the row count or -1 when malformed
 * (*rows malloc'd, NULL when empty). */
char *kn_train_history_json(const kn_train_row *rows, int n);
int kn_train_history_parse(const char *json, kn_train_row **rows);

#endif
