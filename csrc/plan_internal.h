/*
 * plan_internal.h - the inside of a plan, shared by the forward builder
 * (net_plan.c) and the backward builder (net_backward.c).
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

/* Helpers of net_plan.c used by net_backward.c. */
fx_status plan_own(fx_plan *plan, dnnl_memory_t mem);
fx_status plan_new_memory(fx_plan *plan, const_dnnl_memory_desc_t md, void *handle, dnnl_memory_t *out);
const_dnnl_memory_desc_t plan_md_of(const_dnnl_memory_t mem);
const_dnnl_memory_desc_t plan_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what);
int plan_node_dims(const fx_node *node, int batch, dnnl_dims_t dims);
/* Dims of a conv/dense layer's weights as the user gave them, (out, in, kh, kw)
   or (out, C[, H, W]); returns their count. */
int plan_weight_dims(const fx_net *net, int node, dnnl_dims_t dims);
fx_status plan_node_md_typed(const fx_node *node, int batch, dnnl_data_type_t dt, dnnl_format_tag_t tag4,
                             dnnl_format_tag_t tag2, dnnl_memory_desc_t *md);
dnnl_data_type_t plan_act_type(const fx_plan *plan);
fx_status plan_node_md(const fx_plan *plan, const fx_node *node, dnnl_format_tag_t tag4, dnnl_format_tag_t tag2,
                       dnnl_memory_desc_t *md);
fx_status plan_new_attr(dnnl_primitive_attr_t *attr);
fx_status plan_add_step(fx_plan *plan, const_dnnl_primitive_desc_t pd, const dnnl_exec_arg_t *args, int n_args,
                        dnnl_memory_t zero);
fx_status plan_as_layout(fx_plan *plan, dnnl_memory_t src, const_dnnl_memory_desc_t want, dnnl_memory_t *out);
fx_status plan_add_reorder(fx_plan *plan, dnnl_memory_t src, const_dnnl_memory_desc_t src_md, dnnl_memory_t dst,
                           const_dnnl_memory_desc_t dst_md, int accumulate);
fx_status plan_param_memory(fx_plan *plan, const float *data, int nd, const dnnl_dims_t dims, dnnl_format_tag_t tag,
                            const_dnnl_memory_desc_t want, dnnl_memory_t *out);

/* Fill the training plan `many` with the forward results of the batch-1
   training plan `one`, repeated (net_shared.c). *ok = 0 if a layout does not
   allow it (nothing useful was copied then). */
fx_status fx_plans_replicate_forward(const fx_net *net, fx_plan *one, fx_plan *many, int *ok);

/* The resize layer as matrix products (net_resize.c): its forward steps, and
   (training) the steps of its backward pass, whose result *grad_input is the
   input's gradient in plain NCHW. */
fx_status plan_build_resize(fx_plan *plan, const fx_net *net, int id);
fx_status plan_build_resize_backward(fx_plan *plan, const fx_net *net, int id, dnnl_memory_t *grad_input);

/* The backward pass of a training plan (net_backward.c). */
fx_status fx_plan_build_backward(const fx_net *net, fx_plan *plan);

#endif /* FX_PLAN_INTERNAL_H */
