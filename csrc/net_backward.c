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

/* Gradient of a sum's input: the leading corner of the sum's gradient. */
static fx_status sum_input_backward(fx_backward *b, int node, int in) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    dnnl_memory_desc_t sub = NULL;
    const int c = canonical(b->net, in);
    dnnl_dims_t dims, offsets = {0, 0, 0, 0};
    fxi_plan_node_dims(&b->net->nodes[in], plan->batch, dims);
    if (!plan->diff[c]) FX_TRY(fxi_plan_new_memory(plan, fxi_plan_md_of(plan->node_mem[c]), NULL, &plan->diff[c]));
    FX_DNNL(dnnl_memory_desc_create_submemory(&sub, fxi_plan_md_of(plan->diff[node]), dims, offsets));
    FX_TRY(fxi_plan_add_reorder(plan, plan->diff[node], sub, plan->diff[c], fxi_plan_md_of(plan->diff[c]),
                                b->has_diff[c]));
    b->has_diff[c] = 1;
cleanup:
    dnnl_memory_desc_destroy(sub);
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
        dnnl_dims_t strides = {n->stride[0], n->stride[1]}, dil = {0, 0};
        dnnl_dims_t pad = {n->padding[0], n->padding[1]};
        FX_DNNL(dnnl_convolution_backward_data_primitive_desc_create(
            &pd, plan->engine, dnnl_convolution_direct, diff_src_md, w_md, fxi_plan_pd_md(fwd, dnnl_query_dst_md),
            strides, dil, pad, pad, fwd, attr));
    } else {
        FX_DNNL(dnnl_inner_product_backward_data_primitive_desc_create(
            &pd, plan->engine, diff_src_md, w_md, fxi_plan_pd_md(fwd, dnnl_query_dst_md), fwd, attr));
    }
    FX_TRY(fxi_plan_as_layout(plan, plan->diff[canonical(b->net, id)], fxi_plan_pd_md(pd, dnnl_query_diff_dst_md),
                              &diff_dst));
    FX_TRY(fxi_plan_param_memory(plan, n->weight, w_nd, w_dims, w_nd == 4 ? dnnl_oihw : dnnl_ab,
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
        dnnl_dims_t strides = {n->stride[0], n->stride[1]}, dil = {0, 0};
        dnnl_dims_t pad = {n->padding[0], n->padding[1]};
        FX_DNNL(dnnl_convolution_backward_weights_primitive_desc_create(
            &pd, plan->engine, dnnl_convolution_direct, fxi_plan_pd_md(fwd, dnnl_query_src_md), w_md, b_md,
            fxi_plan_pd_md(fwd, dnnl_query_dst_md), strides, dil, pad, pad, fwd, attr));
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
    FX_DNNL(dnnl_memory_desc_create_with_tag(&user_md, w_nd, w_dims, dnnl_f32, w_nd == 4 ? dnnl_oihw : dnnl_ab));
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
    FX_TRY(sum_input_backward(b, id, b->net->nodes[id].inputs[0]));
    FX_TRY(sum_input_backward(b, id, b->net->nodes[id].inputs[1]));
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
    dnnl_dims_t strides = {n->stride[0], n->stride[1]}, kernel = {n->kernel[0], n->kernel[1]};
    dnnl_dims_t dil = {0, 0}, pad = {n->padding[0], n->padding[1]};
    dnnl_alg_kind_t alg = n->kind == FX_LAYER_MAX_POOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    FX_TRY(fxi_plan_new_attr(&attr));
    FX_DNNL(dnnl_pooling_backward_primitive_desc_create(&pd, plan->engine, alg, fxi_plan_pd_md(fwd, dnnl_query_src_md),
                                                        fxi_plan_pd_md(fwd, dnnl_query_dst_md), strides, kernel, dil,
                                                        pad, pad, fwd, attr));
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
    if (n->kind == FX_LAYER_RELU) {
        const_dnnl_memory_desc_t data = fxi_plan_md_of(plan->node_mem[id]);
        FX_DNNL(dnnl_eltwise_backward_primitive_desc_create(&pd, plan->engine, dnnl_eltwise_relu_use_dst_for_bwd,
                                                            data, data, data, 0.0f, 0.0f, fwd, attr));
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_DST, plan->node_mem[id]};
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
