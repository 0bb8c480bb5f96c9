/*
 * plan_internal.h - the inside of a plan, shared by the plan driver
 * (net_plan.c), the kind table (net_layers.c), the layer builders
 * (net_layers_forward.c, net_backward.c, net_resize.c), net_shared.c and
 * their common helpers (plan_util.c). Calls go one way only:
 *
 *   net_plan.c -> net_layers.c -> builder files -> plan_util.c
 *
 * (net_resize.c's backward builder also uses fxi_backward_deliver of
 * net_backward.c); nothing below net_plan.c calls back up.
 */
#ifndef FX_PLAN_INTERNAL_H
#define FX_PLAN_INTERNAL_H

#include "fx_internal.h"

typedef struct {
    dnnl_primitive_t prim; /* NULL for a memset-only step */
    int n_args;
    dnnl_exec_arg_t args[16];
    int uses_scratchpad;
    dnnl_memory_t zero;    /* cleared before the primitive runs (padded sums) */
} fx_step;

/* A parameter array the plan keeps reordered into a primitive's layout. */
typedef struct {
    const float *data;      /* the net's copy (fx_node weight/bias) */
    dnnl_primitive_t prim;  /* the reorder, kept to redo it when the parameters change */
    dnnl_memory_t src, dst;
} fx_param_copy;

struct fx_plan {
    int batch;
    int n_nodes;
    int training;            /* FX_TRAIN_*: keeps every layer's output and builds a backward pass */
    fx_step *steps;          /* forward steps, then (training) backward steps */
    int n_steps, cap_steps;
    int n_forward_steps;
    dnnl_memory_t *node_mem; /* [n_nodes] output of each node (borrowed) */
    dnnl_memory_t *owned;    /* every memory object this plan created */
    int n_owned, cap_owned;
    dnnl_memory_t input;     /* normalized input, NHWC */
    dnnl_memory_t output;    /* caller's buffer, plain layout; handle set per run */
    dnnl_memory_t scratchpad;
    size_t scratch_bytes;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    fx_math_mode math;
    /* training only (NULL otherwise), all [n_nodes]: */
    dnnl_primitive_desc_t *fwd_pd; /* forward primitive of each node, the hint for its backward */
    dnnl_memory_t *workspace;      /* max-pooling workspaces */
    dnnl_memory_t *diff;           /* gradient with respect to each node's output (borrowed) */
    dnnl_memory_t grad_output;     /* caller's gradient of the output; handle set per run */
    dnnl_memory_t grad_input;      /* caller's gradient buffer, NHWC; handle set per run */
    dnnl_memory_t *grad_weight;    /* [n_nodes] conv/dense weight gradients, user layout (owned) */
    dnnl_memory_t *grad_bias;      /* [n_nodes] their bias gradients */
    fx_param_copy *param_copies;   /* reordered parameters, for fx_plan_refresh_parameters */
    int n_param_copies, cap_param_copies;
};

/* ---- helpers of every builder (plan_util.c, the bottom file) ------------- */

/* Make the plan own `mem` (destroyed with the plan; destroyed now on failure). */
fx_status fxi_plan_own(fx_plan *plan, dnnl_memory_t mem);
/* A memory object owned by the plan: with its own buffer, or viewing `handle`. */
fx_status fxi_plan_new_memory(fx_plan *plan, const_dnnl_memory_desc_t md, void *handle, dnnl_memory_t *out);
const_dnnl_memory_desc_t fxi_plan_md_of(const_dnnl_memory_t mem);
const_dnnl_memory_desc_t fxi_plan_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what);
/* Dims of a node's output for this batch: NCHW, or NC for dense outputs; returns their count. */
int fxi_plan_node_dims(const fx_node *node, int batch, dnnl_dims_t dims);
/* Dims of a conv/dense layer's weights as the user gave them, (out, in, kh, kw),
   (groups, out/groups, in/groups, kh, kw) for a grouped conv, or (out, C[, H, W]);
   returns their count. */
int fxi_plan_weight_dims(const fx_net *net, int node, dnnl_dims_t dims);
/* The user layout tag of weights with `nd` dims from fxi_plan_weight_dims:
   goihw (grouped conv), oihw, or ab (dense). */
dnnl_format_tag_t fxi_plan_weight_tag(int nd);
/* Strides, dilates (oneDNN's convention: 0 = dense), and begin/end padding
   of a conv or pooling node, for its primitive descriptors. */
void fxi_plan_window(const fx_node *n, dnnl_dims_t strides, dnnl_dims_t dilates, dnnl_dims_t pad_l,
                     dnnl_dims_t pad_r);
fx_status fxi_plan_node_md_typed(const fx_node *node, int batch, dnnl_data_type_t dt, dnnl_format_tag_t tag4,
                                 dnnl_format_tag_t tag2, dnnl_memory_desc_t *md);
/* The activation type: f32, or bf16 in FX_MATH_BF16 mode. */
dnnl_data_type_t fxi_plan_act_type(const fx_plan *plan);
fx_status fxi_plan_node_md(const fx_plan *plan, const fx_node *node, dnnl_format_tag_t tag4, dnnl_format_tag_t tag2,
                           dnnl_memory_desc_t *md);
/* Primitive attributes with a user scratchpad (every primitive of a plan uses one). */
fx_status fxi_plan_new_attr(dnnl_primitive_attr_t *attr);
/* Append a step running the primitive of `pd` (NULL: only clear `zero`). */
fx_status fxi_plan_add_step(fx_plan *plan, const_dnnl_primitive_desc_t pd, const dnnl_exec_arg_t *args, int n_args,
                            dnnl_memory_t zero);
/* `src`'s data in layout `want`: src itself, or a reordered copy (a new step). */
fx_status fxi_plan_as_layout(fx_plan *plan, dnnl_memory_t src, const_dnnl_memory_desc_t want, dnnl_memory_t *out);
/* Append a reorder from `src` viewed as `src_md` to `dst` viewed as `dst_md`;
   with `accumulate` it adds to what `dst` holds. */
fx_status fxi_plan_add_reorder(fx_plan *plan, dnnl_memory_t src, const_dnnl_memory_desc_t src_md, dnnl_memory_t dst,
                               const_dnnl_memory_desc_t dst_md, int accumulate);
/* Parameters in the layout `want` (NULL: as given), reordered now and
   remembered for fx_plan_refresh_parameters. */
fx_status fxi_plan_param_memory(fx_plan *plan, const float *data, int nd, const dnnl_dims_t dims,
                                dnnl_format_tag_t tag, const_dnnl_memory_desc_t want, dnnl_memory_t *out);

/* The eltwise algorithm and slope of a relu/leaky_relu/sigmoid node, and
   whether its backward reads the forward's output (else its input). */
typedef struct {
    dnnl_alg_kind_t alg;
    float alpha;
    int use_dst;
} fx_eltwise_alg;
fx_eltwise_alg fxi_plan_eltwise_alg(const fx_node *n, int training);
/* A node's output as a 4-D tensor: a dense output (N, C) viewed as (N, C, 1, 1). */
fx_status fxi_plan_as_4d(fx_plan *plan, const fx_node *node, dnnl_memory_t mem, dnnl_memory_t *out);
/* The input of mul node `id` with the product's shape, and the other (possibly a gate). */
void fxi_plan_mul_roles(const fx_net *net, int id, int *full, int *other);

/* ---- the layer builders ------------------------------------------------ */

/* A backward pass being built (net_backward.c; the loop over the nodes is
   net_plan.c's). */
typedef struct {
    const fx_net *net;
    fx_plan *plan;
    char *has_diff; /* [n_nodes] a contribution has been scheduled (by canonical id) */
} fx_backward;

/* Builds the forward steps of node `head` (the head of its fused group in an
   inference plan) and sets plan->node_mem of the nodes it computes. */
typedef fx_status (*fxi_forward_builder)(fx_plan *plan, const fx_net *net, int head);
/* Builds the backward steps of node `id`: from plan->diff[id], the gradient of
   its inputs (and, in FX_TRAIN_PARAMETERS plans, of its parameters). */
typedef fx_status (*fxi_backward_builder)(fx_backward *b, int id);

/* A row of the kind table (net_layers.c). */
typedef struct {
    const char *name;
    fxi_forward_builder forward;   /* NULL for the input */
    fxi_backward_builder backward; /* NULL for the input */
} fxi_layer_ops;

/* The row of `kind`, or NULL for a value that is not a kind. */
const fxi_layer_ops *fxi_layer_ops_of(fx_layer_kind kind);

/* net_layers_forward.c */

fx_status fxi_forward_conv_or_dense(fx_plan *plan, const fx_net *net, int head);
fx_status fxi_forward_pool(fx_plan *plan, const fx_net *net, int id);
fx_status fxi_forward_elementwise(fx_plan *plan, const fx_net *net, int id); /* relu, prelu, scale_shift,
                                                                               leaky_relu, sigmoid */
fx_status fxi_forward_mul(fx_plan *plan, const fx_net *net, int id);
fx_status fxi_forward_concat(fx_plan *plan, const fx_net *net, int id);
fx_status fxi_forward_sum(fx_plan *plan, const fx_net *net, int id);
fx_status fxi_forward_reshape(fx_plan *plan, const fx_net *net, int id);

/* net_backward.c */
fx_status fxi_backward_conv_or_dense(fx_backward *b, int id);
fx_status fxi_backward_pool(fx_backward *b, int id);
fx_status fxi_backward_elementwise(fx_backward *b, int id);
fx_status fxi_backward_sum(fx_backward *b, int id);
fx_status fxi_backward_reshape(fx_backward *b, int id);
fx_status fxi_backward_mul(fx_backward *b, int id);
fx_status fxi_backward_concat(fx_backward *b, int id);
/* Start a backward pass: allocate b->has_diff (the caller frees it) and seed
   the output's gradient from the caller's buffer. */
fx_status fxi_backward_begin(fx_backward *b);
/* End it: the input's gradient into the caller's buffer (plain NHWC). */
fx_status fxi_backward_finish(fx_backward *b);
/* Copy (first contribution) or add (later ones) `src`, which has node `in`'s
   full dims in any layout, into the gradient of node `in`. */
fx_status fxi_backward_deliver(fx_backward *b, int in, dnnl_memory_t src);

/* net_resize.c: the resize layer as matrix products */
fx_status fxi_forward_resize(fx_plan *plan, const fx_net *net, int id);
fx_status fxi_backward_resize(fx_backward *b, int id);

/* net_int8.c: the hooks fxi_forward_conv_or_dense calls in FX_MATH_INT8 plans */
/* Whether node `head` runs as an int8 convolution in the int8 mode. */
int fxi_int8_conv(const fx_net *net, int head);
/* Refuses (invalid argument) before the first calibration. */
fx_status fxi_int8_check(const fx_net *net);
/* u8 or s8: the calibrated type of the convolution's input. */
dnnl_data_type_t fxi_int8_src_type(const fx_net *net, int head);
/* Per-tensor input and per-output-channel weight scales on a convolution's attributes. */
fx_status fxi_int8_attr(dnnl_primitive_attr_t attr, int grouped);
/* A step quantising `src` into layout `want` (u8/s8); *scale is the scale argument of the convolution. */
fx_status fxi_int8_input(fx_plan *plan, const fx_net *net, int head, dnnl_memory_t src,
                         const_dnnl_memory_desc_t want, dnnl_memory_t *out, dnnl_memory_t *scale);
/* The layer's weights quantised per output channel into layout `want`, and their scales. */
fx_status fxi_int8_weights(fx_plan *plan, const fx_net *net, int head, int nd, const dnnl_dims_t dims,
                           const_dnnl_memory_desc_t want, dnnl_memory_t *out, dnnl_memory_t *scale);

/* ---- net_shared.c -------------------------------------------------------- */

/* Fill the training plan `many` with the forward results of the batch-1
   training plan `one`, repeated. *ok = 0 if a layout does not allow it
   (nothing useful was copied then). */
fx_status fx_plans_replicate_forward(const fx_net *net, fx_plan *one, fx_plan *many, int *ok);

#endif /* FX_PLAN_INTERNAL_H */
