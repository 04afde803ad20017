/* application/x-www-form-urlencoded, as the Rust `form_urlencoded` crate does it,
 * plus the `{{secret:NAME}}`-preserving encoder of guest-sdk/src/params.rs. */
#ifndef SMSGW_C_FORM_H
#define SMSGW_C_FORM_H

#include "util.h"

typedef struct {
    buf_t name, value;
} pair_t;

/* Ordered name/value pairs; names may repeat. */
typedef struct {
    pair_t *v;
    size_t n, cap;
} pairs_t;

void pairs_push(pairs_t *ps, slice_t name, slice_t value);
void pairs_free(pairs_t *ps);
/* The first value of `name`. */
bool pairs_get(const pairs_t *ps, slice_t name, slice_t *value);

/* Decodes a query string or form body: pairs split on '&' (empty ones skipped),
 * '+' is a space, %XX a byte, and the result lossy UTF-8. */
void form_parse(slice_t input, pairs_t *out);
/* `name=value&...` with every byte but [A-Za-z0-9*._-] encoded ('+' for a space). */
void form_encode(buf_t *out, const pairs_t *ps);
/* Like form_encode, but well-formed `{{secret:NAME}}` references in values are
 * left as they are for the host to fill in. Only for the operator's own values. */
void form_encode_with_secret_refs(buf_t *out, const pairs_t *ps);

#endif
