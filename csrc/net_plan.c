/*
 * net_plan.c - turning a finalized graph into oneDNN primitives for one
 * batch size, and running them.
 *
 * A plan owns every primitive, activation buffer and reordered weight needed
 * to run the net on `batch` images. Convolution activations are channels-last
 * (NHWC), other layers keep their input's layout, and a reorder is inserted
 * only where a consumer wants another layout. Weights are reordered once,
 * here. All primitives use a user-provided scratchpad, so a plan is not tied
 * to the thread that built it. A training plan (for gradients) keeps every
 * layer's output and appends the backward steps of net_backward.c.
 */
#include <stdlib.h>
#include <string.h>

#include "plan_internal.h"

int fx_plan_batch(const fx_plan *plan) { return plan->batch; }
int fx_plan_steps(const fx_plan *plan) { return plan->n_steps; }

void fx_plan_destroy(fx_plan *plan) {
    if (!plan) return;
    for (int i = 0; i < plan->n_steps; ++i) dnnl_primitive_destroy(plan->steps[i].prim);
    for (int i = 0; i < plan->n_param_copies; ++i) dnnl_primitive_destroy(plan->param_copies[i].prim);
    free(plan->param_copies);
    for (int i = 0; i < plan->n_owned; ++i) dnnl_memory_destroy(plan->owned[i]);
    dnnl_memory_destroy(plan->output);
    dnnl_memory_destroy(plan->scratchpad);
    dnnl_memory_destroy(plan->grad_output);
    dnnl_memory_destroy(plan->grad_input);
    if (plan->fwd_pd)
        for (int i = 0; i < plan->n_nodes; ++i) dnnl_primitive_desc_destroy(plan->fwd_pd[i]);
    free(plan->fwd_pd);
    free(plan->workspace);
    free(plan->diff);
    free(plan->grad_weight);
    free(plan->grad_bias);
    free(plan->steps);
    free(plan->owned);
    free(plan->node_mem);
    free(plan);
}

/* ---- small helpers ------------------------------------------------------ */

fx_status plan_own(fx_plan *plan, dnnl_memory_t mem) {
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
fx_status plan_new_memory(fx_plan *plan, const_dnnl_memory_desc_t md, void *handle,
                            dnnl_memory_t *out) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_t mem = NULL;
    FX_DNNL(dnnl_memory_create(&mem, md, plan->engine, handle ? handle : DNNL_MEMORY_ALLOCATE));
    FX_TRY(plan_own(plan, mem));
    *out = mem;
cleanup:
    return st;
}

const_dnnl_memory_desc_t plan_md_of(const_dnnl_memory_t mem) {
    const_dnnl_memory_desc_t md = NULL;
    dnnl_memory_get_memory_desc(mem, &md);
    return md;
}

const_dnnl_memory_desc_t plan_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* Dims of a node's output for this batch: NCHW, or NC for dense outputs. */
int plan_node_dims(const fx_node *node, int batch, dnnl_dims_t dims) {
    dims[0] = batch;
    dims[1] = node->c;
    if (node->flat) return 2;
    dims[2] = node->h;
    dims[3] = node->w;
    return 4;
}

int plan_weight_dims(const fx_net *net, int node, dnnl_dims_t dims) {
    const fx_node *n = &net->nodes[node];
    const fx_node *in = &net->nodes[n->inputs[0]];
    if (n->kind == FX_LAYER_CONV) {
        dims[0] = n->c, dims[1] = in->c, dims[2] = n->kernel[0], dims[3] = n->kernel[1];
        return 4;
    }
    return plan_node_dims(in, n->c, dims); /* dense: (out, C[, H, W]) */
}

fx_status plan_node_md_typed(const fx_node *node, int batch, dnnl_data_type_t dt,
                               dnnl_format_tag_t tag4, dnnl_format_tag_t tag2, dnnl_memory_desc_t *md) {
    dnnl_dims_t dims;
    int nd = plan_node_dims(node, batch, dims);
    dnnl_status_t s = dnnl_memory_desc_create_with_tag(md, nd, dims, dt, nd == 4 ? tag4 : tag2);
    return s == dnnl_success ? FX_STATUS_OK : fx_fail_dnnl(s, "memory_desc_create", __FILE__, __LINE__);
}

/* Activations are float32, or bfloat16 in FX_MATH_BF16 mode (halving memory
   traffic and letting the AVX512-BF16 convolution kernels run). */
dnnl_data_type_t plan_act_type(const fx_plan *plan) {
    return plan->math == FX_MATH_BF16 ? dnnl_bf16 : dnnl_f32;
}

fx_status plan_node_md(const fx_plan *plan, const fx_node *node, dnnl_format_tag_t tag4,
                         dnnl_format_tag_t tag2, dnnl_memory_desc_t *md) {
    return plan_node_md_typed(node, plan->batch, plan_act_type(plan), tag4, tag2, md);
}

fx_status plan_new_attr(dnnl_primitive_attr_t *attr) {
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
fx_status plan_add_step(fx_plan *plan, const_dnnl_primitive_desc_t pd, const dnnl_exec_arg_t *args,
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
        size_t scratch = dnnl_memory_desc_get_size(plan_pd_md(pd, dnnl_query_scratchpad_md));
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
fx_status plan_as_layout(fx_plan *plan, dnnl_memory_t src, const_dnnl_memory_desc_t want, dnnl_memory_t *out) {
    fx_status st = FX_STATUS_OK;
    if (dnnl_memory_desc_equal(plan_md_of(src), want)) {
        *out = src;
        return FX_STATUS_OK;
    }
    dnnl_memory_t dst = NULL;
    FX_TRY(plan_new_memory(plan, want, NULL, &dst));
    FX_TRY(plan_add_reorder(plan, src, plan_md_of(src), dst, want, 0));
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
fx_status plan_param_memory(fx_plan *plan, const float *data, int nd, const dnnl_dims_t dims,
                              dnnl_format_tag_t tag, const_dnnl_memory_desc_t want,
                              dnnl_memory_t *out) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_desc_t user_md = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t user = NULL;
    FX_DNNL(dnnl_memory_desc_create_with_tag(&user_md, nd, dims, dnnl_f32, tag));
    /* the net owns `data` for its whole life, so wrapping it needs no copy */
    FX_TRY(plan_new_memory(plan, user_md, (void *)data, &user));
    if (!want || dnnl_memory_desc_equal(user_md, want)) {
        *out = user;
        goto cleanup;
    }
    dnnl_memory_t dst = NULL;
    FX_TRY(plan_new_memory(plan, want, NULL, &dst));
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

fx_status fx_plan_refresh_parameters(fx_plan *plan, const float *data) {
    fx_status st = FX_STATUS_OK;
    for (int i = 0; i < plan->n_param_copies; ++i) {
        fx_param_copy *c = &plan->param_copies[i];
        if (c->data != data) continue;
        dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, c->src}, {DNNL_ARG_TO, c->dst}};
        FX_DNNL(dnnl_primitive_execute(c->prim, plan->stream, 2, args));
    }
    FX_DNNL(dnnl_stream_wait(plan->stream));
cleanup:
    return st;
}

static dnnl_prop_kind_t prop_kind(const fx_plan *plan) {
    return plan->training ? dnnl_forward_training : dnnl_forward_inference;
}

/* Training plans keep each node's forward primitive: its backward needs it as a hint. */
static fx_status keep_forward_pd(fx_plan *plan, int node, const_dnnl_primitive_desc_t pd) {
    if (!plan->training) return FX_STATUS_OK;
    dnnl_status_t s = dnnl_primitive_desc_clone(&plan->fwd_pd[node], pd);
    return s == dnnl_success ? FX_STATUS_OK : fx_fail_dnnl(s, "primitive_desc_clone", __FILE__, __LINE__);
}

/* ---- post-op chains (conv and dense heads) ------------------------------- */

typedef struct {
    dnnl_post_ops_t ops;
    int n_args;
    dnnl_exec_arg_t args[8];
    int sum_partner; /* node added by a fused sum, or -1 */
} fx_post_ops;

static fx_status build_post_ops(fx_plan *plan, const fx_net *net, int head, fx_post_ops *po) {
    fx_status st = FX_STATUS_OK;
    fx_post_chain chain;
    po->n_args = 0;
    po->sum_partner = -1;
    FX_DNNL(dnnl_post_ops_create(&po->ops));
    chain.count = 0;
    /* training keeps every layer's output for the backward pass: no fusion */
    if (!plan->training) fx_group_post_chain(net, head, &chain);
    for (int i = 0; i < chain.count; ++i) {
        const fx_node *n = &net->nodes[chain.node[i]];
        if (n->kind == FX_LAYER_RELU) {
            FX_DNNL(dnnl_post_ops_append_eltwise(po->ops, dnnl_eltwise_relu, 0.0f, 0.0f));
        } else if (n->kind == FX_LAYER_PRELU) {
            FX_DNNL(dnnl_post_ops_append_prelu(po->ops, 1 << 1));
            dnnl_dims_t dims = {n->c};
            dnnl_memory_t slope = NULL;
            FX_TRY(plan_param_memory(plan, n->weight, 1, dims, dnnl_a, NULL, &slope));
            po->args[po->n_args++] =
                (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_WEIGHTS, slope};
        } else { /* FX_LAYER_SUM */
            /* the operand computed outside this group is the residual partner */
            int other = net->nodes[n->inputs[0]].group == head ? n->inputs[1] : n->inputs[0];
            /* the partner's chain is not complete before its group ran; the
               group containing this sum always runs after it (see net_fuse.c) */
            dnnl_memory_t partner = plan->node_mem[other];
            FX_DNNL(dnnl_post_ops_append_binary(po->ops, dnnl_binary_add, plan_md_of(partner)));
            po->args[po->n_args++] =
                (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1, partner};
            po->sum_partner = other;
        }
    }
cleanup:
    return st;
}

/* ---- one group per layer kind --------------------------------------------- */

static fx_status build_conv_or_dense(fx_plan *plan, const fx_net *net, int head) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[head];
    const fx_node *in = &net->nodes[n->inputs[0]];
    const int conv = n->kind == FX_LAYER_CONV;
    dnnl_memory_desc_t src_md = NULL, w_md = NULL, b_md = NULL, dst_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    fx_post_ops po = {0};
    dnnl_dims_t w_dims, b_dims = {n->c};

    /* Activations of convolutions are kept channels-last (NHWC): on AVX-512
       CPUs oneDNN's brgemm convolutions are fastest there, pooling keeps the
       layout, and the network input already arrives in it, so no reorders are
       needed between layers. Dense layers choose their own layouts. */
    dnnl_format_tag_t act = conv ? dnnl_nhwc : dnnl_format_tag_any;
    FX_TRY(plan_node_md(plan, in, act, dnnl_format_tag_any, &src_md));
    FX_TRY(plan_node_md(plan, n, act, dnnl_format_tag_any, &dst_md));
    const int w_nd = plan_weight_dims(net, head, w_dims);
    FX_DNNL(dnnl_memory_desc_create_with_tag(&w_md, w_nd, w_dims, plan_act_type(plan), dnnl_format_tag_any));
    if (n->bias) FX_DNNL(dnnl_memory_desc_create_with_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_a));
    FX_TRY(build_post_ops(plan, net, head, &po));
    FX_TRY(plan_new_attr(&attr));
    FX_DNNL(dnnl_primitive_attr_set_post_ops(attr, po.ops));

    /* With a fused residual sum, ask for the partner's layout so the binary
       post-op reads both operands the same way; fall back to any layout. */
    const_dnnl_memory_desc_t dst_want = dst_md;
    if (po.sum_partner >= 0) dst_want = plan_md_of(plan->node_mem[po.sum_partner]);
    for (int attempt = 0; attempt < 2; ++attempt) {
        dnnl_status_t s;
        if (conv) {
            dnnl_dims_t strides = {n->stride[0], n->stride[1]}, dil = {0, 0};
            dnnl_dims_t pad = {n->padding[0], n->padding[1]};
            s = dnnl_convolution_forward_primitive_desc_create(
                &pd, plan->engine, prop_kind(plan), dnnl_convolution_direct, src_md, w_md,
                b_md, dst_want, strides, dil, pad, pad, attr);
        } else {
            s = dnnl_inner_product_forward_primitive_desc_create(
                &pd, plan->engine, prop_kind(plan), src_md, w_md, b_md, dst_want, attr);
        }
        if (s == dnnl_success) break;
        if (attempt == 1 || dst_want == dst_md) {
            st = fx_fail_dnnl(s, conv ? "convolution_forward" : "inner_product_forward", __FILE__,
                              __LINE__);
            goto cleanup;
        }
        dst_want = dst_md;
    }

    dnnl_memory_t src = NULL, weights = NULL, bias = NULL, dst = NULL;
    FX_TRY(plan_as_layout(plan, plan->node_mem[n->inputs[0]], plan_pd_md(pd, dnnl_query_src_md), &src));
    FX_TRY(plan_param_memory(plan, n->weight, w_nd, w_dims, conv ? dnnl_oihw : (w_nd == 4 ? dnnl_oihw : dnnl_ab),
                        plan_pd_md(pd, dnnl_query_weights_md), &weights));
    if (n->bias)
        FX_TRY(plan_param_memory(plan, n->bias, 1, b_dims, dnnl_a, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), &bias));
    FX_TRY(plan_new_memory(plan, plan_pd_md(pd, dnnl_query_dst_md), NULL, &dst));

    dnnl_exec_arg_t args[16];
    int n_args = 0;
    args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, src};
    args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, weights};
    if (bias) args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, bias};
    args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_DST, dst};
    for (int i = 0; i < po.n_args; ++i) args[n_args++] = po.args[i];
    FX_TRY(plan_add_step(plan, pd, args, n_args, NULL));
    FX_TRY(keep_forward_pd(plan, head, pd));
    for (int j = head; j < net->n_nodes; ++j)
        if (net->nodes[j].group == head && (net->nodes[j].folded || !plan->training || j == head))
            plan->node_mem[j] = dst;
cleanup:
    dnnl_memory_desc_destroy(src_md);
    dnnl_memory_desc_destroy(w_md);
    dnnl_memory_desc_destroy(b_md);
    dnnl_memory_desc_destroy(dst_md);
    dnnl_post_ops_destroy(po.ops);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static fx_status build_pool(fx_plan *plan, const fx_net *net, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[id];
    dnnl_memory_t src = plan->node_mem[n->inputs[0]], dst;
    dnnl_memory_desc_t dst_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_dims_t strides = {n->stride[0], n->stride[1]}, kernel = {n->kernel[0], n->kernel[1]};
    dnnl_dims_t dil = {0, 0}, pad = {n->padding[0], n->padding[1]};
    dnnl_alg_kind_t alg = n->kind == FX_LAYER_MAX_POOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;

    FX_TRY(plan_node_md(plan, n, dnnl_format_tag_any, dnnl_format_tag_any, &dst_md));
    FX_TRY(plan_new_attr(&attr));
    FX_DNNL(dnnl_pooling_forward_primitive_desc_create(&pd, plan->engine, prop_kind(plan), alg,
                                                       plan_md_of(src), dst_md, strides, kernel, dil, pad,
                                                       pad, attr));
    FX_TRY(plan_new_memory(plan, plan_pd_md(pd, dnnl_query_dst_md), NULL, &dst));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_WORKSPACE, NULL}};
    int n_args = 2;
    const_dnnl_memory_desc_t ws = plan_pd_md(pd, dnnl_query_workspace_md);
    if (plan->training && dnnl_memory_desc_get_size(ws) > 0) {
        FX_TRY(plan_new_memory(plan, ws, NULL, &plan->workspace[id]));
        args[n_args++].memory = plan->workspace[id];
    }
    FX_TRY(plan_add_step(plan, pd, args, n_args, NULL));
    FX_TRY(keep_forward_pd(plan, id, pd));
    plan->node_mem[id] = dst;
cleanup:
    dnnl_memory_desc_destroy(dst_md);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* relu, prelu and scale/shift that could not be fused into a convolution. */
static fx_status build_elementwise(fx_plan *plan, const fx_net *net, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[id];
    dnnl_memory_t src = plan->node_mem[n->inputs[0]], dst, p0 = NULL, p1 = NULL;
    dnnl_memory_desc_t dst_md = NULL, chan_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_dims_t chan_dims = {1, n->c, 1, 1};
    int nd = n->flat ? 2 : 4;

    FX_TRY(plan_node_md(plan, n, dnnl_format_tag_any, dnnl_format_tag_any, &dst_md));
    FX_TRY(plan_new_attr(&attr));
    FX_DNNL(dnnl_memory_desc_create_with_tag(&chan_md, nd, chan_dims, dnnl_f32, nd == 4 ? dnnl_abcd : dnnl_ab));
    if (n->kind == FX_LAYER_RELU) {
        /* the use-dst variant lets the backward pass work from the output alone */
        FX_DNNL(dnnl_eltwise_forward_primitive_desc_create(&pd, plan->engine, prop_kind(plan),
                                                           plan->training ? dnnl_eltwise_relu_use_dst_for_bwd
                                                                          : dnnl_eltwise_relu,
                                                           plan_md_of(src), dst_md,
                                                           0.0f, 0.0f, attr));
    } else if (n->kind == FX_LAYER_PRELU) {
        FX_DNNL(dnnl_prelu_forward_primitive_desc_create(&pd, plan->engine, prop_kind(plan),
                                                         plan_md_of(src), chan_md, dst_md, attr));
        FX_TRY(plan_param_memory(plan, n->weight, nd, chan_dims, nd == 4 ? dnnl_abcd : dnnl_ab,
                            plan_pd_md(pd, dnnl_query_weights_md), &p0));
    } else { /* scale_shift: binary multiply, then a binary-add post-op */
        FX_DNNL(dnnl_post_ops_create(&ops));
        FX_DNNL(dnnl_post_ops_append_binary(ops, dnnl_binary_add, chan_md));
        FX_DNNL(dnnl_primitive_attr_set_post_ops(attr, ops));
        FX_DNNL(dnnl_binary_primitive_desc_create(&pd, plan->engine, dnnl_binary_mul, plan_md_of(src),
                                                  chan_md, dst_md, attr));
        FX_TRY(plan_param_memory(plan, n->weight, nd, chan_dims, nd == 4 ? dnnl_abcd : dnnl_ab, NULL, &p0));
        FX_TRY(plan_param_memory(plan, n->bias, nd, chan_dims, nd == 4 ? dnnl_abcd : dnnl_ab, NULL, &p1));
    }
    FX_TRY(plan_new_memory(plan, plan_pd_md(pd, dnnl_query_dst_md), NULL, &dst));
    dnnl_exec_arg_t args[4];
    int n_args = 0;
    args[n_args++] = (dnnl_exec_arg_t){n->kind == FX_LAYER_SCALE_SHIFT ? DNNL_ARG_SRC_0 : DNNL_ARG_SRC, src};
    args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_DST, dst};
    if (n->kind == FX_LAYER_PRELU) args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, p0};
    if (n->kind == FX_LAYER_SCALE_SHIFT) {
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SRC_1, p0};
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, p1};
    }
    FX_TRY(plan_add_step(plan, pd, args, n_args, NULL));
    FX_TRY(keep_forward_pd(plan, id, pd));
    plan->node_mem[id] = dst;
cleanup:
    dnnl_memory_desc_destroy(dst_md);
    dnnl_memory_desc_destroy(chan_md);
    dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* Append a reorder from `src` (viewed as `src_md`) to `dst` (viewed as
 * `dst_md`); with `accumulate` the reorder adds to what `dst` holds. */
fx_status plan_add_reorder(fx_plan *plan, dnnl_memory_t src, const_dnnl_memory_desc_t src_md, dnnl_memory_t dst,
                           const_dnnl_memory_desc_t dst_md, int accumulate) {
    fx_status st = FX_STATUS_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    FX_TRY(plan_new_attr(&attr));
    if (accumulate) {
        FX_DNNL(dnnl_post_ops_create(&ops));
        FX_DNNL(dnnl_post_ops_append_sum(ops, 1.0f, 0, dnnl_data_type_undef));
        FX_DNNL(dnnl_primitive_attr_set_post_ops(attr, ops));
    }
    FX_DNNL(dnnl_reorder_primitive_desc_create(&pd, src_md, plan->engine, dst_md, plan->engine, attr));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    FX_TRY(plan_add_step(plan, pd, args, 2, NULL));
cleanup:
    dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* Reorder `src` into the leading corner of `dst` (a zeroed tensor), adding. */
static fx_status accumulate_into(fx_plan *plan, dnnl_memory_t src, dnnl_memory_t dst) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_desc_t sub = NULL;
    dnnl_dims_t offsets = {0, 0, 0, 0};
    const dnnl_dims_t *dims = NULL;
    FX_DNNL(dnnl_memory_desc_query(plan_md_of(src), dnnl_query_dims, &dims));
    FX_DNNL(dnnl_memory_desc_create_submemory(&sub, plan_md_of(dst), *dims, offsets));
    FX_TRY(plan_add_reorder(plan, src, plan_md_of(src), dst, sub, 1));
cleanup:
    dnnl_memory_desc_destroy(sub);
    return st;
}

static fx_status build_sum(fx_plan *plan, const fx_net *net, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[id];
    dnnl_memory_t a = plan->node_mem[n->inputs[0]], b = plan->node_mem[n->inputs[1]], dst;
    dnnl_memory_desc_t dst_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const fx_node *na = &net->nodes[n->inputs[0]], *nb = &net->nodes[n->inputs[1]];
    int same = na->c == n->c && na->h == n->h && na->w == n->w && nb->c == n->c &&
               nb->h == n->h && nb->w == n->w;
    if (same) {
        FX_TRY(plan_node_md(plan, n, dnnl_format_tag_any, dnnl_format_tag_any, &dst_md));
        FX_TRY(plan_new_attr(&attr));
        FX_DNNL(dnnl_binary_primitive_desc_create(&pd, plan->engine, dnnl_binary_add, plan_md_of(a),
                                                  plan_md_of(b), dst_md, attr));
        FX_TRY(plan_new_memory(plan, plan_pd_md(pd, dnnl_query_dst_md), NULL, &dst));
        dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, dst}};
        FX_TRY(plan_add_step(plan, pd, args, 3, NULL));
    } else {
        /* Zero-padded sum (dlib's add_prev on differently shaped inputs):
           clear a channels-last buffer, then add each input into its leading corner. */
        FX_TRY(plan_node_md(plan, n, dnnl_nhwc, dnnl_nc, &dst_md));
        FX_TRY(plan_new_memory(plan, dst_md, NULL, &dst));
        FX_TRY(plan_add_step(plan, NULL, NULL, 0, dst));
        FX_TRY(accumulate_into(plan, a, dst));
        FX_TRY(accumulate_into(plan, b, dst));
    }
    plan->node_mem[id] = dst;
cleanup:
    dnnl_memory_desc_destroy(dst_md);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* A reshape is a view: the input in plain row-major order (reordered there
   if needed), read through a memory descriptor of the new shape. */
static fx_status build_reshape(fx_plan *plan, const fx_net *net, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[id];
    dnnl_memory_desc_t plain_md = NULL, view_md = NULL;
    dnnl_memory_t plain, view;
    void *handle = NULL;
    FX_TRY(plan_node_md(plan, &net->nodes[n->inputs[0]], dnnl_nchw, dnnl_nc, &plain_md));
    FX_TRY(plan_as_layout(plan, plan->node_mem[n->inputs[0]], plain_md, &plain));
    FX_TRY(plan_node_md(plan, n, dnnl_nchw, dnnl_nc, &view_md));
    FX_DNNL(dnnl_memory_get_data_handle(plain, &handle));
    FX_TRY(plan_new_memory(plan, view_md, handle, &view));
    plan->node_mem[id] = view;
cleanup:
    dnnl_memory_desc_destroy(plain_md);
    dnnl_memory_desc_destroy(view_md);
    return st;
}

/* ---- the plan ------------------------------------------------------------ */

static fx_status build_group(fx_plan *plan, const fx_net *net, int head) {
    switch (net->nodes[head].kind) {
    case FX_LAYER_CONV:
    case FX_LAYER_DENSE: return build_conv_or_dense(plan, net, head);
    case FX_LAYER_MAX_POOL:
    case FX_LAYER_AVG_POOL:
    case FX_LAYER_GLOBAL_AVG_POOL: return build_pool(plan, net, head);
    case FX_LAYER_RELU:
    case FX_LAYER_PRELU:
    case FX_LAYER_SCALE_SHIFT: return build_elementwise(plan, net, head);
    case FX_LAYER_SUM: return build_sum(plan, net, head);
    case FX_LAYER_RESHAPE: return build_reshape(plan, net, head);
    case FX_LAYER_RESIZE: return plan_build_resize(plan, net, head);
    default: return fx_fail(FX_STATUS_UNSUPPORTED, "layer %d has an unknown kind", head);
    }
}

int fx_plan_training(const fx_plan *plan) { return plan->training; }

fx_status fx_plan_build(fx_net *net, int batch, int training, fx_plan **out) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_desc_t md = NULL;
    fx_plan *plan = calloc(1, sizeof *plan);
    if (!plan) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate a plan");
    plan->batch = batch;
    plan->math = net->math;
    plan->training = training;
    plan->n_nodes = net->n_nodes;
    plan->node_mem = calloc((size_t)net->n_nodes, sizeof *plan->node_mem);
    if (training) {
        plan->fwd_pd = calloc((size_t)net->n_nodes, sizeof *plan->fwd_pd);
        plan->workspace = calloc((size_t)net->n_nodes, sizeof *plan->workspace);
        plan->diff = calloc((size_t)net->n_nodes, sizeof *plan->diff);
        plan->grad_weight = calloc((size_t)net->n_nodes, sizeof *plan->grad_weight);
        plan->grad_bias = calloc((size_t)net->n_nodes, sizeof *plan->grad_bias);
    }
    if (!plan->node_mem || (training && (!plan->fwd_pd || !plan->workspace || !plan->diff || !plan->grad_weight ||
                                         !plan->grad_bias))) {
        st = fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate a plan");
        goto cleanup;
    }
    FX_TRY(fx_engine_get(&plan->engine));
    if (!net->stream) FX_DNNL(dnnl_stream_create(&net->stream, plan->engine, dnnl_stream_default_flags));
    plan->stream = net->stream;

    FX_TRY(plan_node_md_typed(&net->nodes[0], batch, dnnl_f32, dnnl_nhwc, dnnl_nc, &md));
    FX_TRY(plan_new_memory(plan, md, NULL, &plan->input));
    plan->node_mem[0] = plan->input;
    dnnl_memory_desc_destroy(md);
    md = NULL;

    /* A group runs when its last member is reached: by then every input of
       every member has been computed. */
    for (int j = 1; j < net->n_nodes; ++j) {
        int head = net->nodes[j].group;
        if (training) {
            /* every layer on its own, except scale/shifts folded into their convolution */
            if (!net->nodes[j].folded) FX_TRY(build_group(plan, net, j));
            else plan->node_mem[j] = plan->node_mem[head];
        } else if (fx_group_tail(net, head) == j) {
            FX_TRY(build_group(plan, net, head));
        }
    }

    /* The result leaves in plain NCHW (or NC) in the caller's buffer. */
    const fx_node *result = &net->nodes[net->output];
    FX_TRY(plan_node_md_typed(result, batch, dnnl_f32, dnnl_nchw, dnnl_nc, &md));
    FX_DNNL(dnnl_memory_create(&plan->output, md, plan->engine, DNNL_MEMORY_NONE));
    FX_TRY(plan_add_reorder(plan, plan->node_mem[net->output], plan_md_of(plan->node_mem[net->output]),
                            plan->output, md, 0));
    plan->n_forward_steps = plan->n_steps;
    if (training) FX_TRY(fx_plan_build_backward(net, plan));

    dnnl_memory_desc_destroy(md);
    md = NULL;
    if (plan->scratch_bytes) {
        dnnl_dims_t bytes = {(dnnl_dim_t)plan->scratch_bytes};
        FX_DNNL(dnnl_memory_desc_create_with_tag(&md, 1, bytes, dnnl_u8, dnnl_a));
        FX_DNNL(dnnl_memory_create(&plan->scratchpad, md, plan->engine, DNNL_MEMORY_ALLOCATE));
    }
    *out = plan;
    plan = NULL;
cleanup:
    dnnl_memory_desc_destroy(md);
    fx_plan_destroy(plan);
    return st;
}

/* Execute steps [first, last). */
static fx_status run_steps(fx_plan *plan, int first, int last) {
    fx_status st = FX_STATUS_OK;
    for (int i = first; i < last; ++i) {
        fx_step *step = &plan->steps[i];
        if (step->zero) {
            void *buffer = NULL;
            FX_DNNL(dnnl_memory_get_data_handle(step->zero, &buffer));
            memset(buffer, 0, dnnl_memory_desc_get_size(plan_md_of(step->zero)));
        }
        if (!step->prim) continue;
        int n_args = step->n_args;
        if (step->uses_scratchpad)
            step->args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, plan->scratchpad};
        FX_DNNL(dnnl_primitive_execute(step->prim, plan->stream, n_args, step->args));
    }
    FX_DNNL(dnnl_stream_wait(plan->stream));
cleanup:
    return st;
}

fx_status fx_plan_run(fx_net *net, fx_plan *plan, const float *pixels, float *out) {
    fx_status st = FX_STATUS_OK;
    void *input = NULL;
    const fx_node *in = &net->nodes[0];
    FX_DNNL(dnnl_memory_get_data_handle(plan->input, &input));
    fx_normalize_nhwc(pixels, input, (size_t)plan->batch * in->h * in->w, in->c, net->input_mean,
                      net->input_scale);
    FX_DNNL(dnnl_memory_set_data_handle(plan->output, out));
    FX_TRY(run_steps(plan, 0, plan->n_forward_steps));
cleanup:
    return st;
}

fx_status fx_plan_run_backward(fx_net *net, fx_plan *plan, const float *grad_output, float *grad_pixels) {
    fx_status st = FX_STATUS_OK;
    const fx_node *in = &net->nodes[0];
    if (!plan->training) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "not a training plan");
    FX_DNNL(dnnl_memory_set_data_handle(plan->grad_output, (void *)grad_output));
    FX_DNNL(dnnl_memory_set_data_handle(plan->grad_input, grad_pixels));
    FX_TRY(run_steps(plan, plan->n_forward_steps, plan->n_steps));
    /* d pixel = d x * scale[c], since x = (pixel - mean[c]) * scale[c] */
    const size_t pixels = (size_t)plan->batch * in->h * in->w;
    for (size_t p = 0; p < pixels; ++p)
        for (int k = 0; k < in->c; ++k) grad_pixels[p * in->c + k] *= net->input_scale[k];
cleanup:
    return st;
}
