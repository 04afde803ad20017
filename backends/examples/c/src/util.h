/* Byte strings and growable buffers: WIT strings carry a length and may hold NUL. */
#ifndef SMSGW_C_UTIL_H
#define SMSGW_C_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A borrowed byte string (not NUL-terminated). */
typedef struct {
    const char *p;
    size_t n;
} slice_t;

/* An owned, growable byte string; always NUL-terminated for convenience. */
typedef struct {
    char *p;
    size_t n, cap;
} buf_t;

#define SLICE(lit) ((slice_t){(lit), sizeof(lit) - 1})

slice_t slice_z(const char *s);
bool slice_eq(slice_t a, slice_t b);
bool slice_eqz(slice_t a, const char *z);
bool slice_starts_with(slice_t s, slice_t prefix);
/* Index of the first occurrence of `needle` in `hay` at or after `from`, or -1. */
long slice_find(slice_t hay, slice_t needle, size_t from);
int slice_cmp(slice_t a, slice_t b); /* bytewise, like Rust's `str` ordering */
/* Rust's `str::trim`: strips Unicode White_Space from both ends of UTF-8 text. */
slice_t slice_trim(slice_t s);
/* Rust's `str::parse::<u64>()`: optional '+', then 1+ ASCII digits, no overflow. */
bool slice_parse_u64(slice_t s, uint64_t *out);

void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
void buf_reserve(buf_t *b, size_t extra);
void buf_add(buf_t *b, const void *data, size_t n);
void buf_adds(buf_t *b, slice_t s);
void buf_addz(buf_t *b, const char *z);
void buf_addc(buf_t *b, char c);
void buf_addu64(buf_t *b, uint64_t v);
slice_t buf_slice(const buf_t *b);
void buf_free(buf_t *b);
/* Takes the bytes out of `b` (the caller frees them); `b` becomes empty. */
char *buf_take(buf_t *b, size_t *len);

/* Appends `bytes` as UTF-8, replacing each maximal invalid subsequence with
 * U+FFFD exactly as Rust's `String::from_utf8_lossy` does. */
void buf_add_utf8_lossy(buf_t *b, const uint8_t *bytes, size_t n);

#endif
