/*
 * net_layers.c - the one table of layer kinds: for every fx_layer_kind its
 * name (the lowercase names of fxplain's LAYER_KINDS, used in error
 * messages), the builder of its forward steps and the builder of its
 * backward steps. The plan driver (net_plan.c) dispatches through it; the
 * builders live in net_layers_forward.c, net_backward.c and net_resize.c.
 *
 * Adding a layer kind: its fx_net_add_* in fxplain.h, its FX_LAYER_* before
 * FX_LAYER_COUNT in fx_internal.h, the add function and shape rule in
 * net_graph.c, its builders (declared in plan_internal.h), and a row here.
 */
#include "plan_internal.h"

static const fxi_layer_ops layers[] = {
    [FX_LAYER_INPUT] = {"input", NULL, NULL}, /* node 0: the plan driver fills it, nothing to build */
    [FX_LAYER_CONV] = {"conv", fxi_forward_conv_or_dense, fxi_backward_conv_or_dense},
    [FX_LAYER_SCALE_SHIFT] = {"scale_shift", fxi_forward_elementwise, fxi_backward_elementwise},
    [FX_LAYER_RELU] = {"relu", fxi_forward_elementwise, fxi_backward_elementwise},
    [FX_LAYER_PRELU] = {"prelu", fxi_forward_elementwise, fxi_backward_elementwise},
    [FX_LAYER_MAX_POOL] = {"max_pool", fxi_forward_pool, fxi_backward_pool},
    [FX_LAYER_AVG_POOL] = {"avg_pool", fxi_forward_pool, fxi_backward_pool},
    [FX_LAYER_GLOBAL_AVG_POOL] = {"global_avg_pool", fxi_forward_pool, fxi_backward_pool},
    [FX_LAYER_SUM] = {"sum", fxi_forward_sum, fxi_backward_sum},
    [FX_LAYER_DENSE] = {"dense", fxi_forward_conv_or_dense, fxi_backward_conv_or_dense},
    [FX_LAYER_RESHAPE] = {"reshape", fxi_forward_reshape, fxi_backward_reshape},
    [FX_LAYER_RESIZE] = {"resize", fxi_forward_resize, fxi_backward_resize},
    [FX_LAYER_SIGMOID] = {"sigmoid", fxi_forward_elementwise, fxi_backward_elementwise},
    [FX_LAYER_MUL] = {"mul", fxi_forward_mul, fxi_backward_mul},
    [FX_LAYER_LEAKY_RELU] = {"leaky_relu", fxi_forward_elementwise, fxi_backward_elementwise},
    [FX_LAYER_CONCAT] = {"concat", fxi_forward_concat, fxi_backward_concat},
};

/* A kind added at the end of fx_layer_kind without a row here fails to compile. */
_Static_assert(sizeof layers / sizeof layers[0] == FX_LAYER_COUNT, "net_layers.c needs one row per fx_layer_kind");

const fxi_layer_ops *fxi_layer_ops_of(fx_layer_kind kind) {
    if ((int)kind < 0 || kind >= FX_LAYER_COUNT || !layers[kind].name) return NULL;
    return &layers[kind];
}

const char *fx_layer_kind_name(fx_layer_kind kind) {
    const fxi_layer_ops *ops = fxi_layer_ops_of(kind);
    return ops ? ops->name : "unknown";
}
