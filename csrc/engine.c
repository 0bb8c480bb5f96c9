/*
 * engine.c - the process-wide oneDNN CPU engine and facts about the library.
 *
 * One engine serves every network: creating it is cheap but not free, and
 * primitives from one engine can share oneDNN's internal caches.
 */
#include <omp.h>
#include <pthread.h>

#include <oneapi/dnnl/dnnl_debug.h>

#include "fx_internal.h"

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static dnnl_status_t engine_status = dnnl_runtime_error;

static void engine_create(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

fx_status fx_engine_get(dnnl_engine_t *out) {
    pthread_once(&engine_once, engine_create);
    if (engine_status != dnnl_success)
        return fx_fail_dnnl(engine_status, "dnnl_engine_create(cpu)", __FILE__, __LINE__);
    *out = engine;
    return FX_STATUS_OK;
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2_vnni_2: return "avx2_vnni_2";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_fp16: return "avx512_core_fp16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_amx_fp16: return "avx512_core_amx_fp16";
    default: return "generic";
    }
}

static const char *runtime_name(unsigned runtime) {
    switch (runtime) {
    case DNNL_RUNTIME_OMP: return "OpenMP";
    case DNNL_RUNTIME_TBB: return "TBB";
    case DNNL_RUNTIME_SEQ: return "sequential";
    case DNNL_RUNTIME_THREADPOOL: return "threadpool";
    default: return "other";
    }
}

fx_status fx_backend_get_info(fx_backend_info *info) {
    if (!info) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "info must not be NULL");
    const dnnl_version_t *v = dnnl_version();
    info->major = v->major;
    info->minor = v->minor;
    info->patch = v->patch;
    info->hash = v->hash;
    info->cpu_runtime = runtime_name(v->cpu_runtime);
    info->isa = isa_name(dnnl_get_effective_cpu_isa());
    return FX_STATUS_OK;
}

fx_status fx_set_num_threads(int n) {
    if (n < 1 || n > 4096) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "thread count must be in [1, 4096], got %d", n);
    omp_set_num_threads(n);
    return FX_STATUS_OK;
}

int fx_get_num_threads(void) { return omp_get_max_threads(); }
