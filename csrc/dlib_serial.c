/*
 * dlib_serial.c - bulk decoding of dlib's serialised integers.
 *
 * dlib writes an integer as a control byte (bit 7: negative; bits 0-3: the
 * number of little-endian magnitude bytes that follow, at most 8; bits 4-6
 * zero) and the magnitude. Its landmark predictors hold millions of them
 * (the 68-point one 33 million): decoding them one by one in Python took
 * 20 s. Every byte read is bounds-checked; the first malformed integer stops
 * the decoding, and *pos is left on it so that the caller can say why.
 */
#include "fx_internal.h"

fx_status fx_dlib_integers(const uint8_t *data, size_t length, size_t *pos, size_t count, int64_t *out) {
    size_t p = *pos;
    for (size_t i = 0; i < count; ++i) {
        if (p >= length) {
            *pos = p;
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "dlib integer %zu: the data ends early", i);
        }
        const uint8_t control = data[p];
        const size_t size = control & 0x0F;
        if (size > 8 || (control & 0x70) || size > length - p - 1) {
            *pos = p;
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "dlib integer %zu: bad control byte or data ends", i);
        }
        uint64_t magnitude = 0;
        for (size_t b = 0; b < size; ++b) magnitude |= (uint64_t)data[p + 1 + b] << (8 * b);
        const int negative = (control & 0x80) != 0;
        if (magnitude > (uint64_t)INT64_MAX + (negative ? 1u : 0u)) {
            *pos = p;
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "dlib integer %zu: out of the 64-bit range", i);
        }
        /* -2^63 is representable: negate in unsigned arithmetic, then convert */
        out[i] = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
        p += 1 + size;
    }
    *pos = p;
    return FX_STATUS_OK;
}
