#include "util.h"

#include <stdlib.h>
#include <string.h>

slice_t slice_z(const char *s) { return (slice_t){s, strlen(s)}; }

bool slice_eq(slice_t a, slice_t b) { return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0); }

bool slice_eqz(slice_t a, const char *z) { return slice_eq(a, slice_z(z)); }

bool slice_starts_with(slice_t s, slice_t prefix) {
    return s.n >= prefix.n && (prefix.n == 0 || memcmp(s.p, prefix.p, prefix.n) == 0);
}

long slice_find(slice_t hay, slice_t needle, size_t from) {
    if (needle.n == 0) return from <= hay.n ? (long)from : -1;
    for (size_t i = from; i + needle.n <= hay.n; i++) {
        if (memcmp(hay.p + i, needle.p, needle.n) == 0) return (long)i;
    }
    return -1;
}

int slice_cmp(slice_t a, slice_t b) {
    size_t n = a.n < b.n ? a.n : b.n;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    if (c != 0) return c;
    return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

static bool is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* Decodes the code point starting at s[i] (valid UTF-8 assumed); returns its length. */
static size_t utf8_at(slice_t s, size_t i, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s.p;
    uint8_t b = u[i];
    size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    if (i + len > s.n) len = 1;
    uint32_t c = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; k < len; k++) c = (c << 6) | (u[i + k] & 0x3F);
    *cp = c;
    return len;
}

slice_t slice_trim(slice_t s) {
    size_t start = 0, end = s.n;
    while (start < end) {
        uint32_t c;
        size_t len = utf8_at(s, start, &c);
        if (!is_white_space(c)) break;
        start += len;
    }
    while (end > start) {
        size_t i = end - 1;
        while (i > start && ((uint8_t)s.p[i] & 0xC0) == 0x80) i--; /* back to the lead byte */
        uint32_t c;
        utf8_at(s, i, &c);
        if (!is_white_space(c)) break;
        end = i;
    }
    return (slice_t){s.p + start, end - start};
}

bool slice_parse_u64(slice_t s, uint64_t *out) {
    size_t i = 0;
    if (s.n > 0 && s.p[0] == '+') i = 1;
    if (i == s.n) return false;
    uint64_t v = 0;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return false;
        uint64_t d = (uint64_t)(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) abort();
    return p;
}

void buf_reserve(buf_t *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 32;
    while (cap < b->n + extra + 1) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void buf_add(buf_t *b, const void *data, size_t n) {
    buf_reserve(b, n);
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
}

void buf_adds(buf_t *b, slice_t s) { buf_add(b, s.p, s.n); }
void buf_addz(buf_t *b, const char *z) { buf_add(b, z, strlen(z)); }
void buf_addc(buf_t *b, char c) { buf_add(b, &c, 1); }

void buf_addu64(buf_t *b, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) buf_addc(b, tmp[--n]);
}

slice_t buf_slice(const buf_t *b) { return (slice_t){b->p ? b->p : "", b->n}; }

void buf_free(buf_t *b) {
    free(b->p);
    *b = (buf_t){0};
}

char *buf_take(buf_t *b, size_t *len) {
    buf_reserve(b, 0);
    char *p = b->p;
    *len = b->n;
    *b = (buf_t){0};
    return p;
}

void buf_add_utf8_lossy(buf_t *b, const uint8_t *s, size_t n) {
    static const char replacement[] = "\xEF\xBF\xBD";
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            buf_addc(b, (char)c);
            i++;
            continue;
        }
        /* Expected length and the allowed range of the second byte (Unicode Table 3-7). */
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 2;
        else if (c == 0xE0) need = 3, lo = 0xA0;
        else if (c == 0xED) need = 3, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF) need = 3;
        else if (c == 0xF0) need = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) need = 4;
        else if (c == 0xF4) need = 4, hi = 0x8F;
        else {
            buf_add(b, replacement, 3);
            i++;
            continue;
        }
        size_t k = 1;
        while (k < need && i + k < n) {
            uint8_t t = s[i + k];
            bool ok = k == 1 ? (t >= lo && t <= hi) : (t >= 0x80 && t <= 0xBF);
            if (!ok) break;
            k++;
        }
        if (k == need) buf_add(b, s + i, need);
        else buf_add(b, replacement, 3); /* the maximal invalid prefix becomes one U+FFFD */
        i += k;
    }
}
