/*
 * plan_util.c - the bottom of the plan builders: small helpers every builder
 * file uses (net_plan.c, net_layers_forward.c, net_backward.c, net_resize.c,
 * net_shared.c). They create memory objects the plan owns, build memory
 * descriptors of a node's shape, append primitive steps and reorders, and
 * keep reordered copies of a layer's parameters (so fx_plan_refresh_parameters
 * can redo them). Everything here is declared in plan_internal.h with the
 * internal prefix fxi_plan_, and calls nothing but oneDNN, libc and
 * status.c: the builder files depend on this file, never the other way.
 */
#include <stdlib.h>
#include <string.h>

#include "plan_internal.h"

fx_status fxi_plan_own(fx_plan *plan, dnnl_memory_t mem) {
    if (plan->n_owned == plan->cap_owned) {
        int cap = plan->cap_owned ? 2 * plan->cap_owned : 64;
        dnnl_memory_t *grown = realloc(plan->owned, (size_t)cap * sizeof *grown);
        if (!grown) {
            dnnl_memory_destroy(mem);
            return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the plan");
        }
        plan->owned = grown;
        plan->cap_owned = cap;
    }
    plan->owned[plan->n_owned++] = mem;
    return FX_STATUS_OK;
}

/* A new memory object with its own buffer, owned by the plan. */
fx_status fxi_plan_new_memory(fx_plan *plan, const_dnnl_memory_desc_t md, void *handle,
                              dnnl_memory_t *out) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_t mem = NULL;
    FX_DNNL(dnnl_memory_create(&mem, md, plan->engine, handle ? handle : DNNL_MEMORY_ALLOCATE));
    FX_TRY(fxi_plan_own(plan, mem));
    *out = mem;
cleanup:
    return st;
}

const_dnnl_memory_desc_t fxi_plan_md_of(const_dnnl_memory_t mem) {
    const_dnnl_memory_desc_t md = NULL;
    dnnl_memory_get_memory_desc(mem, &md);
    return md;
}

const_dnnl_memory_desc_t fxi_plan_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* Dims of a node's output for this batch: NCHW, or NC for dense outputs. */
int fxi_plan_node_dims(const fx_node *node, int batch, dnnl_dims_t dims) {
    dims[0] = batch;
    dims[1] = node->c;
    if (node->flat) return 2;
    dims[2] = node->h;
    dims[3] = node->w;
    return 4;
}

int fxi_plan_weight_dims(const fx_net *net, int node, dnnl_dims_t dims) {
    const fx_node *n = &net->nodes[node];
    const fx_node *in = &net->nodes[n->inputs[0]];
    if (n->kind == FX_LAYER_CONV && n->groups > 1) {
        /* (O, I/g, kh, kw) row-major is oneDNN's goihw (g, O/g, I/g, kh, kw): the same bytes */
        dims[0] = n->groups, dims[1] = n->c / n->groups, dims[2] = in->c / n->groups;
        dims[3] = n->kernel[0], dims[4] = n->kernel[1];
        return 5;
    }
    if (n->kind == FX_LAYER_CONV) {
        dims[0] = n->c, dims[1] = in->c, dims[2] = n->kernel[0], dims[3] = n->kernel[1];
        return 4;
    }
    return fxi_plan_node_dims(in, n->c, dims); /* dense: (out, C[, H, W]) */
}

dnnl_format_tag_t fxi_plan_weight_tag(int nd) {
    return nd == 5 ? dnnl_goihw : nd == 4 ? dnnl_oihw : dnnl_ab;
}

void fxi_plan_window(const fx_node *n, dnnl_dims_t strides, dnnl_dims_t dilates, dnnl_dims_t pad_l,
                     dnnl_dims_t pad_r) {
    for (int a = 0; a < 2; ++a) {
        strides[a] = n->stride[a];
        /* oneDNN counts the cells skipped between kernel taps: 0 for a dense kernel */
        dilates[a] = n->dilation[a] > 1 ? n->dilation[a] - 1 : 0;
        pad_l[a] = n->padding[a];
        pad_r[a] = n->padding_end[a];
    }
}

fx_status fxi_plan_node_md_typed(const fx_node *node, int batch, dnnl_data_type_t dt,
                                 dnnl_format_tag_t tag4, dnnl_format_tag_t tag2, dnnl_memory_desc_t *md) {
    dnnl_dims_t dims;
    int nd = fxi_plan_node_dims(node, batch, dims);
    dnnl_status_t s = dnnl_memory_desc_create_with_tag(md, nd, dims, dt, nd == 4 ? tag4 : tag2);
    return s == dnnl_success ? FX_STATUS_OK : fx_fail_dnnl(s, "memory_desc_create", __FILE__, __LINE__);
}

/* Activations are float32, or bfloat16 in FX_MATH_BF16 mode (halving memory
   traffic and letting the AVX512-BF16 convolution kernels run). */
dnnl_data_type_t fxi_plan_act_type(const fx_plan *plan) {
    return plan->math == FX_MATH_BF16 ? dnnl_bf16 : dnnl_f32;
}

fx_status fxi_plan_node_md(const fx_plan *plan, const fx_node *node, dnnl_format_tag_t tag4,
                           dnnl_format_tag_t tag2, dnnl_memory_desc_t *md) {
    return fxi_plan_node_md_typed(node, plan->batch, fxi_plan_act_type(plan), tag4, tag2, md);
}

fx_status fxi_plan_new_attr(dnnl_primitive_attr_t *attr) {
    fx_status st = FX_STATUS_OK;
    *attr = NULL;
    FX_DNNL(dnnl_primitive_attr_create(attr));
    FX_DNNL(dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user));
cleanup:
    if (st) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
    }
    return st;
}

/* Append a step running the primitive of `pd` with the given arguments. */
fx_status fxi_plan_add_step(fx_plan *plan, const_dnnl_primitive_desc_t pd, const dnnl_exec_arg_t *args,
                            int n_args, dnnl_memory_t zero) {
    fx_status st = FX_STATUS_OK;
    dnnl_primitive_t prim = NULL;
    if (plan->n_steps == plan->cap_steps) {
        int cap = plan->cap_steps ? 2 * plan->cap_steps : 64;
        fx_step *grown = realloc(plan->steps, (size_t)cap * sizeof *grown);
        if (!grown) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the plan");
        plan->steps = grown;
        plan->cap_steps = cap;
    }
    fx_step *step = &plan->steps[plan->n_steps];
    memset(step, 0, sizeof *step);
    if (pd) {
        FX_DNNL(dnnl_primitive_create(&prim, pd));
        size_t scratch = dnnl_memory_desc_get_size(fxi_plan_pd_md(pd, dnnl_query_scratchpad_md));
        if (scratch > plan->scratch_bytes) plan->scratch_bytes = scratch;
        step->uses_scratchpad = scratch > 0;
    }
    step->prim = prim;
    step->zero = zero;
    step->n_args = n_args;
    if (n_args) memcpy(step->args, args, (size_t)n_args * sizeof *args);
    plan->n_steps++;
    prim = NULL;
cleanup:
    dnnl_primitive_destroy(prim);
    return st;
}

/* Memory holding `src`'s data in layout `want`: src itself, or a reordered copy. */
fx_status fxi_plan_as_layout(fx_plan *plan, dnnl_memory_t src, const_dnnl_memory_desc_t want, dnnl_memory_t *out) {
    fx_status st = FX_STATUS_OK;
    if (dnnl_memory_desc_equal(fxi_plan_md_of(src), want)) {
        *out = src;
        return FX_STATUS_OK;
    }
    dnnl_memory_t dst = NULL;
    FX_TRY(fxi_plan_new_memory(plan, want, NULL, &dst));
    FX_TRY(fxi_plan_add_reorder(plan, src, fxi_plan_md_of(src), dst, want, 0));
    *out = dst;
cleanup:
    return st;
}

/* Remember a parameter reorder so fx_plan_refresh_parameters can redo it. */
static fx_status keep_param_copy(fx_plan *plan, const float *data, dnnl_primitive_t prim, dnnl_memory_t src,
                                 dnnl_memory_t dst) {
    if (plan->n_param_copies == plan->cap_param_copies) {
        int cap = plan->cap_param_copies ? 2 * plan->cap_param_copies : 32;
        fx_param_copy *grown = realloc(plan->param_copies, (size_t)cap * sizeof *grown);
        if (!grown) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the plan");
        plan->param_copies = grown;
        plan->cap_param_copies = cap;
    }
    plan->param_copies[plan->n_param_copies++] = (fx_param_copy){data, prim, src, dst};
    return FX_STATUS_OK;
}

/* Parameters (weights, bias) in the layout a primitive wants, reordered now.
   The reorder is kept: when the net's parameters change (training), the
   plan redoes it instead of being rebuilt. */
fx_status fxi_plan_param_memory(fx_plan *plan, const float *data, int nd, const dnnl_dims_t dims,
                                dnnl_format_tag_t tag, const_dnnl_memory_desc_t want,
                                dnnl_memory_t *out) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_desc_t user_md = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t user = NULL;
    FX_DNNL(dnnl_memory_desc_create_with_tag(&user_md, nd, dims, dnnl_f32, tag));
    /* the net owns `data` for its whole life, so wrapping it needs no copy */
    FX_TRY(fxi_plan_new_memory(plan, user_md, (void *)data, &user));
    if (!want || dnnl_memory_desc_equal(user_md, want)) {
        *out = user;
        goto cleanup;
    }
    dnnl_memory_t dst = NULL;
    FX_TRY(fxi_plan_new_memory(plan, want, NULL, &dst));
    FX_DNNL(dnnl_reorder_primitive_desc_create(&pd, user_md, plan->engine, want, plan->engine, NULL));
    FX_DNNL(dnnl_primitive_create(&prim, pd));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, dst}};
    FX_DNNL(dnnl_primitive_execute(prim, plan->stream, 2, args));
    FX_DNNL(dnnl_stream_wait(plan->stream));
    FX_TRY(keep_param_copy(plan, data, prim, user, dst));
    prim = NULL;
    *out = dst;
cleanup:
    dnnl_memory_desc_destroy(user_md);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_destroy(prim);
    return st;
}

/* Append a reorder from `src` (viewed as `src_md`) to `dst` (viewed as
 * `dst_md`); with `accumulate` the reorder adds to what `dst` holds. */
fx_status fxi_plan_add_reorder(fx_plan *plan, dnnl_memory_t src, const_dnnl_memory_desc_t src_md, dnnl_memory_t dst,
                               const_dnnl_memory_desc_t dst_md, int accumulate) {
    fx_status st = FX_STATUS_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    FX_TRY(fxi_plan_new_attr(&attr));
    if (accumulate) {
        FX_DNNL(dnnl_post_ops_create(&ops));
        FX_DNNL(dnnl_post_ops_append_sum(ops, 1.0f, 0, dnnl_data_type_undef));
        FX_DNNL(dnnl_primitive_attr_set_post_ops(attr, ops));
    }
    FX_DNNL(dnnl_reorder_primitive_desc_create(&pd, src_md, plan->engine, dst_md, plan->engine, attr));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    FX_TRY(fxi_plan_add_step(plan, pd, args, 2, NULL));
cleanup:
    dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* The eltwise algorithm of a standalone activation. Training plans pick the
   variant whose backward works from the output alone where one exists (relu,
   leaky relu with alpha >= 0, sigmoid); a negative slope flips signs, so its
   backward needs the input. */
fx_eltwise_alg fxi_plan_eltwise_alg(const fx_node *n, int training) {
    fx_eltwise_alg e = {dnnl_eltwise_relu, 0.0f, 0};
    if (n->kind == FX_LAYER_SIGMOID) {
        e.alg = training ? dnnl_eltwise_logistic_use_dst_for_bwd : dnnl_eltwise_logistic;
        e.use_dst = training;
    } else {
        e.alpha = n->kind == FX_LAYER_LEAKY_RELU ? n->alpha : 0.0f;
        e.use_dst = training && e.alpha >= 0.0f;
        if (e.use_dst) e.alg = dnnl_eltwise_relu_use_dst_for_bwd;
    }
    return e;
}

/* A node's output as a 4-D (N, C, 1, 1) tensor: itself when it is spatial; a
   dense output (N, C) reordered to plain order if needed and viewed so, for
   primitives that need operands of equal rank. */
fx_status fxi_plan_as_4d(fx_plan *plan, const fx_node *node, dnnl_memory_t mem, dnnl_memory_t *out) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_desc_t plain_md = NULL, view_md = NULL;
    dnnl_memory_t plain;
    void *handle = NULL;
    *out = mem;
    if (!node->flat) return FX_STATUS_OK;
    fx_node spatial = *node;
    spatial.flat = 0;
    spatial.h = spatial.w = 1;
    FX_TRY(fxi_plan_node_md(plan, node, dnnl_nchw, dnnl_nc, &plain_md));
    FX_TRY(fxi_plan_as_layout(plan, mem, plain_md, &plain));
    FX_TRY(fxi_plan_node_md(plan, &spatial, dnnl_nchw, dnnl_nc, &view_md));
    FX_DNNL(dnnl_memory_get_data_handle(plain, &handle));
    FX_TRY(fxi_plan_new_memory(plan, view_md, handle, out));
cleanup:
    dnnl_memory_desc_destroy(plain_md);
    dnnl_memory_desc_destroy(view_md);
    return st;
}

/* Which input of a mul has the product's shape (`full`) and which may be a
   C x 1 x 1 gate broadcast over its rows and columns (`other`). */
void fxi_plan_mul_roles(const fx_net *net, int id, int *full, int *other) {
    const fx_node *n = &net->nodes[id];
    const fx_node *na = &net->nodes[n->inputs[0]];
    const int a_small = na->h * na->w == 1 && n->h * n->w > 1;
    *full = a_small ? n->inputs[1] : n->inputs[0];
    *other = a_small ? n->inputs[0] : n->inputs[1];
}
