/* ir.h — kiln's intermediate representation.
 *
 * A kn_graph is a list of values (typed tensors) and a list of nodes (op
 * applications) in topological order: a node only reads values produced by
 * earlier nodes, graph inputs, parameters or constants.  Shapes are static
 * except for dimension 0, which may be the symbolic batch size N
 * (KN_DIM_N).  Row-major layout with the batch outermost means a tensor
 * planned for N rows holds any n <= N rows at the same address, which the
 * memory planner and the generated code rely on.
 *
 * The IR knows nothing of source syntax, passes or code generation.
 */
#ifndef KN_IR_H
#define KN_IR_H

#include "kn_util.h"

#define KN_MAX_RANK 6
#define KN_DIM_N (-1) /* the symbolic batch dimension, only ever in d[0] */
#define KN_MAX_OUTPUTS 4

typedef enum { KN_F32 = 0, KN_I64 = 1 } kn_dtype;

typedef struct {
    int rank;
    int64_t d[KN_MAX_RANK];
} kn_shape;

typedef enum {
    KN_VAL_INPUT,  /* graph input fed by the runtime (x) */
    KN_VAL_LABEL,  /* graph input that is a training target (y) */
    KN_VAL_PARAM,  /* parameter: trainable or frozen (see value.trainable) */
    KN_VAL_BUFFER, /* non-gradient state saved in checkpoints (running_mean) */
    KN_VAL_CONST,  /* constant tensor with data embedded in the IR */
    KN_VAL_STATE,  /* optimizer state (Adam moments...): in the weight blob, saved as optim.*, not needed for inference */
    KN_VAL_NODE    /* intermediate produced by a node */
} kn_val_kind;

/* How the runtime initialises a parameter/buffer before training. */
typedef enum {
    KN_INIT_ZEROS = 0,
    KN_INIT_ONES,
    KN_INIT_KAIMING_UNIFORM, /* PyTorch's default for Linear/Conv weights: a=sqrt(5) => bound 1/sqrt(fan_in) */
    KN_INIT_BIAS_UNIFORM,    /* PyTorch's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    KN_INIT_XAVIER_UNIFORM,
    KN_INIT_XAVIER_NORMAL,
    KN_INIT_KAIMING_NORMAL,  /* fan_in, gain sqrt(2) */
    KN_INIT_DATA             /* value->data holds the initial values (ONNX initializer) */
} kn_init_kind;

typedef enum { KN_MODE_EVAL = 0, KN_MODE_TRAIN = 1 } kn_mode;

typedef struct {
    int id;
    char *name;
    kn_dtype dtype;
    kn_shape shape;
    bool shape_known;
    kn_val_kind kind;
    int producer;        /* node id for KN_VAL_NODE, else -1 */
    bool trainable;      /* KN_VAL_PARAM only */
    double lr_scale;     /* trainable params: the optimizer's lr times this (1; fine-tuned backbones less) */
    kn_init_kind init;
    int64_t fan_in, fan_out;
    void *data;          /* KN_VAL_CONST / KN_INIT_DATA: numel elements of dtype */
    bool dead;           /* removed by a pass (its producer is gone); later stages skip it */
} kn_value;

typedef enum {
    KN_ATTR_INT,
    KN_ATTR_FLOAT,
    KN_ATTR_INTS,
    KN_ATTR_FLOATS,
    KN_ATTR_STRING,
    KN_ATTR_BOOL
} kn_attr_kind;

typedef struct {
    char *name;
    kn_attr_kind kind;
    int64_t i;       /* INT, BOOL */
    double f;        /* FLOAT */
    int n;           /* INTS/FLOATS length */
    int64_t *ints;
    double *floats;
    char *s;         /* STRING */
} kn_attr;

/* Where a node came from, for diagnostics: a model-file position or an
 * ONNX node name. */
typedef struct {
    const char *file; /* owned by the graph (interned), may be NULL */
    int line, col;
} kn_loc;

typedef struct {
    int id;
    int op;          /* kn_op_id, see ir/ops/op.h */
    char *name;
    int n_in;
    int *in;         /* value ids */
    int n_out;
    int out[KN_MAX_OUTPUTS];
    int n_attr;
    kn_attr *attrs;
    kn_loc loc;
} kn_node;

/* Model-level settings from the model file's data/train blocks. */
typedef struct {
    char *data_kind;        /* "fashion_mnist", "mnist", "image_folder", "imagenet", "" */
    char *data_path;        /* dataset folder, relative to the data root ("clothing-small"), or "" */
    char *labels;           /* class-name file (one per line), relative to the data root, or "" */
    int resize, crop;       /* images: shorter side to `resize`, center crop `crop` (0: none) */
    int n_normalize;
    double normalize[8];    /* mean, std pairs (per channel) */
    char *optimizer;        /* "adam", "sgd", ... */
    int n_opt_attr;
    kn_attr *opt_attrs;     /* lr, momentum, betas, weight_decay, ... */
    int batch;
    int epochs;
    bool shuffle;
    int64_t seed;
} kn_model_meta;

typedef struct kn_graph {
    char *name;
    kn_mode mode;

    int n_values, cap_values;
    kn_value **values;      /* indexed by id */
    int n_nodes, cap_nodes;
    kn_node **nodes;        /* topological order; indexed by position == id */

    int n_outputs;
    int outputs[16];        /* value ids the model exposes (logits ...) */
    int loss;               /* value id of the training loss or -1 */

    kn_model_meta meta;

    int n_files;
    char **files;           /* interned source file names for kn_loc */
} kn_graph;

/* ---- the train block's vocabulary (ir/optimizers.c) ---- */
extern const char *const kn_optimizer_names[];   /* NULL-terminated: sgd, adam, adamw */
extern const char *const kn_optimizer_options[]; /* NULL-terminated: lr, momentum, ... */
bool kn_optimizer_known(const char *name);
bool kn_optimizer_option_known(const char *name);

/* ---- construction ---- */
kn_graph *kn_graph_new(const char *name);
void kn_graph_free(kn_graph *g);
kn_graph *kn_graph_clone(const kn_graph *g);
const char *kn_graph_intern_file(kn_graph *g, const char *file);

/* Adds a value; name is copied.  Returns its id. */
int kn_graph_add_value(kn_graph *g, const char *name, kn_val_kind kind,
                       kn_dtype dtype, const kn_shape *shape /* may be NULL */);
/* Adds a node with `n_in` inputs and `n_out` fresh output values named
 * `name` (first output) or `name.1`, `name.2` ...  Returns the node. */
kn_node *kn_graph_add_node(kn_graph *g, int op, const char *name,
                           const int *in, int n_in, int n_out);
/* Turns node output `vid` into a graph input: its producer is removed (it
 * must have no other output).  Nodes feeding only that producer become dead
 * for the next DCE.  Returns KN_ERR when vid is not a single node output. */
kn_status kn_graph_make_input(kn_graph *g, int vid, kn_diag *d);
/* Moves node `from` to position `to`, shifting the nodes between and
 * renumbering their ids and their outputs' producers; keeping the order
 * topological is the caller's business. */
void kn_graph_move_node(kn_graph *g, int from, int to);
/* Appends an input (e.g. a parameter created by the op) to a node. */
void kn_node_append_input(kn_node *n, int value_id);
/* Frees a node that a pass has removed from g->nodes. */
void kn_node_free(kn_node *n);
/* Prefixes the message already in `d` with the node's source location
 * ("file:line:col: error: "), when it has one.  Returns KN_ERR. */
kn_status kn_diag_locate(kn_diag *d, const kn_node *n);

kn_value *kn_graph_value(const kn_graph *g, int id);
kn_node *kn_graph_node(const kn_graph *g, int id);
int kn_graph_find_value(const kn_graph *g, const char *name); /* -1 if none */
/* Is value `vid` a graph output or the loss? */
bool kn_graph_is_output(const kn_graph *g, int vid);
/* The only node reading value `vid`, or NULL when none or several do or it
 * is a graph output (fusion passes may rewrite a value only its one reader
 * sees). */
kn_node *kn_graph_sole_reader(const kn_graph *g, int vid);
/* The node computing value `vid`, or NULL for inputs, parameters, constants. */
kn_node *kn_graph_producer(const kn_graph *g, int vid);
/* Values of a kind, in id order; returns count, fills ids (may be NULL). */
int kn_graph_values_of_kind(const kn_graph *g, kn_val_kind kind, int *ids, int cap);

/* ---- attributes ---- */
kn_attr *kn_node_attr(const kn_node *n, const char *name); /* NULL if absent */
int64_t kn_node_attr_i(const kn_node *n, const char *name, int64_t dflt);
double kn_node_attr_f(const kn_node *n, const char *name, double dflt);
const char *kn_node_attr_s(const kn_node *n, const char *name, const char *dflt);
void kn_node_set_attr_i(kn_node *n, const char *name, int64_t v);
void kn_node_set_attr_f(kn_node *n, const char *name, double v);
void kn_node_set_attr_b(kn_node *n, const char *name, bool v);
void kn_node_set_attr_s(kn_node *n, const char *name, const char *v);
void kn_node_set_attr_ints(kn_node *n, const char *name, const int64_t *v, int count);
void kn_node_set_attr_floats(kn_node *n, const char *name, const double *v, int count);
void kn_attr_copy(kn_attr *dst, const kn_attr *src);
void kn_attr_free(kn_attr *a);

/* ---- shapes ---- */
bool kn_shape_is_batched(const kn_shape *s);
/* Elements per sample (product of dims after the batch dim, or all dims when
 * not batched).  Returns false on overflow. */
bool kn_shape_numel_per_sample(const kn_shape *s, int64_t *out);
/* Element count with N := n (n ignored when not batched). */
bool kn_shape_numel(const kn_shape *s, int64_t n, int64_t *out);
bool kn_shape_equal(const kn_shape *a, const kn_shape *b);
/* "f32[N,784]" */
void kn_shape_format(kn_dtype dt, const kn_shape *s, char *out, size_t cap);
const char *kn_dtype_name(kn_dtype dt);
size_t kn_dtype_size(kn_dtype dt);
kn_shape kn_shape_make(int rank, const int64_t *d);

/* ---- whole-graph utilities ---- */
/* Checks structural invariants (ids, topological order, known shapes when
 * `need_shapes`).  A failure here is a compiler bug, reported as a diag. */
kn_status kn_graph_verify(const kn_graph *g, bool need_shapes, kn_diag *d);
/* Layer table for `kiln check` (see ir/print.c). */
void kn_graph_print(const kn_graph *g, kn_strbuf *out);

/* Parameter counts: trainable elements, frozen elements, buffer elements. */
void kn_graph_param_counts(const kn_graph *g, int64_t *trainable,
                           int64_t *frozen, int64_t *buffers);

#endif
