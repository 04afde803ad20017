/* A small JSON reader and string writer matching what serde_json does for the
 * Rust backends: objects keep one value per key (the last) in key order, and
 * numbers are read the way serde_json reads them (its default, not always
 * nearest, float parsing) and kept as it prints them ("2", "-0.0", "1e+16"). */
#ifndef SMSGW_C_JSON_H
#define SMSGW_C_JSON_H

#include "util.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json json_t;

typedef struct {
    buf_t key;
    json_t *value;
} json_member_t;

struct json {
    json_type type;
    bool boolean;
    buf_t text;              /* JSON_STRING: the decoded UTF-8; JSON_NUMBER: serde_json's spelling */
    json_member_t *members;  /* JSON_OBJECT: sorted by key, bytewise */
    size_t n, cap;
};

/* Parses a whole document; NULL with `err` set on malformed input. */
json_t *json_parse(slice_t text, buf_t *err);
void json_free(json_t *v);
/* The member `key` of an object, or NULL. */
const json_t *json_get(const json_t *obj, slice_t key);
/* Writes `s` as a compact JSON string like serde_json; with `escape_open_braces`
 * every '{' becomes \u007b so no `{{secret:NAME}}` survives for the host. */
void json_write_string(buf_t *out, slice_t s, bool escape_open_braces);

#endif
