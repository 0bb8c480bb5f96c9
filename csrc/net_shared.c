/*
 * net_shared.c - many output gradients for ONE image, with one forward pass.
 *
 * Region maps need the gradient of every embedding dimension for the same
 * image: D backward passes over identical activations. Instead of running
 * the forward pass D times, run it once at batch 1, replicate each layer's
 * output (and pooling workspace) into a batch-D training plan, and run only
 * that plan's backward steps. Replication is a memcpy per layer because the
 * batch is the outermost dimension of every layout the plans use (checked
 * here; if it ever is not, the caller falls back to D forward passes).
 */
#include <stdlib.h>
#include <string.h>

#include "plan_internal.h"

/* Bytes of one image's slice when the batch is the outermost dimension of
 * `md_n` (batch n) and `md_1` (batch 1) has the same layout; 0 otherwise. */
static size_t sample_bytes(const_dnnl_memory_desc_t md_1, const_dnnl_memory_desc_t md_n, int n) {
    size_t one = dnnl_memory_desc_get_size(md_1), all = dnnl_memory_desc_get_size(md_n);
    dnnl_format_kind_t k1, kn;
    int nd1 = 0, ndn = 0;
    const dnnl_dims_t *s1 = NULL, *sn = NULL;
    dnnl_data_type_t dt = dnnl_data_type_undef;
    if (dnnl_memory_desc_query(md_1, dnnl_query_format_kind, &k1) || dnnl_memory_desc_query(md_n, dnnl_query_format_kind, &kn) ||
        k1 != dnnl_blocked || kn != dnnl_blocked || all != one * (size_t)n)
        return 0;
    if (dnnl_memory_desc_query(md_1, dnnl_query_ndims_s32, &nd1) || dnnl_memory_desc_query(md_n, dnnl_query_ndims_s32, &ndn) ||
        nd1 != ndn || dnnl_memory_desc_query(md_1, dnnl_query_strides, &s1) ||
        dnnl_memory_desc_query(md_n, dnnl_query_strides, &sn) || dnnl_memory_desc_query(md_n, dnnl_query_data_type, &dt))
        return 0;
    size_t elem = dnnl_data_type_size(dt);
    if (elem == 0 || (size_t)(*sn)[0] * elem != one) return 0; /* batch must be outermost */
    for (int d = 1; d < ndn; ++d)
        if ((*s1)[d] != (*sn)[d]) return 0;
    return one;
}

/* Copy the batch-1 memory into every sample of the batch-n memory. */
static fx_status replicate(dnnl_memory_t one, dnnl_memory_t many, int n, int *ok) {
    fx_status st = FX_STATUS_OK;
    void *src = NULL, *dst = NULL;
    size_t bytes = sample_bytes(fxi_plan_md_of(one), fxi_plan_md_of(many), n);
    if (!bytes) {
        *ok = 0;
        return FX_STATUS_OK;
    }
    FX_DNNL(dnnl_memory_get_data_handle(one, &src));
    FX_DNNL(dnnl_memory_get_data_handle(many, &dst));
    for (int k = 0; k < n; ++k) memcpy((char *)dst + (size_t)k * bytes, src, bytes);
cleanup:
    return st;
}

fx_status fx_plans_replicate_forward(const fx_net *net, fx_plan *one, fx_plan *many, int *ok) {
    fx_status st = FX_STATUS_OK;
    *ok = one->training && many->training && one->batch == 1;
    for (int j = 0; j < net->n_nodes && *ok; ++j) {
        if (one->node_mem[j]) FX_TRY(replicate(one->node_mem[j], many->node_mem[j], many->batch, ok));
        if (*ok && one->workspace[j]) FX_TRY(replicate(one->workspace[j], many->workspace[j], many->batch, ok));
    }
cleanup:
    return st;
}
