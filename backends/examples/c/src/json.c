#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 128 /* serde_json's recursion limit */

typedef struct {
    const char *p;
    size_t n, i;
    buf_t *err;
} parser_t;

static json_t *fail(parser_t *ps, const char *msg) {
    if (ps->err->n == 0) {
        size_t line = 1, col = 0;
        for (size_t k = 0; k < ps->i && k < ps->n; k++) {
            if (ps->p[k] == '\n') line++, col = 0;
            else col++;
        }
        buf_addz(ps->err, msg);
        buf_addz(ps->err, " at line ");
        buf_addu64(ps->err, line);
        buf_addz(ps->err, " column ");
        buf_addu64(ps->err, col + (ps->i < ps->n));
    }
    return NULL;
}

static void skip_ws(parser_t *ps) {
    while (ps->i < ps->n && (ps->p[ps->i] == ' ' || ps->p[ps->i] == '\t' || ps->p[ps->i] == '\n' || ps->p[ps->i] == '\r'))
        ps->i++;
}

static json_t *new_value(json_type t) {
    json_t *v = xmalloc(sizeof *v);
    *v = (json_t){.type = t};
    return v;
}

void json_free(json_t *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        buf_free(&v->members[i].key);
        json_free(v->members[i].value);
    }
    free(v->members);
    buf_free(&v->text);
    free(v);
}

static void add_utf8(buf_t *b, uint32_t c) {
    char u[4];
    if (c < 0x80) {
        buf_addc(b, (char)c);
    } else if (c < 0x800) {
        u[0] = (char)(0xC0 | (c >> 6)), u[1] = (char)(0x80 | (c & 0x3F));
        buf_add(b, u, 2);
    } else if (c < 0x10000) {
        u[0] = (char)(0xE0 | (c >> 12)), u[1] = (char)(0x80 | ((c >> 6) & 0x3F)), u[2] = (char)(0x80 | (c & 0x3F));
        buf_add(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | (c >> 18)), u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3F)), u[3] = (char)(0x80 | (c & 0x3F));
        buf_add(b, u, 4);
    }
}

static bool read_hex4(parser_t *ps, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        if (ps->i >= ps->n) return false;
        char c = ps->p[ps->i++];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return false;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return true;
}

/* Reads a string after its opening quote into `out`. */
static bool parse_string(parser_t *ps, buf_t *out) {
    for (;;) {
        if (ps->i >= ps->n) return fail(ps, "EOF while parsing a string"), false;
        unsigned char c = (unsigned char)ps->p[ps->i];
        if (c == '"') {
            ps->i++;
            return true;
        }
        if (c < 0x20) return fail(ps, "control character (\\u0000-\\u001F) found while parsing a string"), false;
        if (c != '\\') {
            buf_addc(out, (char)c);
            ps->i++;
            continue;
        }
        ps->i++;
        if (ps->i >= ps->n) return fail(ps, "EOF while parsing a string"), false;
        char e = ps->p[ps->i++];
        switch (e) {
        case '"': buf_addc(out, '"'); break;
        case '\\': buf_addc(out, '\\'); break;
        case '/': buf_addc(out, '/'); break;
        case 'b': buf_addc(out, '\b'); break;
        case 'f': buf_addc(out, '\f'); break;
        case 'n': buf_addc(out, '\n'); break;
        case 'r': buf_addc(out, '\r'); break;
        case 't': buf_addc(out, '\t'); break;
        case 'u': {
            uint32_t cp, lo;
            if (!read_hex4(ps, &cp)) return fail(ps, "invalid escape"), false;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(ps, "lone trailing surrogate in hex escape"), false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->i + 2 > ps->n || ps->p[ps->i] != '\\' || ps->p[ps->i + 1] != 'u')
                    return fail(ps, "lone leading surrogate in hex escape"), false;
                ps->i += 2;
                if (!read_hex4(ps, &lo)) return fail(ps, "invalid escape"), false;
                if (lo < 0xDC00 || lo > 0xDFFF) return fail(ps, "lone leading surrogate in hex escape"), false;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            add_utf8(out, cp);
            break;
        }
        default: return fail(ps, "invalid escape"), false;
        }
    }
}

#ifndef WIDE_FLOAT
#define WIDE_FLOAT long double /* IEEE binary128 on wasm32: 113-bit significand, soft-float */
#endif
typedef WIDE_FLOAT wide_t;

/* The shortest decimal digits (at most 17) that read back as `v` (> 0, finite),
 * and the decimal exponent of the first digit, e.g. 0.015 -> "15", -2. Why no
 * printf: "%.*e" would pull stdio and with it WASI imports into the component.
 * Rounding of the wide-precision value stands in for exact rounding; strtod
 * (correctly rounded) checks every candidate. */
static int shortest_digits(double v, char *digits, int *exp10) {
    wide_t big[9] = {10}; /* 10^(2^i) */
    for (int i = 1; i < 9; i++) big[i] = big[i - 1] * big[i - 1];
    wide_t q = v;
    int e = 0;
    if (q >= 10) {
        for (int i = 8; i >= 0; i--)
            if (q >= big[i]) q /= big[i], e += 1 << i;
    } else if (q < 1) {
        for (int i = 8; i >= 0; i--)
            if (q * big[i] < 1) q *= big[i], e -= 1 << i;
        q *= 10, e -= 1;
    }
    /* Now q ~ v / 10^e, in [1, 10) up to rounding. */
    wide_t scale = 1;
    uint64_t m = 0;
    int n;
    for (n = 1; n <= 17; n++, scale *= 10) {
        m = (uint64_t)(q * scale + 0.5L);
        int first = e;
        uint64_t limit = 1;
        for (int k = 0; k < n; k++) limit *= 10;
        if (m >= limit) m /= 10, first++; /* 9.99.. rounded up to 10 */
        char text[48];
        int len = 0;
        for (uint64_t t = m, k = 0; k < (uint64_t)n; k++, t /= 10) digits[n - 1 - k] = (char)('0' + t % 10);
        memcpy(text, digits, (size_t)n), len = n;
        text[len++] = 'e';
        int x = first - n + 1;
        if (x < 0) text[len++] = '-', x = -x;
        char rev[8];
        int r = 0;
        do rev[r++] = (char)('0' + x % 10), x /= 10;
        while (x);
        while (r) text[len++] = rev[--r];
        text[len] = 0;
        if (strtod(text, NULL) == v || n == 17) {
            *exp10 = first;
            while (n > 1 && digits[n - 1] == '0') n--;
            return n;
        }
    }
    return n;
}

/* serde_json's float spelling (zmij): shortest round-trip digits, plain
 * notation for decimal exponents -5..=15 ("100.0", "0.00012"), else "1.5e+16". */
static void format_f64(buf_t *out, double v) {
    if (signbit(v)) buf_addc(out, '-'), v = -v;
    if (v == 0) {
        buf_addz(out, "0.0");
        return;
    }
    char digits[18];
    int exp;
    int len = shortest_digits(v, digits, &exp);
    if (exp >= -5 && exp <= 15) {
        if (len - 1 <= exp) {
            buf_add(out, digits, (size_t)len);
            for (int k = len; k <= exp; k++) buf_addc(out, '0');
            buf_addz(out, ".0");
        } else if (exp >= 0) {
            buf_add(out, digits, (size_t)exp + 1);
            buf_addc(out, '.');
            buf_add(out, digits + exp + 1, (size_t)(len - exp - 1));
        } else {
            buf_addz(out, "0.");
            for (int k = 0; k < -exp - 1; k++) buf_addc(out, '0');
            buf_add(out, digits, (size_t)len);
        }
    } else {
        buf_addc(out, digits[0]);
        if (len > 1) buf_addc(out, '.'), buf_add(out, digits + 1, (size_t)len - 1);
        buf_addc(out, 'e');
        buf_addc(out, exp < 0 ? '-' : '+');
        buf_addu64(out, (uint64_t)(exp < 0 ? -exp : exp));
    }
}

/* 10^k as the nearest double, like the f64 literals of serde_json's POW10 table. */
static double pow10_f64(int k) {
    char text[8] = "1e";
    int len = 2;
    if (k >= 100) text[len++] = (char)('0' + k / 100);
    if (k >= 10) text[len++] = (char)('0' + k / 10 % 10);
    text[len++] = (char)('0' + k % 10);
    text[len] = 0;
    return strtod(text, NULL);
}

/* serde_json's `f64_from_parts` (without its `float_roundtrip` feature): not
 * always the nearest double, but the same double serde_json gets. */
static bool f64_from_parts(uint64_t significand, int32_t exponent, double *out) {
    double f = (double)significand;
    for (;;) {
        uint32_t k = exponent < 0 ? 0u - (uint32_t)exponent : (uint32_t)exponent; /* wrapping_abs */
        if (k <= 308) {
            if (exponent >= 0) {
                f *= pow10_f64((int)k);
                if (isinf(f)) return false;
            } else {
                f /= pow10_f64((int)k);
            }
            break;
        }
        if (f == 0) break;
        if (exponent >= 0) return false;
        f /= 1e308;
        exponent += 308;
    }
    *out = f;
    return true;
}

static bool is_digit_at(parser_t *ps) { return ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '9'; }

/* `significand * 10 + digit` would not fit in a u64. */
static bool overflows(uint64_t significand, uint64_t digit) {
    return significand >= UINT64_MAX / 10 && (significand > UINT64_MAX / 10 || digit > UINT64_MAX % 10);
}

/* A number, read exactly as serde_json reads one into a `Value` (digits past
 * u64 precision are dropped, exponents saturate); kept as serde_json prints it. */
static json_t *parse_number(parser_t *ps) {
    bool positive = true;
    if (ps->p[ps->i] == '-') positive = false, ps->i++;
    if (ps->i >= ps->n) return fail(ps, "EOF while parsing a value");
    char c = ps->p[ps->i++];
    uint64_t sig = 0;
    int32_t exponent = 0;
    bool is_float = false;
    if (c == '0') {
        if (is_digit_at(ps)) return fail(ps, "invalid number");
    } else if (c >= '1' && c <= '9') {
        sig = (uint64_t)(c - '0');
        while (is_digit_at(ps)) {
            uint64_t d = (uint64_t)(ps->p[ps->i] - '0');
            if (overflows(sig, d)) { /* parse_long_integer: later digits only scale */
                is_float = true;
                while (is_digit_at(ps)) ps->i++, exponent++;
                break;
            }
            ps->i++;
            sig = sig * 10 + d;
        }
    } else {
        return fail(ps, "invalid number");
    }
    if (ps->i < ps->n && ps->p[ps->i] == '.') { /* parse_decimal */
        is_float = true;
        ps->i++;
        if (!is_digit_at(ps)) return fail(ps, ps->i < ps->n ? "invalid number" : "EOF while parsing a value");
        while (is_digit_at(ps)) {
            uint64_t d = (uint64_t)(ps->p[ps->i] - '0');
            if (overflows(sig, d)) { /* parse_decimal_overflow: ignore further digits */
                while (is_digit_at(ps)) ps->i++;
                break;
            }
            ps->i++;
            sig = sig * 10 + d;
            exponent--;
        }
    }
    bool zero = false;
    if (ps->i < ps->n && (ps->p[ps->i] == 'e' || ps->p[ps->i] == 'E')) { /* parse_exponent */
        is_float = true;
        ps->i++;
        bool positive_exp = true;
        if (ps->i < ps->n && (ps->p[ps->i] == '+' || ps->p[ps->i] == '-')) positive_exp = ps->p[ps->i++] == '+';
        if (ps->i >= ps->n) return fail(ps, "EOF while parsing a value");
        if (!is_digit_at(ps)) return fail(ps, "invalid number");
        int32_t exp = ps->p[ps->i++] - '0';
        bool exp_overflow = false;
        while (is_digit_at(ps)) {
            int32_t d = ps->p[ps->i++] - '0';
            if (exp >= INT32_MAX / 10 && (exp > INT32_MAX / 10 || d > INT32_MAX % 10)) {
                exp_overflow = true;
                while (is_digit_at(ps)) ps->i++;
                break;
            }
            exp = exp * 10 + d;
        }
        if (exp_overflow) { /* parse_exponent_overflow */
            if (sig != 0 && positive_exp) return fail(ps, "number out of range");
            zero = true;
        } else if (positive_exp) {
            exponent = exponent > INT32_MAX - exp ? INT32_MAX : exponent + exp;
        } else {
            exponent = exponent < INT32_MIN + exp ? INT32_MIN : exponent - exp;
        }
    }
    json_t *v = new_value(JSON_NUMBER);
    if (!is_float) {
        /* u64 when positive, i64 when it fits; else (and for -0) a float. */
        if (positive || (sig != 0 && sig <= (uint64_t)1 << 63)) {
            if (!positive) buf_addc(&v->text, '-');
            buf_addu64(&v->text, sig);
        } else {
            format_f64(&v->text, -(double)sig);
        }
        return v;
    }
    double f = 0;
    if (!zero && !f64_from_parts(sig, exponent, &f)) {
        json_free(v);
        return fail(ps, "number out of range");
    }
    format_f64(&v->text, positive ? f : -f);
    return v;
}

static bool expect_word(parser_t *ps, const char *word) {
    size_t len = strlen(word);
    if (ps->n - ps->i < len || memcmp(ps->p + ps->i, word, len) != 0) return false;
    ps->i += len;
    return true;
}

/* Inserts key/value keeping keys sorted; a repeated key replaces the earlier value. */
static void object_put(json_t *obj, buf_t key, json_t *value) {
    size_t lo = 0, hi = obj->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = slice_cmp(buf_slice(&obj->members[mid].key), buf_slice(&key));
        if (c == 0) {
            json_free(obj->members[mid].value);
            obj->members[mid].value = value;
            buf_free(&key);
            return;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    if (obj->n == obj->cap) {
        obj->cap = obj->cap ? obj->cap * 2 : 8;
        obj->members = xrealloc(obj->members, obj->cap * sizeof *obj->members);
    }
    memmove(&obj->members[lo + 1], &obj->members[lo], (obj->n - lo) * sizeof *obj->members);
    obj->members[lo] = (json_member_t){key, value};
    obj->n++;
}

static json_t *parse_value(parser_t *ps, int depth) {
    skip_ws(ps);
    if (ps->i >= ps->n) return fail(ps, "EOF while parsing a value");
    char c = ps->p[ps->i];
    if (c == 'n' && expect_word(ps, "null")) return new_value(JSON_NULL);
    if (c == 't' && expect_word(ps, "true")) {
        json_t *v = new_value(JSON_BOOL);
        v->boolean = true;
        return v;
    }
    if (c == 'f' && expect_word(ps, "false")) return new_value(JSON_BOOL);
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps);
    if (c == '"') {
        ps->i++;
        json_t *v = new_value(JSON_STRING);
        if (!parse_string(ps, &v->text)) return json_free(v), NULL;
        return v;
    }
    if (c != '[' && c != '{') return fail(ps, "expected value");
    if (depth >= MAX_DEPTH) return fail(ps, "recursion limit exceeded");
    ps->i++;
    bool is_array = c == '[';
    char close = is_array ? ']' : '}';
    json_t *v = new_value(is_array ? JSON_ARRAY : JSON_OBJECT);
    skip_ws(ps);
    if (ps->i < ps->n && ps->p[ps->i] == close) {
        ps->i++;
        return v;
    }
    for (;;) {
        if (is_array) {
            /* Arrays are only ever rejected as config values: check, then drop the items. */
            json_t *item = parse_value(ps, depth + 1);
            if (!item) return json_free(v), NULL;
            json_free(item);
        } else {
            skip_ws(ps);
            if (ps->i >= ps->n) return json_free(v), fail(ps, "EOF while parsing an object");
            if (ps->p[ps->i] != '"') return json_free(v), fail(ps, "key must be a string");
            ps->i++;
            buf_t key = {0};
            if (!parse_string(ps, &key)) return buf_free(&key), json_free(v), NULL;
            skip_ws(ps);
            if (ps->i >= ps->n || ps->p[ps->i] != ':') {
                buf_free(&key);
                return json_free(v), fail(ps, ps->i >= ps->n ? "EOF while parsing an object" : "expected `:`");
            }
            ps->i++;
            json_t *item = parse_value(ps, depth + 1);
            if (!item) return buf_free(&key), json_free(v), NULL;
            object_put(v, key, item);
        }
        skip_ws(ps);
        if (ps->i >= ps->n)
            return json_free(v), fail(ps, is_array ? "EOF while parsing a list" : "EOF while parsing an object");
        char d = ps->p[ps->i++];
        if (d == close) return v;
        if (d != ',') {
            ps->i--;
            return json_free(v), fail(ps, is_array ? "expected `,` or `]`" : "expected `,` or `}`");
        }
    }
}

json_t *json_parse(slice_t text, buf_t *err) {
    parser_t ps = {text.p, text.n, 0, err};
    json_t *v = parse_value(&ps, 0);
    if (!v) return NULL;
    skip_ws(&ps);
    if (ps.i < ps.n) return json_free(v), fail(&ps, "trailing characters");
    return v;
}

const json_t *json_get(const json_t *obj, slice_t key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    size_t lo = 0, hi = obj->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = slice_cmp(buf_slice(&obj->members[mid].key), key);
        if (c == 0) return obj->members[mid].value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

void json_write_string(buf_t *out, slice_t s, bool escape_open_braces) {
    static const char hex[] = "0123456789abcdef";
    buf_addc(out, '"');
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        switch (c) {
        case '"': buf_addz(out, "\\\""); break;
        case '\\': buf_addz(out, "\\\\"); break;
        case '\b': buf_addz(out, "\\b"); break;
        case '\f': buf_addz(out, "\\f"); break;
        case '\n': buf_addz(out, "\\n"); break;
        case '\r': buf_addz(out, "\\r"); break;
        case '\t': buf_addz(out, "\\t"); break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                buf_add(out, esc, 6);
            } else if (c == '{' && escape_open_braces) {
                buf_addz(out, "\\u007b");
            } else {
                buf_addc(out, (char)c);
            }
        }
    }
    buf_addc(out, '"');
}
