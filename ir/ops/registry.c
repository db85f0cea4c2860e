/* registry.c — the one table of operators, indexed by kn_op_id. */
#include "op.h"

#include <assert.h>
#include <string.h>

extern const kn_op_def kn_op_def_linear, kn_op_def_matmul;
extern const kn_op_def kn_op_def_add, kn_op_def_sub, kn_op_def_mul, kn_op_def_div;
extern const kn_op_def kn_op_def_relu, kn_op_def_leaky_relu, kn_op_def_gelu,
    kn_op_def_sigmoid, kn_op_def_tanh;
extern const kn_op_def kn_op_def_softmax, kn_op_def_log_softmax;
extern const kn_op_def kn_op_def_batchnorm, kn_op_def_dropout;
extern const kn_op_def kn_op_def_flatten, kn_op_def_reshape;
extern const kn_op_def kn_op_def_sum, kn_op_def_mean, kn_op_def_argmax;
extern const kn_op_def kn_op_def_cross_entropy, kn_op_def_mse;
extern const kn_op_def kn_op_def_accumulate_grad;

extern const kn_op_def kn_op_def_linear_grad_weight, kn_op_def_matmul_grad;
extern const kn_op_def kn_op_def_sum_to, kn_op_def_reduce_grad;
extern const kn_op_def kn_op_def_relu_grad, kn_op_def_leaky_relu_grad, kn_op_def_gelu_grad,
    kn_op_def_sigmoid_grad, kn_op_def_tanh_grad;
extern const kn_op_def kn_op_def_softmax_grad, kn_op_def_log_softmax_grad;
extern const kn_op_def kn_op_def_batchnorm_grad, kn_op_def_dropout_grad;
extern const kn_op_def kn_op_def_cross_entropy_grad, kn_op_def_mse_grad;
extern const kn_op_def kn_op_def_conv2d, kn_op_def_conv2d_grad_input, kn_op_def_conv2d_grad_weight;
extern const kn_op_def kn_op_def_max_pool2d, kn_op_def_avg_pool2d, kn_op_def_global_avg_pool,
    kn_op_def_max_pool2d_grad, kn_op_def_avg_pool2d_grad;
extern const kn_op_def kn_op_def_sgd_step, kn_op_def_adam_step;
extern const kn_op_def kn_op_def_clip, kn_op_def_clip_grad, kn_op_def_transpose;
extern const kn_op_def kn_op_def_concat, kn_op_def_slice, kn_op_def_pad;
extern const kn_op_def kn_op_def_abs, kn_op_def_neg, kn_op_def_exp, kn_op_def_log, kn_op_def_sqrt, kn_op_def_reciprocal, kn_op_def_floor, kn_op_def_ceil, kn_op_def_round, kn_op_def_sign, kn_op_def_sin, kn_op_def_cos, kn_op_def_tan, kn_op_def_asin, kn_op_def_acos, kn_op_def_atan, kn_op_def_sinh, kn_op_def_cosh, kn_op_def_asinh, kn_op_def_acosh, kn_op_def_atanh, kn_op_def_erf, kn_op_def_softsign, kn_op_def_softplus, kn_op_def_elu, kn_op_def_selu, kn_op_def_celu, kn_op_def_hard_sigmoid, kn_op_def_hard_swish, kn_op_def_thresholded_relu, kn_op_def_shrink, kn_op_def_unary_grad;
extern const kn_op_def kn_op_def_reduce_sum, kn_op_def_reduce_mean, kn_op_def_reduce_max, kn_op_def_reduce_min, kn_op_def_reduce_prod, kn_op_def_reduce_l1, kn_op_def_reduce_l2, kn_op_def_reduce_sum_square, kn_op_def_reduce_log_sum, kn_op_def_reduce_log_sum_exp, kn_op_def_reduce_axes_grad, kn_op_def_argmin;
extern const kn_op_def kn_op_def_nll_loss, kn_op_def_nll_loss_grad;
extern const kn_op_def kn_op_def_max, kn_op_def_min, kn_op_def_pow, kn_op_def_binary_grad;
extern const kn_op_def kn_op_def_trilu, kn_op_def_hardmax;
extern const kn_op_def kn_op_def_inverted_residual, kn_op_def_bn_fold;

static const kn_op_def *const kn_ops[] = {
    [KN_OP_LINEAR] = &kn_op_def_linear,
    [KN_OP_MATMUL] = &kn_op_def_matmul,
    [KN_OP_ADD] = &kn_op_def_add,
    [KN_OP_SUB] = &kn_op_def_sub,
    [KN_OP_MUL] = &kn_op_def_mul,
    [KN_OP_DIV] = &kn_op_def_div,
    [KN_OP_RELU] = &kn_op_def_relu,
    [KN_OP_LEAKY_RELU] = &kn_op_def_leaky_relu,
    [KN_OP_GELU] = &kn_op_def_gelu,
    [KN_OP_SIGMOID] = &kn_op_def_sigmoid,
    [KN_OP_TANH] = &kn_op_def_tanh,
    [KN_OP_SOFTMAX] = &kn_op_def_softmax,
    [KN_OP_LOG_SOFTMAX] = &kn_op_def_log_softmax,
    [KN_OP_BATCHNORM] = &kn_op_def_batchnorm,
    [KN_OP_DROPOUT] = &kn_op_def_dropout,
    [KN_OP_FLATTEN] = &kn_op_def_flatten,
    [KN_OP_RESHAPE] = &kn_op_def_reshape,
    [KN_OP_SUM] = &kn_op_def_sum,
    [KN_OP_MEAN] = &kn_op_def_mean,
    [KN_OP_ARGMAX] = &kn_op_def_argmax,
    [KN_OP_CROSS_ENTROPY] = &kn_op_def_cross_entropy,
    [KN_OP_MSE] = &kn_op_def_mse,
    [KN_OP_ACCUMULATE_GRAD] = &kn_op_def_accumulate_grad,
    [KN_OP_LINEAR_GRAD_WEIGHT] = &kn_op_def_linear_grad_weight,
    [KN_OP_MATMUL_GRAD] = &kn_op_def_matmul_grad,
    [KN_OP_SUM_TO] = &kn_op_def_sum_to,
    [KN_OP_REDUCE_GRAD] = &kn_op_def_reduce_grad,
    [KN_OP_RELU_GRAD] = &kn_op_def_relu_grad,
    [KN_OP_LEAKY_RELU_GRAD] = &kn_op_def_leaky_relu_grad,
    [KN_OP_GELU_GRAD] = &kn_op_def_gelu_grad,
    [KN_OP_SIGMOID_GRAD] = &kn_op_def_sigmoid_grad,
    [KN_OP_TANH_GRAD] = &kn_op_def_tanh_grad,
    [KN_OP_SOFTMAX_GRAD] = &kn_op_def_softmax_grad,
    [KN_OP_LOG_SOFTMAX_GRAD] = &kn_op_def_log_softmax_grad,
    [KN_OP_BATCHNORM_GRAD] = &kn_op_def_batchnorm_grad,
    [KN_OP_DROPOUT_GRAD] = &kn_op_def_dropout_grad,
    [KN_OP_CROSS_ENTROPY_GRAD] = &kn_op_def_cross_entropy_grad,
    [KN_OP_MSE_GRAD] = &kn_op_def_mse_grad,
    [KN_OP_CONV2D] = &kn_op_def_conv2d,
    [KN_OP_CONV2D_GRAD_INPUT] = &kn_op_def_conv2d_grad_input,
    [KN_OP_CONV2D_GRAD_WEIGHT] = &kn_op_def_conv2d_grad_weight,
    [KN_OP_MAX_POOL2D] = &kn_op_def_max_pool2d,
    [KN_OP_AVG_POOL2D] = &kn_op_def_avg_pool2d,
    [KN_OP_GLOBAL_AVG_POOL] = &kn_op_def_global_avg_pool,
    [KN_OP_MAX_POOL2D_GRAD] = &kn_op_def_max_pool2d_grad,
    [KN_OP_AVG_POOL2D_GRAD] = &kn_op_def_avg_pool2d_grad,
    [KN_OP_SGD_STEP] = &kn_op_def_sgd_step,
    [KN_OP_ADAM_STEP] = &kn_op_def_adam_step,
    [KN_OP_CLIP] = &kn_op_def_clip,
    [KN_OP_CLIP_GRAD] = &kn_op_def_clip_grad,
    [KN_OP_TRANSPOSE] = &kn_op_def_transpose,
    [KN_OP_CONCAT] = &kn_op_def_concat,
    [KN_OP_SLICE] = &kn_op_def_slice,
    [KN_OP_PAD] = &kn_op_def_pad,
    [KN_OP_ABS] = &kn_op_def_abs,
    [KN_OP_NEG] = &kn_op_def_neg,
    [KN_OP_EXP] = &kn_op_def_exp,
    [KN_OP_LOG] = &kn_op_def_log,
    [KN_OP_SQRT] = &kn_op_def_sqrt,
    [KN_OP_RECIPROCAL] = &kn_op_def_reciprocal,
    [KN_OP_FLOOR] = &kn_op_def_floor,
    [KN_OP_CEIL] = &kn_op_def_ceil,
    [KN_OP_ROUND] = &kn_op_def_round,
    [KN_OP_SIGN] = &kn_op_def_sign,
    [KN_OP_SIN] = &kn_op_def_sin,
    [KN_OP_COS] = &kn_op_def_cos,
    [KN_OP_TAN] = &kn_op_def_tan,
    [KN_OP_ASIN] = &kn_op_def_asin,
    [KN_OP_ACOS] = &kn_op_def_acos,
    [KN_OP_ATAN] = &kn_op_def_atan,
    [KN_OP_SINH] = &kn_op_def_sinh,
    [KN_OP_COSH] = &kn_op_def_cosh,
    [KN_OP_ASINH] = &kn_op_def_asinh,
    [KN_OP_ACOSH] = &kn_op_def_acosh,
    [KN_OP_ATANH] = &kn_op_def_atanh,
    [KN_OP_ERF] = &kn_op_def_erf,
    [KN_OP_SOFTSIGN] = &kn_op_def_softsign,
    [KN_OP_SOFTPLUS] = &kn_op_def_softplus,
    [KN_OP_ELU] = &kn_op_def_elu,
    [KN_OP_SELU] = &kn_op_def_selu,
    [KN_OP_CELU] = &kn_op_def_celu,
    [KN_OP_HARD_SIGMOID] = &kn_op_def_hard_sigmoid,
    [KN_OP_HARD_SWISH] = &kn_op_def_hard_swish,
    [KN_OP_THRESHOLDED_RELU] = &kn_op_def_thresholded_relu,
    [KN_OP_SHRINK] = &kn_op_def_shrink,
    [KN_OP_UNARY_GRAD] = &kn_op_def_unary_grad,
    [KN_OP_REDUCE_SUM] = &kn_op_def_reduce_sum,
    [KN_OP_REDUCE_MEAN] = &kn_op_def_reduce_mean,
    [KN_OP_REDUCE_MAX] = &kn_op_def_reduce_max,
    [KN_OP_REDUCE_MIN] = &kn_op_def_reduce_min,
    [KN_OP_REDUCE_PROD] = &kn_op_def_reduce_prod,
    [KN_OP_REDUCE_L1] = &kn_op_def_reduce_l1,
    [KN_OP_REDUCE_L2] = &kn_op_def_reduce_l2,
    [KN_OP_REDUCE_SUM_SQUARE] = &kn_op_def_reduce_sum_square,
    [KN_OP_REDUCE_LOG_SUM] = &kn_op_def_reduce_log_sum,
    [KN_OP_REDUCE_LOG_SUM_EXP] = &kn_op_def_reduce_log_sum_exp,
    [KN_OP_REDUCE_AXES_GRAD] = &kn_op_def_reduce_axes_grad,
    [KN_OP_ARGMIN] = &kn_op_def_argmin,
    [KN_OP_NLL_LOSS] = &kn_op_def_nll_loss,
    [KN_OP_NLL_LOSS_GRAD] = &kn_op_def_nll_loss_grad,
    [KN_OP_MAX] = &kn_op_def_max,
    [KN_OP_MIN] = &kn_op_def_min,
    [KN_OP_POW] = &kn_op_def_pow,
    [KN_OP_BINARY_GRAD] = &kn_op_def_binary_grad,
    [KN_OP_TRILU] = &kn_op_def_trilu,
    [KN_OP_HARDMAX] = &kn_op_def_hardmax,
    [KN_OP_INVERTED_RESIDUAL] = &kn_op_def_inverted_residual,
    [KN_OP_BN_FOLD] = &kn_op_def_bn_fold,
};

static_assert(sizeof kn_ops / sizeof kn_ops[0] == KN_OP_COUNT,
              "every kn_op_id needs exactly one entry in the op table");

const kn_op_def *kn_op_get(int op)
{
    if (op < 0 || op >= KN_OP_COUNT) return NULL;
    return kn_ops[op];
}

int kn_op_lookup(const char *name)
{
    for (int i = 0; i < KN_OP_COUNT; i++)
        if (kn_ops[i] && !kn_ops[i]->internal && strcmp(kn_ops[i]->name, name) == 0) return i;
    return -1;
}

int kn_op_lookup_any(const char *name)
{
    for (int i = 0; i < KN_OP_COUNT; i++)
        if (kn_ops[i] && strcmp(kn_ops[i]->name, name) == 0) return i;
    return -1;
}

const char *kn_op_suggest(const char *name)
{
    const char *best = NULL;
    int best_d = 1000;
    for (int i = 0; i < KN_OP_COUNT; i++) {
        if (!kn_ops[i] || kn_ops[i]->internal) continue;
        int dist = kn_edit_distance(name, kn_ops[i]->name);
        if (dist < best_d) {
            best_d = dist;
            best = kn_ops[i]->name;
        }
    }
    /* Allow about one typo per three characters. */
    int limit = (int)strlen(name) / 3 + 1;
    return best_d <= limit ? best : NULL;
}
