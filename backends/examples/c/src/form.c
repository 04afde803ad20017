#include "form.h"

#include <stdlib.h>

void pairs_push(pairs_t *ps, slice_t name, slice_t value) {
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 8;
        ps->v = xrealloc(ps->v, ps->cap * sizeof *ps->v);
    }
    pair_t *p = &ps->v[ps->n++];
    *p = (pair_t){0};
    buf_adds(&p->name, name);
    buf_adds(&p->value, value);
}

void pairs_free(pairs_t *ps) {
    for (size_t i = 0; i < ps->n; i++) {
        buf_free(&ps->v[i].name);
        buf_free(&ps->v[i].value);
    }
    free(ps->v);
    *ps = (pairs_t){0};
}

bool pairs_get(const pairs_t *ps, slice_t name, slice_t *value) {
    for (size_t i = 0; i < ps->n; i++) {
        if (slice_eq(buf_slice(&ps->v[i].name), name)) {
            *value = buf_slice(&ps->v[i].value);
            return true;
        }
    }
    return false;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One component: '+' -> ' ', %XX -> byte (a malformed escape stays as it is), then lossy UTF-8. */
static void decode_component(buf_t *out, const char *s, size_t n) {
    buf_t raw = {0};
    buf_reserve(&raw, n);
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '+') {
            buf_addc(&raw, ' ');
        } else if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 && (lo = hex_value(s[i + 2])) >= 0) {
            buf_addc(&raw, (char)(hi * 16 + lo));
            i += 2;
        } else {
            buf_addc(&raw, s[i]);
        }
    }
    buf_add_utf8_lossy(out, (const uint8_t *)raw.p, raw.n);
    buf_free(&raw);
}

void form_parse(slice_t input, pairs_t *out) {
    size_t i = 0;
    while (i < input.n) {
        size_t end = i;
        while (end < input.n && input.p[end] != '&') end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && input.p[eq] != '=') eq++;
            buf_t name = {0}, value = {0};
            decode_component(&name, input.p + i, eq - i);
            if (eq < end) decode_component(&value, input.p + eq + 1, end - eq - 1);
            pairs_push(out, buf_slice(&name), buf_slice(&value));
            buf_free(&name);
            buf_free(&value);
        }
        i = end + 1;
    }
}

static void encode_component(buf_t *out, slice_t s) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '*' || c == '-' ||
            c == '.' || c == '_') {
            buf_addc(out, (char)c);
        } else if (c == ' ') {
            buf_addc(out, '+');
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_add(out, esc, 3);
        }
    }
}

void form_encode(buf_t *out, const pairs_t *ps) {
    for (size_t i = 0; i < ps->n; i++) {
        if (i) buf_addc(out, '&');
        encode_component(out, buf_slice(&ps->v[i].name));
        buf_addc(out, '=');
        encode_component(out, buf_slice(&ps->v[i].value));
    }
}

/* The first `{{secret:NAME}}` in `text`: sets [*start, *end) and returns true when
 * NAME is non-empty and brace-free; a malformed first reference ends the search,
 * as in guest-sdk's `split_secret_ref`, so nothing else passes unencoded. */
static bool find_secret_ref(slice_t text, size_t *start, size_t *end) {
    static const slice_t open = {"{{secret:", 9}, close = {"}}", 2};
    long s = slice_find(text, open, 0);
    if (s < 0) return false;
    size_t name_start = (size_t)s + open.n;
    long c = slice_find(text, close, name_start);
    if (c < 0 || (size_t)c == name_start) return false;
    for (size_t i = name_start; i < (size_t)c; i++) {
        if (text.p[i] == '{' || text.p[i] == '}') return false;
    }
    *start = (size_t)s;
    *end = (size_t)c + close.n;
    return true;
}

void form_encode_with_secret_refs(buf_t *out, const pairs_t *ps) {
    for (size_t i = 0; i < ps->n; i++) {
        if (i) buf_addc(out, '&');
        encode_component(out, buf_slice(&ps->v[i].name));
        buf_addc(out, '=');
        slice_t rest = buf_slice(&ps->v[i].value);
        size_t start, end;
        while (find_secret_ref(rest, &start, &end)) {
            encode_component(out, (slice_t){rest.p, start});
            buf_add(out, rest.p + start, end - start);
            rest = (slice_t){rest.p + end, rest.n - end};
        }
        encode_component(out, rest);
    }
}
