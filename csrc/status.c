/*
 * status.c - the per-thread last-error message behind fx_last_error().
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
