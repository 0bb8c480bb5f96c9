/*
 * net_fuse.c - fusion: which layers one oneDNN primitive computes together.
 *
 * A convolution or dense layer heads a group and absorbs the chain of layers
 * that follow it while each link has exactly one consumer: a scale/shift is
 * folded into the weights (exact, since nothing non-linear lies between), a
 * relu/leaky_relu/sigmoid/prelu becomes an eltwise/prelu post-op, and a sum with a same-shaped
 * partner becomes a binary-add post-op. Every other layer is a group of its
 * own. This is what makes the residual blocks of a ResNet cost one pass over
 * memory per convolution.
 */
#include <stdlib.h>

#include "fx_internal.h"

static int same_shape(const fx_node *a, const fx_node *b) {
    return a->c == b->c && a->h == b->h && a->w == b->w && a->flat == b->flat;
}

int fx_is_activation(fx_layer_kind kind) {
    return kind == FX_LAYER_RELU || kind == FX_LAYER_PRELU || kind == FX_LAYER_LEAKY_RELU ||
           kind == FX_LAYER_SIGMOID;
}

/* The single layer reading `node`, or -1. */
static int sole_consumer(const fx_net *net, int node) {
    if (net->nodes[node].consumers != 1 || node == net->output) return -1;
    for (int j = node + 1; j < net->n_nodes; ++j)
        for (int k = 0; k < net->nodes[j].n_inputs; ++k)
            if (net->nodes[j].inputs[k] == node) return j;
    return -1;
}

/* Fold y = x * scale + shift into the weights and bias of the layer before it. */
static fx_status fold_scale_shift(const fx_net *net, fx_node *head, const fx_node *affine) {
    const fx_node *src = &net->nodes[head->inputs[0]];
    size_t per_output = (size_t)src->c * (size_t)src->h * (size_t)src->w; /* dense */
    /* a grouped convolution's output o reads in/groups channels: weight [o][in/groups][kh][kw] */
    if (head->kind == FX_LAYER_CONV)
        per_output = (size_t)(src->c / head->groups) * head->kernel[0] * head->kernel[1];
    if (!head->bias) {
        head->bias = calloc((size_t)head->c, sizeof(float));
        if (!head->bias) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate a folded bias");
    }
    for (int o = 0; o < head->c; ++o) {
        const float scale = affine->weight[o];
        float *w = head->weight + (size_t)o * per_output;
        for (size_t k = 0; k < per_output; ++k) w[k] *= scale;
        head->bias[o] = head->bias[o] * scale + affine->bias[o];
    }
    return FX_STATUS_OK;
}

fx_status fx_net_fuse(fx_net *net) {
    for (int i = 0; i < net->n_nodes; ++i) {
        net->nodes[i].consumers = 0;
        net->nodes[i].group = -1;
        net->nodes[i].folded = 0;
    }
    for (int i = 1; i < net->n_nodes; ++i)
        for (int k = 0; k < net->nodes[i].n_inputs; ++k) net->nodes[net->nodes[i].inputs[k]].consumers++;
    net->nodes[net->output].consumers++;
    net->nodes[0].group = 0;

    for (int head = 1; head < net->n_nodes; ++head) {
        fx_node *h = &net->nodes[head];
        if (h->group >= 0) continue;
        h->group = head;
        if (h->kind != FX_LAYER_CONV && h->kind != FX_LAYER_DENSE) continue;
        int cur = head, post_ops = 0;
        for (;;) {
            int next = sole_consumer(net, cur);
            if (next < 0) break;
            fx_node *n = &net->nodes[next];
            if (n->group >= 0) break; /* already absorbed by an earlier group */
            if (n->kind == FX_LAYER_SCALE_SHIFT && post_ops == 0) {
                fx_status st = fold_scale_shift(net, h, n);
                if (st) return st;
                n->folded = 1;
            } else if (fx_is_activation(n->kind) && post_ops < 8) {
                post_ops++;
            } else if (n->kind == FX_LAYER_SUM) {
                int other = n->inputs[0] == cur ? n->inputs[1] : n->inputs[0];
                if (n->inputs[0] == n->inputs[1] || !same_shape(&net->nodes[cur], n) ||
                    !same_shape(&net->nodes[other], n) || post_ops == 8)
                    break;
                post_ops++;
            } else {
                break;
            }
            n->group = head;
            cur = next;
        }
    }
    return FX_STATUS_OK;
}

void fx_group_post_chain(const fx_net *net, int head, fx_post_chain *chain) {
    chain->count = 0;
    for (int j = head + 1; j < net->n_nodes && chain->count < 8; ++j) {
        const fx_node *n = &net->nodes[j];
        if (n->group != head) continue;
        if (fx_is_activation(n->kind) || n->kind == FX_LAYER_SUM)
            chain->node[chain->count++] = j;
    }
}

int fx_group_tail(const fx_net *net, int head) {
    int tail = head;
    for (int j = head + 1; j < net->n_nodes; ++j)
        if (net->nodes[j].group == head) tail = j;
    return tail;
}
