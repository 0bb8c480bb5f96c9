/*
 * net_backward.c - the backward pass of a training plan: gradients of the
 * network's output with respect to its input, on oneDNN's backward-data
 * primitives.
 *
 * Nodes are visited from the output back to the input. Each node owns a
 * gradient buffer in the layout of its output. A layer's backward primitive
 * writes the gradient of its input either straight into that input's buffer
 * (the first contribution) or into a temporary that a summing reorder adds
 * in (later contributions, for inputs read by several layers, such as the
 * shortcut of a residual block). Which case applies is fixed when the plan
 * is built, so the same steps run on every call and nothing needs zeroing.
 *
 * A scale/shift folded into its convolution shares the convolution's output
 * and gradient; the folded weights make the convolution's backward exact.
 *
 * This file has the backward builders of the kinds net_layers_forward.c
 * builds forward (the table in net_layers.c names them), and the start and
 * end of the pass; the loop over the nodes is the driver's (net_plan.c).
 * Builders of other files (net_resize.c) hand their input gradient to
 * fxi_backward_deliver.
 */
#include <stdlib.h>
#include <string.h>

#include "plan_internal.h"

/* The node whose gradient buffer `node` uses (a folded scale/shift uses its convolution's). */
static int canonical(const fx_net *net, int node) {
    return net->nodes[node].folded ? net->nodes[node].group : node;
}

/* Where a backward primitive producing layout `md` should write the gradient
 * of node `in`: its gradient buffer (first contribution, same layout) or a
 * new temporary. Returns the temporary, or NULL through *tmp. */
static fx_status target_for(fx_backward *b, int in, const_dnnl_memory_desc_t md, dnnl_memory_t *dst,
                            dnnl_memory_t *tmp) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    const int c = canonical(b->net, in);
    *tmp = NULL;
    if (!plan->diff[c]) FX_TRY(fxi_plan_new_memory(plan, fxi_plan_md_of(plan->node_mem[c]), NULL, &plan->diff[c]));
    if (!b->has_diff[c] && dnnl_memory_desc_equal(md, fxi_plan_md_of(plan->diff[c]))) {
        *dst = plan->diff[c];
    } else {
        FX_TRY(fxi_plan_new_memory(plan, md, NULL, tmp));
        *dst = *tmp;
    }
cleanup:
    return st;
}

fx_status fxi_backward_deliver(fx_backward *b, int in, dnnl_memory_t src) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    const int c = canonical(b->net, in);
    if (!plan->diff[c]) FX_TRY(fxi_plan_new_memory(plan, fxi_plan_md_of(plan->node_mem[c]), NULL, &plan->diff[c]));
    FX_TRY(fxi_plan_add_reorder(plan, src, fxi_plan_md_of(src), plan->diff[c], fxi_plan_md_of(plan->diff[c]),
                                b->has_diff[c]));
    b->has_diff[c] = 1;
cleanup:
    return st;
}

/* After a primitive wrote `dst` (from target_for): mark or deliver. */
static fx_status settle(fx_backward *b, int in, dnnl_memory_t tmp) {
    if (tmp) return fxi_backward_deliver(b, in, tmp);
    b->has_diff[canonical(b->net, in)] = 1;
    return FX_STATUS_OK;
}

/* Gradient of a sum's input: the leading corner of the sum's gradient; of a
   concat's input: its channels, from `channel` on. */
static fx_status slice_input_backward(fx_backward *b, int node, int in, int channel) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    dnnl_memory_desc_t sub = NULL, plain_md = NULL, flat_md = NULL;
    const fx_node *ni = &b->net->nodes[in];
    const int c = canonical(b->net, in);
    dnnl_dims_t dims, offsets = {0, channel, 0, 0};
    if (ni->flat && !b->net->nodes[node].flat) {
        /* a dense input of a spatial concat: its slice, (N, C, 1, 1), through a plain
           temporary viewed as (N, C) */
        fx_node spatial = *ni;
        spatial.flat = 0;
        spatial.h = spatial.w = 1;
        dnnl_memory_t tmp, view;
        void *handle = NULL;
        fxi_plan_node_dims(&spatial, plan->batch, dims);
        FX_DNNL(dnnl_memory_desc_create_submemory(&sub, fxi_plan_md_of(plan->diff[node]), dims, offsets));
        FX_TRY(fxi_plan_node_md(plan, &spatial, dnnl_nchw, dnnl_nc, &plain_md));
        FX_TRY(fxi_plan_new_memory(plan, plain_md, NULL, &tmp));
        FX_TRY(fxi_plan_add_reorder(plan, plan->diff[node], sub, tmp, plain_md, 0));
        FX_TRY(fxi_plan_node_md(plan, ni, dnnl_nchw, dnnl_nc, &flat_md));
        FX_DNNL(dnnl_memory_get_data_handle(tmp, &handle));
        FX_TRY(fxi_plan_new_memory(plan, flat_md, handle, &view));
        FX_TRY(fxi_backward_deliver(b, in, view));
        goto cleanup;
    }
    fxi_plan_node_dims(ni, plan->batch, dims);
    if (!plan->diff[c]) FX_TRY(fxi_plan_new_memory(plan, fxi_plan_md_of(plan->node_mem[c]), NULL, &plan->diff[c]));
    FX_DNNL(dnnl_memory_desc_create_submemory(&sub, fxi_plan_md_of(plan->diff[node]), dims, offsets));
    FX_TRY(fxi_plan_add_reorder(plan, plan->diff[node], sub, plan->diff[c], fxi_plan_md_of(plan->diff[c]),
                                b->has_diff[c]));
    b->has_diff[c] = 1;
cleanup:
    dnnl_memory_desc_destroy(sub);
    dnnl_memory_desc_destroy(plain_md);
    dnnl_memory_desc_destroy(flat_md);
    return st;
}

static fx_status data_backward(fx_backward *b, int id) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    const fx_node *n = &b->net->nodes[id];
    const fx_node *in = &b->net->nodes[n->inputs[0]];
    const int conv = n->kind == FX_LAYER_CONV;
    const_dnnl_primitive_desc_t fwd = plan->fwd_pd[id];
    dnnl_memory_desc_t diff_src_md = NULL, w_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t diff_dst, weights, dst, tmp;
    dnnl_dims_t w_dims;
    const int w_nd = fxi_plan_weight_dims(b->net, id, w_dims);
    FX_TRY(fxi_plan_node_md(plan, in, conv ? dnnl_nhwc : dnnl_format_tag_any, dnnl_format_tag_any, &diff_src_md));
    /* the backward kernels want their own weight layout: let oneDNN choose, reorder once */
    FX_DNNL(dnnl_memory_desc_create_with_tag(&w_md, w_nd, w_dims, fxi_plan_act_type(plan), dnnl_format_tag_any));
    FX_TRY(fxi_plan_new_attr(&attr));
    if (conv) {
        dnnl_dims_t strides, dil, pad_l, pad_r;
        fxi_plan_window(n, strides, dil, pad_l, pad_r);
        FX_DNNL(dnnl_convolution_backward_data_primitive_desc_create(
            &pd, plan->engine, dnnl_convolution_direct, diff_src_md, w_md, fxi_plan_pd_md(fwd, dnnl_query_dst_md),
            strides, dil, pad_l, pad_r, fwd, attr));
    } else {
        FX_DNNL(dnnl_inner_product_backward_data_primitive_desc_create(
            &pd, plan->engine, diff_src_md, w_md, fxi_plan_pd_md(fwd, dnnl_query_dst_md), fwd, attr));
    }
    FX_TRY(fxi_plan_as_layout(plan, plan->diff[canonical(b->net, id)], fxi_plan_pd_md(pd, dnnl_query_diff_dst_md),
                              &diff_dst));
    FX_TRY(fxi_plan_param_memory(plan, n->weight, w_nd, w_dims, fxi_plan_weight_tag(w_nd),
                                 fxi_plan_pd_md(pd, dnnl_query_weights_md), &weights));
    FX_TRY(target_for(b, n->inputs[0], fxi_plan_pd_md(pd, dnnl_query_diff_src_md), &dst, &tmp));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, dst}};
    FX_TRY(fxi_plan_add_step(plan, pd, args, 3, NULL));
    FX_TRY(settle(b, n->inputs[0], tmp));
cleanup:
    dnnl_memory_desc_destroy(diff_src_md);
    dnnl_memory_desc_destroy(w_md);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* Weight (and bias) gradients of a convolution or dense layer, left in the
 * user layout (out, in, kh, kw) / (out, in) in plan->grad_weight[id]. */
static fx_status weights_backward(fx_backward *b, int id) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    const fx_node *n = &b->net->nodes[id];
    const int conv = n->kind == FX_LAYER_CONV;
    const_dnnl_primitive_desc_t fwd = plan->fwd_pd[id];
    dnnl_memory_desc_t w_md = NULL, b_md = NULL, user_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t src, diff_dst, diff_w;
    dnnl_dims_t w_dims, b_dims = {n->c};
    const int w_nd = fxi_plan_weight_dims(b->net, id, w_dims);
    FX_DNNL(dnnl_memory_desc_create_with_tag(&w_md, w_nd, w_dims, fxi_plan_act_type(plan), dnnl_format_tag_any));
    if (n->bias) FX_DNNL(dnnl_memory_desc_create_with_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_a));
    FX_TRY(fxi_plan_new_attr(&attr));
    if (conv) {
        /* groups and dilation included: oneDNN's backward-weights takes the same window */
        dnnl_dims_t strides, dil, pad_l, pad_r;
        fxi_plan_window(n, strides, dil, pad_l, pad_r);
        FX_DNNL(dnnl_convolution_backward_weights_primitive_desc_create(
            &pd, plan->engine, dnnl_convolution_direct, fxi_plan_pd_md(fwd, dnnl_query_src_md), w_md, b_md,
            fxi_plan_pd_md(fwd, dnnl_query_dst_md), strides, dil, pad_l, pad_r, fwd, attr));
    } else {
        FX_DNNL(dnnl_inner_product_backward_weights_primitive_desc_create(
            &pd, plan->engine, fxi_plan_pd_md(fwd, dnnl_query_src_md), w_md, b_md,
            fxi_plan_pd_md(fwd, dnnl_query_dst_md), fwd, attr));
    }
    FX_TRY(fxi_plan_as_layout(plan, plan->node_mem[n->inputs[0]], fxi_plan_pd_md(pd, dnnl_query_src_md), &src));
    FX_TRY(fxi_plan_as_layout(plan, plan->diff[id], fxi_plan_pd_md(pd, dnnl_query_diff_dst_md), &diff_dst));
    FX_TRY(fxi_plan_new_memory(plan, fxi_plan_pd_md(pd, dnnl_query_diff_weights_md), NULL, &diff_w));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_w},
                              {DNNL_ARG_DIFF_BIAS, NULL}};
    int n_args = 3;
    if (n->bias) {
        FX_TRY(fxi_plan_new_memory(plan, b_md, NULL, &plan->grad_bias[id]));
        args[n_args++].memory = plan->grad_bias[id];
    }
    FX_TRY(fxi_plan_add_step(plan, pd, args, n_args, NULL));
    FX_DNNL(dnnl_memory_desc_create_with_tag(&user_md, w_nd, w_dims, dnnl_f32, fxi_plan_weight_tag(w_nd)));
    FX_TRY(fxi_plan_new_memory(plan, user_md, NULL, &plan->grad_weight[id]));
    FX_TRY(fxi_plan_add_reorder(plan, diff_w, fxi_plan_md_of(diff_w), plan->grad_weight[id], user_md, 0));
cleanup:
    dnnl_memory_desc_destroy(w_md);
    dnnl_memory_desc_destroy(b_md);
    dnnl_memory_desc_destroy(user_md);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

fx_status fxi_backward_conv_or_dense(fx_backward *b, int id) {
    fx_status st = FX_STATUS_OK;
    if (b->plan->training == FX_TRAIN_PARAMETERS) FX_TRY(weights_backward(b, id));
    FX_TRY(data_backward(b, id));
cleanup:
    return st;
}

fx_status fxi_backward_sum(fx_backward *b, int id) {
    fx_status st = FX_STATUS_OK;
    FX_TRY(slice_input_backward(b, id, b->net->nodes[id].inputs[0], 0));
    FX_TRY(slice_input_backward(b, id, b->net->nodes[id].inputs[1], 0));
cleanup:
    return st;
}

/* The concat's output (and gradient) is plain channels-last (net_layers_forward.c):
   each input's gradient is a sub-memory at its channel offset. */
fx_status fxi_backward_concat(fx_backward *b, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &b->net->nodes[id];
    FX_TRY(slice_input_backward(b, id, n->inputs[0], 0));
    FX_TRY(slice_input_backward(b, id, n->inputs[1], b->net->nodes[n->inputs[0]].c));
cleanup:
    return st;
}

/* One input's gradient of y = in * other: dy * other, summed over the rows
 * and columns when `in` is the gate broadcast over them. The common case
 * (same shape and rank) writes straight into the input's gradient; the others
 * go through a plain temporary: the binary product, the reduction, and a view
 * of rank 2 for a dense gate. */
static fx_status mul_input_backward(fx_backward *b, int id, int in, int other) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    const fx_net *net = b->net;
    const fx_node *n = &net->nodes[id], *ni = &net->nodes[in];
    dnnl_memory_desc_t any_md = NULL, plain_md = NULL, red_md = NULL, flat_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL, red_pd = NULL;
    dnnl_memory_t factor = plan->node_mem[other], dst, tmp, prod, red;
    const int reduce = ni->h * ni->w == 1 && n->h * n->w > 1;
    if (!n->flat) FX_TRY(fxi_plan_as_4d(plan, &net->nodes[other], factor, &factor));
    FX_TRY(fxi_plan_new_attr(&attr));
    if (!reduce && ni->flat == n->flat) {
        FX_TRY(fxi_plan_node_md(plan, n, dnnl_format_tag_any, dnnl_format_tag_any, &any_md));
        FX_DNNL(dnnl_binary_primitive_desc_create(&pd, plan->engine, dnnl_binary_mul, fxi_plan_md_of(plan->diff[id]),
                                                  fxi_plan_md_of(factor), any_md, attr));
        FX_TRY(target_for(b, in, fxi_plan_pd_md(pd, dnnl_query_dst_md), &dst, &tmp));
        dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC_0, plan->diff[id]}, {DNNL_ARG_SRC_1, factor}, {DNNL_ARG_DST, dst}};
        FX_TRY(fxi_plan_add_step(plan, pd, args, 3, NULL));
        FX_TRY(settle(b, in, tmp));
        goto cleanup;
    }
    FX_TRY(fxi_plan_node_md(plan, n, dnnl_nchw, dnnl_nc, &plain_md));
    FX_DNNL(dnnl_binary_primitive_desc_create(&pd, plan->engine, dnnl_binary_mul, fxi_plan_md_of(plan->diff[id]),
                                              fxi_plan_md_of(factor), plain_md, attr));
    FX_TRY(fxi_plan_new_memory(plan, plain_md, NULL, &prod));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC_0, plan->diff[id]}, {DNNL_ARG_SRC_1, factor}, {DNNL_ARG_DST, prod}};
    FX_TRY(fxi_plan_add_step(plan, pd, args, 3, NULL));
    red = prod;
    if (reduce) {
        fx_node gate = *n;
        gate.h = gate.w = 1;
        FX_TRY(fxi_plan_node_md(plan, &gate, dnnl_nchw, dnnl_nc, &red_md));
        FX_DNNL(dnnl_reduction_primitive_desc_create(&red_pd, plan->engine, dnnl_reduction_sum, plain_md, red_md,
                                                     0.0f, 0.0f, attr));
        FX_TRY(fxi_plan_new_memory(plan, red_md, NULL, &red));
        dnnl_exec_arg_t rargs[] = {{DNNL_ARG_SRC, prod}, {DNNL_ARG_DST, red}};
        FX_TRY(fxi_plan_add_step(plan, red_pd, rargs, 2, NULL));
    }
    if (ni->flat) { /* a dense input's gradient has rank 2: view the (N, C, 1, 1) values so */
        void *handle = NULL;
        FX_TRY(fxi_plan_node_md(plan, ni, dnnl_nchw, dnnl_nc, &flat_md));
        FX_DNNL(dnnl_memory_get_data_handle(red, &handle));
        FX_TRY(fxi_plan_new_memory(plan, flat_md, handle, &red));
    }
    FX_TRY(fxi_backward_deliver(b, in, red));
cleanup:
    dnnl_memory_desc_destroy(any_md);
    dnnl_memory_desc_destroy(plain_md);
    dnnl_memory_desc_destroy(red_md);
    dnnl_memory_desc_destroy(flat_md);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_desc_destroy(red_pd);
    return st;
}

/* y = a * b: d a = dy * b, d b = dy * a (a gate's summed over rows and columns). */
fx_status fxi_backward_mul(fx_backward *b, int id) {
    fx_status st = FX_STATUS_OK;
    int full, other;
    fxi_plan_mul_roles(b->net, id, &full, &other);
    FX_TRY(mul_input_backward(b, id, full, other));
    FX_TRY(mul_input_backward(b, id, other, full));
cleanup:
    return st;
}

fx_status fxi_backward_pool(fx_backward *b, int id) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    const fx_node *n = &b->net->nodes[id];
    const_dnnl_primitive_desc_t fwd = plan->fwd_pd[id];
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t diff_dst, dst, tmp;
    dnnl_dims_t strides, kernel = {n->kernel[0], n->kernel[1]}, dil, pad_l, pad_r;
    dnnl_alg_kind_t alg = n->kind == FX_LAYER_MAX_POOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    fxi_plan_window(n, strides, dil, pad_l, pad_r);
    FX_TRY(fxi_plan_new_attr(&attr));
    FX_DNNL(dnnl_pooling_backward_primitive_desc_create(&pd, plan->engine, alg, fxi_plan_pd_md(fwd, dnnl_query_src_md),
                                                        fxi_plan_pd_md(fwd, dnnl_query_dst_md), strides, kernel, dil,
                                                        pad_l, pad_r, fwd, attr));
    FX_TRY(fxi_plan_as_layout(plan, plan->diff[id], fxi_plan_pd_md(pd, dnnl_query_diff_dst_md), &diff_dst));
    FX_TRY(target_for(b, n->inputs[0], fxi_plan_pd_md(pd, dnnl_query_diff_src_md), &dst, &tmp));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, dst}, {DNNL_ARG_WORKSPACE, NULL}};
    int n_args = 2;
    if (plan->workspace[id]) args[n_args++].memory = plan->workspace[id];
    FX_TRY(fxi_plan_add_step(plan, pd, args, n_args, NULL));
    FX_TRY(settle(b, n->inputs[0], tmp));
cleanup:
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

fx_status fxi_backward_elementwise(fx_backward *b, int id) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    const fx_node *n = &b->net->nodes[id];
    const_dnnl_primitive_desc_t fwd = plan->fwd_pd[id];
    const int nd = n->flat ? 2 : 4;
    dnnl_memory_desc_t chan_md = NULL, any_md = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t diff_dst, dst, tmp, slope = NULL, diff_slope = NULL;
    dnnl_dims_t chan_dims = {1, n->c, 1, 1};
    FX_DNNL(dnnl_memory_desc_create_with_tag(&chan_md, nd, chan_dims, dnnl_f32, nd == 4 ? dnnl_abcd : dnnl_ab));
    FX_TRY(fxi_plan_node_md(plan, n, dnnl_format_tag_any, dnnl_format_tag_any, &any_md));
    FX_TRY(fxi_plan_new_attr(&attr));
    dnnl_exec_arg_t args[6];
    int n_args = 0;
    if (n->kind == FX_LAYER_RELU || n->kind == FX_LAYER_LEAKY_RELU || n->kind == FX_LAYER_SIGMOID) {
        /* from the forward's output where the algorithm allows (as the forward chose), else its input */
        const fx_eltwise_alg e = fxi_plan_eltwise_alg(n, 1);
        dnnl_memory_t data = e.use_dst ? plan->node_mem[id] : plan->node_mem[n->inputs[0]];
        const_dnnl_memory_desc_t md = fxi_plan_md_of(data);
        FX_DNNL(dnnl_eltwise_backward_primitive_desc_create(&pd, plan->engine, e.alg, md, md, md, e.alpha, 0.0f,
                                                            fwd, attr));
        args[n_args++] = (dnnl_exec_arg_t){e.use_dst ? DNNL_ARG_DST : DNNL_ARG_SRC, data};
    } else if (n->kind == FX_LAYER_PRELU) {
        const_dnnl_memory_desc_t src_md = fxi_plan_md_of(plan->node_mem[n->inputs[0]]);
        FX_DNNL(dnnl_prelu_backward_primitive_desc_create(&pd, plan->engine, src_md,
                                                          fxi_plan_pd_md(fwd, dnnl_query_weights_md), src_md,
                                                          fxi_plan_pd_md(fwd, dnnl_query_weights_md),
                                                          fxi_plan_pd_md(fwd, dnnl_query_dst_md), fwd, attr));
        FX_TRY(fxi_plan_param_memory(plan, n->weight, nd, chan_dims, nd == 4 ? dnnl_abcd : dnnl_ab,
                                     fxi_plan_pd_md(pd, dnnl_query_weights_md), &slope));
        FX_TRY(fxi_plan_new_memory(plan, fxi_plan_pd_md(pd, dnnl_query_diff_weights_md), NULL, &diff_slope));
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, plan->node_mem[n->inputs[0]]};
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, slope};
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, diff_slope};
    } else { /* standalone scale/shift: d input = d output * scale */
        FX_DNNL(dnnl_binary_primitive_desc_create(&pd, plan->engine, dnnl_binary_mul,
                                                  fxi_plan_md_of(plan->diff[id]), chan_md, any_md, attr));
        FX_TRY(fxi_plan_param_memory(plan, n->weight, nd, chan_dims, nd == 4 ? dnnl_abcd : dnnl_ab, NULL, &slope));
        FX_TRY(target_for(b, n->inputs[0], fxi_plan_pd_md(pd, dnnl_query_dst_md), &dst, &tmp));
        dnnl_exec_arg_t mul[] = {{DNNL_ARG_SRC_0, plan->diff[id]}, {DNNL_ARG_SRC_1, slope}, {DNNL_ARG_DST, dst}};
        FX_TRY(fxi_plan_add_step(plan, pd, mul, 3, NULL));
        FX_TRY(settle(b, n->inputs[0], tmp));
        goto cleanup;
    }
    FX_TRY(fxi_plan_as_layout(plan, plan->diff[id], fxi_plan_pd_md(pd, dnnl_query_diff_dst_md), &diff_dst));
    FX_TRY(target_for(b, n->inputs[0], fxi_plan_pd_md(pd, dnnl_query_diff_src_md), &dst, &tmp));
    args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, diff_dst};
    args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, dst};
    FX_TRY(fxi_plan_add_step(plan, pd, args, n_args, NULL));
    FX_TRY(settle(b, n->inputs[0], tmp));
cleanup:
    dnnl_memory_desc_destroy(chan_md);
    dnnl_memory_desc_destroy(any_md);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* A reshape's input gradient is its output gradient read in the input's shape. */
fx_status fxi_backward_reshape(fx_backward *b, int id) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    const fx_node *n = &b->net->nodes[id];
    dnnl_memory_desc_t plain_out = NULL, plain_in = NULL;
    dnnl_memory_t diff_plain, view;
    void *handle = NULL;
    FX_TRY(fxi_plan_node_md(plan, n, dnnl_nchw, dnnl_nc, &plain_out));
    FX_TRY(fxi_plan_as_layout(plan, plan->diff[id], plain_out, &diff_plain));
    FX_TRY(fxi_plan_node_md(plan, &b->net->nodes[n->inputs[0]], dnnl_nchw, dnnl_nc, &plain_in));
    FX_DNNL(dnnl_memory_get_data_handle(diff_plain, &handle));
    FX_TRY(fxi_plan_new_memory(plan, plain_in, handle, &view));
    FX_TRY(fxi_backward_deliver(b, n->inputs[0], view));
cleanup:
    dnnl_memory_desc_destroy(plain_out);
    dnnl_memory_desc_destroy(plain_in);
    return st;
}

fx_status fx_plan_copy_parameter_gradients(const fx_net *net, const fx_plan *plan, float **weight_grads,
                                           float **bias_grads) {
    fx_status st = FX_STATUS_OK;
    for (int j = 0; j < net->n_nodes; ++j) {
        void *src = NULL;
        if (weight_grads && weight_grads[j] && plan->grad_weight[j]) {
            FX_DNNL(dnnl_memory_get_data_handle(plan->grad_weight[j], &src));
            memcpy(weight_grads[j], src, dnnl_memory_desc_get_size(fxi_plan_md_of(plan->grad_weight[j])));
        }
        if (bias_grads && bias_grads[j] && plan->grad_bias[j]) {
            FX_DNNL(dnnl_memory_get_data_handle(plan->grad_bias[j], &src));
            memcpy(bias_grads[j], src, dnnl_memory_desc_get_size(fxi_plan_md_of(plan->grad_bias[j])));
        }
    }
cleanup:
    return st;
}

fx_status fxi_backward_begin(fx_backward *b) {
    fx_status st = FX_STATUS_OK;
    const fx_net *net = b->net;
    fx_plan *plan = b->plan;
    dnnl_memory_desc_t md = NULL;
    b->has_diff = calloc((size_t)net->n_nodes, 1);
    if (!b->has_diff) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate the backward pass");

    /* the caller's gradient of the output (plain NCHW or NC) seeds the pass */
    const int out = canonical(net, net->output);
    FX_TRY(fxi_plan_node_md_typed(&net->nodes[net->output], plan->batch, dnnl_f32, dnnl_nchw, dnnl_nc, &md));
    FX_DNNL(dnnl_memory_create(&plan->grad_output, md, plan->engine, DNNL_MEMORY_NONE));
    FX_TRY(fxi_plan_new_memory(plan, fxi_plan_md_of(plan->node_mem[out]), NULL, &plan->diff[out]));
    FX_TRY(fxi_plan_add_reorder(plan, plan->grad_output, md, plan->diff[out], fxi_plan_md_of(plan->diff[out]), 0));
    b->has_diff[out] = 1;
cleanup:
    dnnl_memory_desc_destroy(md);
    return st;
}

fx_status fxi_backward_finish(fx_backward *b) {
    fx_status st = FX_STATUS_OK;
    const fx_net *net = b->net;
    fx_plan *plan = b->plan;
    dnnl_memory_desc_t md = NULL;
    /* the input's gradient leaves as plain NHWC float32 in the caller's buffer */
    FX_TRY(fxi_plan_node_md_typed(&net->nodes[0], plan->batch, dnnl_f32, dnnl_nhwc, dnnl_nc, &md));
    FX_DNNL(dnnl_memory_create(&plan->grad_input, md, plan->engine, DNNL_MEMORY_NONE));
    if (!b->has_diff[0]) {
        st = fx_fail(FX_STATUS_UNSUPPORTED, "the network's output does not depend on its input");
        goto cleanup;
    }
    FX_TRY(fxi_plan_add_reorder(plan, plan->diff[0], fxi_plan_md_of(plan->diff[0]), plan->grad_input, md, 0));
cleanup:
    dnnl_memory_desc_destroy(md);
    return st;
}
