/*
 * net_plan.c - turning a finalized graph into oneDNN primitives for one
 * batch size, and running them: the driver of the plan builders.
 *
 * A plan owns every primitive, activation buffer and reordered weight needed
 * to run the net on `batch` images. The driver walks the graph once forward
 * (one builder call per fused group; every layer on its own in a training
 * plan) and, for a training plan, once backward from the output, calling the
 * builders the kind table (net_layers.c) names for each node's kind. The
 * builders live in net_layers_forward.c, net_backward.c and net_resize.c;
 * they and their helpers (plan_util.c) never call back into this file. All
 * primitives use a user-provided scratchpad, so a plan is not tied to the
 * thread that built it.
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

/* ---- the plan ------------------------------------------------------------ */

static fx_status build_group(fx_plan *plan, const fx_net *net, int head) {
    const fx_layer_kind kind = net->nodes[head].kind;
    const fxi_layer_ops *ops = fxi_layer_ops_of(kind);
    if (!ops || !ops->forward)
        return fx_fail(FX_STATUS_UNSUPPORTED, "layer %d (%s, kind %d) has no forward builder", head,
                       fx_layer_kind_name(kind), (int)kind);
    return ops->forward(plan, net, head);
}

/* The backward steps of a training plan, from the output to the input. */
static fx_status build_backward(const fx_net *net, fx_plan *plan) {
    fx_status st = FX_STATUS_OK;
    fx_backward b = {net, plan, NULL};
    FX_TRY(fxi_backward_begin(&b));
    for (int id = net->n_nodes - 1; id >= 1; --id) {
        const fx_node *n = &net->nodes[id];
        if (n->folded || !b.has_diff[id]) continue; /* folded: handled by its conv; no path to the output */
        const fxi_layer_ops *ops = fxi_layer_ops_of(n->kind);
        if (!ops || !ops->backward) {
            st = fx_fail(FX_STATUS_UNSUPPORTED, "layer %d (%s, kind %d) has no backward pass", id,
                         fx_layer_kind_name(n->kind), (int)n->kind);
            goto cleanup;
        }
        FX_TRY(ops->backward(&b, id));
    }
    FX_TRY(fxi_backward_finish(&b));
cleanup:
    free(b.has_diff);
    return st;
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

    FX_TRY(fxi_plan_node_md_typed(&net->nodes[0], batch, dnnl_f32, dnnl_nhwc, dnnl_nc, &md));
    FX_TRY(fxi_plan_new_memory(plan, md, NULL, &plan->input));
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
    FX_TRY(fxi_plan_node_md_typed(result, batch, dnnl_f32, dnnl_nchw, dnnl_nc, &md));
    FX_DNNL(dnnl_memory_create(&plan->output, md, plan->engine, DNNL_MEMORY_NONE));
    FX_TRY(fxi_plan_add_reorder(plan, plan->node_mem[net->output], fxi_plan_md_of(plan->node_mem[net->output]),
                                plan->output, md, 0));
    plan->n_forward_steps = plan->n_steps;
    if (training) FX_TRY(build_backward(net, plan));

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
            memset(buffer, 0, dnnl_memory_desc_get_size(fxi_plan_md_of(step->zero)));
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
