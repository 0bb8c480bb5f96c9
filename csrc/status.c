/*
 * status.c - the per-thread last-error message behind fx_last_error(), and
 * the names of the status codes (fx_status_name).
 *
 * The glue reads the message right after a failing call on the same thread,
 * so a thread-local buffer is enough and needs no locking.
 */
#include <stdarg.h>
#include <stdio.h>

#include <oneapi/dnnl/dnnl_debug.h>

#include "fx_internal.h"

static _Thread_local char last_error[1024];

const char *fx_last_error(void) { return last_error; }

const char *fx_status_name(fx_status status) {
    switch (status) {
    case FX_STATUS_OK: return "ok";
    case FX_STATUS_INVALID_ARGUMENT: return "invalid_argument";
    case FX_STATUS_OUT_OF_MEMORY: return "out_of_memory";
    case FX_STATUS_UNSUPPORTED: return "unsupported";
    case FX_STATUS_BACKEND_ERROR: return "backend_error";
    }
    return "unknown";
}

fx_status fx_fail(fx_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    return status;
}

fx_status fx_fail_dnnl(dnnl_status_t status, const char *call, const char *file, int line) {
    fx_status mapped = FX_STATUS_BACKEND_ERROR;
    if (status == dnnl_out_of_memory) mapped = FX_STATUS_OUT_OF_MEMORY;
    if (status == dnnl_unimplemented) mapped = FX_STATUS_UNSUPPORTED;
    return fx_fail(mapped, "oneDNN error '%s' in %s (%s:%d)", dnnl_status2str(status), call, file,
                   line);
}
