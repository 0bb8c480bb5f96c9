/*
 * net_layers_forward.c - the forward builders of the layer kinds that map to
 * one oneDNN primitive each: conv and dense (with their fused post-ops),
 * pooling, relu/leaky_relu/sigmoid/prelu/scale_shift, sum, mul (binary,
 * broadcasting a gate), concat, and reshape (a view). The resize
 * layer has its own file (net_resize.c). net_layers.c lists which builder
 * serves which kind; the driver (net_plan.c) calls them through that table.
 *
 * Convolution activations are channels-last (NHWC), other layers keep their
 * input's layout, and a reorder is inserted only where a consumer wants
 * another layout. Weights are reordered once, here. A training plan gets no
 * post-op fusion (every layer's output is kept) and keeps each node's
 * forward primitive descriptor as the hint of its backward primitive.
 */
#include <stdlib.h>
#include <string.h>

#include "plan_internal.h"

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
        } else if (n->kind == FX_LAYER_LEAKY_RELU) {
            FX_DNNL(dnnl_post_ops_append_eltwise(po->ops, dnnl_eltwise_relu, n->alpha, 0.0f));
        } else if (n->kind == FX_LAYER_SIGMOID) {
            FX_DNNL(dnnl_post_ops_append_eltwise(po->ops, dnnl_eltwise_logistic, 0.0f, 0.0f));
        } else if (n->kind == FX_LAYER_PRELU) {
            FX_DNNL(dnnl_post_ops_append_prelu(po->ops, 1 << 1));
            dnnl_dims_t dims = {n->c};
            dnnl_memory_t slope = NULL;
            FX_TRY(fxi_plan_param_memory(plan, n->weight, 1, dims, dnnl_a, NULL, &slope));
            po->args[po->n_args++] =
                (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_WEIGHTS, slope};
        } else { /* FX_LAYER_SUM */
            /* the operand computed outside this group is the residual partner */
            int other = net->nodes[n->inputs[0]].group == head ? n->inputs[1] : n->inputs[0];
            /* the partner's chain is not complete before its group ran; the
               group containing this sum always runs after it (see net_fuse.c) */
            dnnl_memory_t partner = plan->node_mem[other];
            FX_DNNL(dnnl_post_ops_append_binary(po->ops, dnnl_binary_add, fxi_plan_md_of(partner)));
            po->args[po->n_args++] =
                (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1, partner};
            po->sum_partner = other;
        }
    }
cleanup:
    return st;
}

/* ---- one group per layer kind --------------------------------------------- */

fx_status fxi_forward_conv_or_dense(fx_plan *plan, const fx_net *net, int head) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[head];
    const fx_node *in = &net->nodes[n->inputs[0]];
    const int conv = n->kind == FX_LAYER_CONV;
    /* int8 mode: quantised input and weights, float32 output (net_int8.c) */
    const int q8 = plan->math == FX_MATH_INT8 && !plan->training && fxi_int8_conv(net, head);
    dnnl_memory_t q8_src_scale = NULL, q8_w_scale = NULL;
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
    if (q8) FX_TRY(fxi_int8_check(net));
    if (q8) FX_TRY(fxi_plan_node_md_typed(in, plan->batch, fxi_int8_src_type(net, head), act, dnnl_format_tag_any,
                                          &src_md));
    else FX_TRY(fxi_plan_node_md(plan, in, act, dnnl_format_tag_any, &src_md));
    FX_TRY(fxi_plan_node_md(plan, n, act, dnnl_format_tag_any, &dst_md));
    const int w_nd = fxi_plan_weight_dims(net, head, w_dims);
    FX_DNNL(dnnl_memory_desc_create_with_tag(&w_md, w_nd, w_dims, q8 ? dnnl_s8 : fxi_plan_act_type(plan),
                                             dnnl_format_tag_any));
    if (n->bias) FX_DNNL(dnnl_memory_desc_create_with_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_a));
    FX_TRY(build_post_ops(plan, net, head, &po));
    FX_TRY(fxi_plan_new_attr(&attr));
    FX_DNNL(dnnl_primitive_attr_set_post_ops(attr, po.ops));
    if (q8) FX_TRY(fxi_int8_attr(attr, w_nd == 5));

    /* With a fused residual sum, ask for the partner's layout so the binary
       post-op reads both operands the same way; fall back to any layout. */
    const_dnnl_memory_desc_t dst_want = dst_md;
    if (po.sum_partner >= 0) dst_want = fxi_plan_md_of(plan->node_mem[po.sum_partner]);
    for (int attempt = 0; attempt < 2; ++attempt) {
        dnnl_status_t s;
        if (conv) {
            dnnl_dims_t strides, dil, pad_l, pad_r;
            fxi_plan_window(n, strides, dil, pad_l, pad_r);
            s = dnnl_convolution_forward_primitive_desc_create(
                &pd, plan->engine, prop_kind(plan), dnnl_convolution_direct, src_md, w_md,
                b_md, dst_want, strides, dil, pad_l, pad_r, attr);
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
    if (q8) {
        FX_TRY(fxi_int8_input(plan, net, head, plan->node_mem[n->inputs[0]], fxi_plan_pd_md(pd, dnnl_query_src_md),
                              &src, &q8_src_scale));
        FX_TRY(fxi_int8_weights(plan, net, head, w_nd, w_dims, fxi_plan_pd_md(pd, dnnl_query_weights_md), &weights,
                                &q8_w_scale));
    } else {
        FX_TRY(fxi_plan_as_layout(plan, plan->node_mem[n->inputs[0]], fxi_plan_pd_md(pd, dnnl_query_src_md),
                                  &src));
        FX_TRY(fxi_plan_param_memory(plan, n->weight, w_nd, w_dims, fxi_plan_weight_tag(w_nd),
                                     fxi_plan_pd_md(pd, dnnl_query_weights_md), &weights));
    }
    if (n->bias)
        FX_TRY(fxi_plan_param_memory(plan, n->bias, 1, b_dims, dnnl_a,
                                     dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), &bias));
    FX_TRY(fxi_plan_new_memory(plan, fxi_plan_pd_md(pd, dnnl_query_dst_md), NULL, &dst));

    dnnl_exec_arg_t args[16];
    int n_args = 0;
    args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, src};
    args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, weights};
    if (bias) args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, bias};
    args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_DST, dst};
    for (int i = 0; i < po.n_args; ++i) args[n_args++] = po.args[i];
    if (q8) {
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC, q8_src_scale};
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS, q8_w_scale};
    }
    FX_TRY(fxi_plan_add_step(plan, pd, args, n_args, NULL));
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

fx_status fxi_forward_pool(fx_plan *plan, const fx_net *net, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[id];
    dnnl_memory_t src = plan->node_mem[n->inputs[0]], dst;
    dnnl_memory_desc_t dst_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_dims_t strides, kernel = {n->kernel[0], n->kernel[1]}, dil, pad_l, pad_r;
    dnnl_alg_kind_t alg = n->kind == FX_LAYER_MAX_POOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    fxi_plan_window(n, strides, dil, pad_l, pad_r);

    FX_TRY(fxi_plan_node_md(plan, n, dnnl_format_tag_any, dnnl_format_tag_any, &dst_md));
    FX_TRY(fxi_plan_new_attr(&attr));
    FX_DNNL(dnnl_pooling_forward_primitive_desc_create(&pd, plan->engine, prop_kind(plan), alg,
                                                       fxi_plan_md_of(src), dst_md, strides, kernel, dil, pad_l,
                                                       pad_r, attr));
    FX_TRY(fxi_plan_new_memory(plan, fxi_plan_pd_md(pd, dnnl_query_dst_md), NULL, &dst));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_WORKSPACE, NULL}};
    int n_args = 2;
    const_dnnl_memory_desc_t ws = fxi_plan_pd_md(pd, dnnl_query_workspace_md);
    if (plan->training && dnnl_memory_desc_get_size(ws) > 0) {
        FX_TRY(fxi_plan_new_memory(plan, ws, NULL, &plan->workspace[id]));
        args[n_args++].memory = plan->workspace[id];
    }
    FX_TRY(fxi_plan_add_step(plan, pd, args, n_args, NULL));
    FX_TRY(keep_forward_pd(plan, id, pd));
    plan->node_mem[id] = dst;
cleanup:
    dnnl_memory_desc_destroy(dst_md);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* relu, leaky_relu, sigmoid, prelu and scale/shift that could not be fused into a convolution. */
fx_status fxi_forward_elementwise(fx_plan *plan, const fx_net *net, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[id];
    dnnl_memory_t src = plan->node_mem[n->inputs[0]], dst, p0 = NULL, p1 = NULL;
    dnnl_memory_desc_t dst_md = NULL, chan_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_dims_t chan_dims = {1, n->c, 1, 1};
    int nd = n->flat ? 2 : 4;

    FX_TRY(fxi_plan_node_md(plan, n, dnnl_format_tag_any, dnnl_format_tag_any, &dst_md));
    FX_TRY(fxi_plan_new_attr(&attr));
    FX_DNNL(dnnl_memory_desc_create_with_tag(&chan_md, nd, chan_dims, dnnl_f32, nd == 4 ? dnnl_abcd : dnnl_ab));
    if (n->kind == FX_LAYER_RELU || n->kind == FX_LAYER_LEAKY_RELU || n->kind == FX_LAYER_SIGMOID) {
        /* the use-dst variants let the backward pass work from the output alone */
        const fx_eltwise_alg e = fxi_plan_eltwise_alg(n, plan->training);
        FX_DNNL(dnnl_eltwise_forward_primitive_desc_create(&pd, plan->engine, prop_kind(plan), e.alg,
                                                           fxi_plan_md_of(src), dst_md, e.alpha, 0.0f, attr));
    } else if (n->kind == FX_LAYER_PRELU) {
        FX_DNNL(dnnl_prelu_forward_primitive_desc_create(&pd, plan->engine, prop_kind(plan),
                                                         fxi_plan_md_of(src), chan_md, dst_md, attr));
        FX_TRY(fxi_plan_param_memory(plan, n->weight, nd, chan_dims, nd == 4 ? dnnl_abcd : dnnl_ab,
                                     fxi_plan_pd_md(pd, dnnl_query_weights_md), &p0));
    } else { /* scale_shift: binary multiply, then a binary-add post-op */
        FX_DNNL(dnnl_post_ops_create(&ops));
        FX_DNNL(dnnl_post_ops_append_binary(ops, dnnl_binary_add, chan_md));
        FX_DNNL(dnnl_primitive_attr_set_post_ops(attr, ops));
        FX_DNNL(dnnl_binary_primitive_desc_create(&pd, plan->engine, dnnl_binary_mul, fxi_plan_md_of(src),
                                                  chan_md, dst_md, attr));
        FX_TRY(fxi_plan_param_memory(plan, n->weight, nd, chan_dims, nd == 4 ? dnnl_abcd : dnnl_ab, NULL, &p0));
        FX_TRY(fxi_plan_param_memory(plan, n->bias, nd, chan_dims, nd == 4 ? dnnl_abcd : dnnl_ab, NULL, &p1));
    }
    FX_TRY(fxi_plan_new_memory(plan, fxi_plan_pd_md(pd, dnnl_query_dst_md), NULL, &dst));
    dnnl_exec_arg_t args[4];
    int n_args = 0;
    args[n_args++] = (dnnl_exec_arg_t){n->kind == FX_LAYER_SCALE_SHIFT ? DNNL_ARG_SRC_0 : DNNL_ARG_SRC, src};
    args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_DST, dst};
    if (n->kind == FX_LAYER_PRELU) args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, p0};
    if (n->kind == FX_LAYER_SCALE_SHIFT) {
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SRC_1, p0};
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, p1};
    }
    FX_TRY(fxi_plan_add_step(plan, pd, args, n_args, NULL));
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

/* Reorder `src` into the leading corner of `dst` (a zeroed tensor), adding. */
static fx_status accumulate_into(fx_plan *plan, dnnl_memory_t src, dnnl_memory_t dst) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_desc_t sub = NULL;
    dnnl_dims_t offsets = {0, 0, 0, 0};
    const dnnl_dims_t *dims = NULL;
    FX_DNNL(dnnl_memory_desc_query(fxi_plan_md_of(src), dnnl_query_dims, &dims));
    FX_DNNL(dnnl_memory_desc_create_submemory(&sub, fxi_plan_md_of(dst), *dims, offsets));
    FX_TRY(fxi_plan_add_reorder(plan, src, fxi_plan_md_of(src), dst, sub, 1));
cleanup:
    dnnl_memory_desc_destroy(sub);
    return st;
}

fx_status fxi_forward_sum(fx_plan *plan, const fx_net *net, int id) {
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
        FX_TRY(fxi_plan_node_md(plan, n, dnnl_format_tag_any, dnnl_format_tag_any, &dst_md));
        FX_TRY(fxi_plan_new_attr(&attr));
        FX_DNNL(dnnl_binary_primitive_desc_create(&pd, plan->engine, dnnl_binary_add, fxi_plan_md_of(a),
                                                  fxi_plan_md_of(b), dst_md, attr));
        FX_TRY(fxi_plan_new_memory(plan, fxi_plan_pd_md(pd, dnnl_query_dst_md), NULL, &dst));
        dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, dst}};
        FX_TRY(fxi_plan_add_step(plan, pd, args, 3, NULL));
    } else {
        /* Zero-padded sum (dlib's add_prev on differently shaped inputs):
           clear a channels-last buffer, then add each input into its leading corner. */
        FX_TRY(fxi_plan_node_md(plan, n, dnnl_nhwc, dnnl_nc, &dst_md));
        FX_TRY(fxi_plan_new_memory(plan, dst_md, NULL, &dst));
        FX_TRY(fxi_plan_add_step(plan, NULL, NULL, 0, dst));
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

/* a * b: one binary primitive, broadcasting a gate over the rows and columns. */
fx_status fxi_forward_mul(fx_plan *plan, const fx_net *net, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[id];
    dnnl_memory_desc_t dst_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t src0, src1, dst;
    int full, other;
    fxi_plan_mul_roles(net, id, &full, &other);
    /* both operands of the rank of the product (a dense gate is viewed as N x C x 1 x 1) */
    src0 = plan->node_mem[full];
    src1 = plan->node_mem[other];
    if (!n->flat) {
        FX_TRY(fxi_plan_as_4d(plan, &net->nodes[full], src0, &src0));
        FX_TRY(fxi_plan_as_4d(plan, &net->nodes[other], src1, &src1));
    }
    FX_TRY(fxi_plan_node_md(plan, n, dnnl_format_tag_any, dnnl_format_tag_any, &dst_md));
    FX_TRY(fxi_plan_new_attr(&attr));
    FX_DNNL(dnnl_binary_primitive_desc_create(&pd, plan->engine, dnnl_binary_mul, fxi_plan_md_of(src0),
                                              fxi_plan_md_of(src1), dst_md, attr));
    FX_TRY(fxi_plan_new_memory(plan, fxi_plan_pd_md(pd, dnnl_query_dst_md), NULL, &dst));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC_0, src0}, {DNNL_ARG_SRC_1, src1}, {DNNL_ARG_DST, dst}};
    FX_TRY(fxi_plan_add_step(plan, pd, args, 3, NULL));
    plan->node_mem[id] = dst;
cleanup:
    dnnl_memory_desc_destroy(dst_md);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* a and b stacked along channels, into a channels-last (plain) buffer so that
   the backward pass can read each input's slice as a sub-memory at any
   channel offset. */
fx_status fxi_forward_concat(fx_plan *plan, const fx_net *net, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[id];
    dnnl_memory_desc_t dst_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t a = plan->node_mem[n->inputs[0]], b = plan->node_mem[n->inputs[1]], dst;
    if (!n->flat) { /* a dense input beside a spatial one: viewed as N x C x 1 x 1 */
        FX_TRY(fxi_plan_as_4d(plan, &net->nodes[n->inputs[0]], a, &a));
        FX_TRY(fxi_plan_as_4d(plan, &net->nodes[n->inputs[1]], b, &b));
    }
    const_dnnl_memory_desc_t srcs[2] = {fxi_plan_md_of(a), fxi_plan_md_of(b)};
    FX_TRY(fxi_plan_node_md(plan, n, dnnl_nhwc, dnnl_nc, &dst_md));
    FX_TRY(fxi_plan_new_attr(&attr));
    FX_DNNL(dnnl_concat_primitive_desc_create(&pd, plan->engine, dst_md, 2, 1, srcs, attr));
    FX_TRY(fxi_plan_new_memory(plan, dst_md, NULL, &dst));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_MULTIPLE_SRC, a}, {DNNL_ARG_MULTIPLE_SRC + 1, b}, {DNNL_ARG_DST, dst}};
    FX_TRY(fxi_plan_add_step(plan, pd, args, 3, NULL));
    plan->node_mem[id] = dst;
cleanup:
    dnnl_memory_desc_destroy(dst_md);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* A reshape is a view: the input in plain row-major order (reordered there
   if needed), read through a memory descriptor of the new shape. */
fx_status fxi_forward_reshape(fx_plan *plan, const fx_net *net, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[id];
    dnnl_memory_desc_t plain_md = NULL, view_md = NULL;
    dnnl_memory_t plain, view;
    void *handle = NULL;
    FX_TRY(fxi_plan_node_md(plan, &net->nodes[n->inputs[0]], dnnl_nchw, dnnl_nc, &plain_md));
    FX_TRY(fxi_plan_as_layout(plan, plan->node_mem[n->inputs[0]], plain_md, &plain));
    FX_TRY(fxi_plan_node_md(plan, n, dnnl_nchw, dnnl_nc, &view_md));
    FX_DNNL(dnnl_memory_get_data_handle(plain, &handle));
    FX_TRY(fxi_plan_new_memory(plan, view_md, handle, &view));
    plan->node_mem[id] = view;
cleanup:
    dnnl_memory_desc_destroy(plain_md);
    dnnl_memory_desc_destroy(view_md);
    return st;
}
