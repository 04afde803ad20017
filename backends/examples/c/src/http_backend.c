/* The generic HTTP backend in C: the same behaviour as backends/http/src/lib.rs.
 *
 * Inbound: `GET ?identity=..&text=..` or a POSTed form, with configurable
 * parameter names. Outbound: one request per identity (or one for all when
 * `identity_separator` is set) to `sendsms_url`, as a query, form or JSON.
 *
 * Ownership follows wit-bindgen's C conventions: exported functions own their
 * arguments (freed before returning) and hand back malloc'ed results, which the
 * generated post-return functions free; empty strings and lists are NULL. */

#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "form.h"
#include "json.h"
#include "util.h"

typedef smsgw_backend_types_send_error_t send_error_t;
typedef smsgw_backend_http_client_request_t request_t;

/* ---- WIT strings ------------------------------------------------------- */

static slice_t S(backend_string_t s) { return (slice_t){(const char *)s.ptr, s.len}; }

static backend_string_t wit_from_buf(buf_t *b) {
    backend_string_t s = {0};
    if (b->n == 0) {
        buf_free(b);
        return s;
    }
    s.ptr = (uint8_t *)buf_take(b, &s.len);
    return s;
}

static backend_string_t wit_dup(slice_t s) {
    buf_t b = {0};
    buf_adds(&b, s);
    return wit_from_buf(&b);
}

/* ---- configuration (guest-sdk/src/config.rs) ---------------------------- */

typedef struct {
    json_t *table; /* NULL for an empty configuration */
    buf_t err;     /* the first problem, naming the key */
} config_t;

static bool config_parse(config_t *c, slice_t text) {
    *c = (config_t){0};
    if (slice_trim(text).n == 0) return true;
    buf_t why = {0};
    json_t *v = json_parse(text, &why);
    if (!v) {
        buf_addz(&c->err, "configuration is not valid JSON: ");
        buf_adds(&c->err, buf_slice(&why));
        buf_free(&why);
        return false;
    }
    if (v->type != JSON_OBJECT) {
        json_free(v);
        buf_addz(&c->err, "configuration is not a table");
        return false;
    }
    c->table = v;
    return true;
}

/* A scalar as a string, as `Config::string` converts it; false for other types. */
static bool scalar_text(const json_t *v, buf_t *out) {
    switch (v->type) {
    case JSON_STRING:
    case JSON_NUMBER: buf_adds(out, buf_slice(&v->text)); return true;
    case JSON_BOOL: buf_addz(out, v->boolean ? "true" : "false"); return true;
    default: return false;
    }
}

/* `Config::string`: 1 with the value in `out`, 0 when absent or null, -1 on error. */
static int config_string(config_t *c, const char *key, buf_t *out) {
    const json_t *v = json_get(c->table, slice_z(key));
    if (!v || v->type == JSON_NULL) return 0;
    if (scalar_text(v, out)) return 1;
    buf_addz(&c->err, "config key '");
    buf_addz(&c->err, key);
    buf_addz(&c->err, "' must be a string");
    return -1;
}

/* `Config::string_or`. */
static bool config_string_or(config_t *c, const char *key, slice_t fallback, buf_t *out) {
    int found = config_string(c, key, out);
    if (found == 0) buf_adds(out, fallback);
    return found >= 0;
}

/* `Config::string_map`: a table of strings, in key order. */
static bool config_string_map(config_t *c, const char *key, pairs_t *out) {
    const json_t *v = json_get(c->table, slice_z(key));
    if (!v || v->type == JSON_NULL) return true;
    if (v->type != JSON_OBJECT) {
        buf_addz(&c->err, "config key '");
        buf_addz(&c->err, key);
        buf_addz(&c->err, "' must be a table");
        return false;
    }
    for (size_t i = 0; i < v->n; i++) {
        buf_t value = {0};
        if (!scalar_text(v->members[i].value, &value)) {
            buf_addz(&c->err, "config key '");
            buf_addz(&c->err, key);
            buf_addc(&c->err, '.');
            buf_adds(&c->err, buf_slice(&v->members[i].key));
            buf_addz(&c->err, "' must be a string");
            return false;
        }
        pairs_push(out, buf_slice(&v->members[i].key), buf_slice(&value));
        buf_free(&value);
    }
    return true;
}

/* ---- settings (Settings::read in backends/http/src/lib.rs) -------------- */

typedef enum { ENC_QUERY, ENC_FORM, ENC_JSON } encoding_t;

typedef struct {
    buf_t identity_name, text_name, method;
    encoding_t encoding;
    buf_t out_identity_name, out_text_name;
    bool has_out_id_name, has_url, has_separator;
    buf_t out_id_name, url, separator;
    pairs_t params;
} settings_t;

static void settings_free(settings_t *s) {
    buf_free(&s->identity_name), buf_free(&s->text_name), buf_free(&s->method);
    buf_free(&s->out_identity_name), buf_free(&s->out_text_name);
    buf_free(&s->out_id_name), buf_free(&s->url), buf_free(&s->separator);
    pairs_free(&s->params);
}

/* Reads the settings; on failure returns false with the reason in `err`. */
static bool settings_read(slice_t config_text, settings_t *s, buf_t *err) {
    *s = (settings_t){0};
    config_t c;
    bool ok = config_parse(&c, config_text) &&
              config_string_or(&c, "identity_name", SLICE("identity"), &s->identity_name) &&
              config_string_or(&c, "text_name", SLICE("text"), &s->text_name) &&
              config_string_or(&c, "sendsms_method", SLICE("GET"), &s->method);
    if (ok) {
        for (size_t i = 0; i < s->method.n; i++) {
            if (s->method.p[i] >= 'a' && s->method.p[i] <= 'z') s->method.p[i] -= 'a' - 'A';
        }
        if (!slice_eqz(buf_slice(&s->method), "GET") && !slice_eqz(buf_slice(&s->method), "POST")) {
            buf_addz(&c.err, "config key 'sendsms_method' must be GET or POST, not '");
            buf_adds(&c.err, buf_slice(&s->method));
            buf_addc(&c.err, '\'');
            ok = false;
        }
    }
    if (ok) {
        bool get = slice_eqz(buf_slice(&s->method), "GET");
        buf_t enc = {0};
        ok = config_string_or(&c, "sendsms_encoding", get ? SLICE("query") : SLICE("form"), &enc);
        if (ok) {
            slice_t e = buf_slice(&enc);
            if (slice_eqz(e, "query")) s->encoding = ENC_QUERY;
            else if (slice_eqz(e, "form")) s->encoding = ENC_FORM;
            else if (slice_eqz(e, "json")) s->encoding = ENC_JSON;
            else {
                buf_addz(&c.err, "config key 'sendsms_encoding' must be query, form or json, not '");
                buf_adds(&c.err, e);
                buf_addc(&c.err, '\'');
                ok = false;
            }
        }
        buf_free(&enc);
    }
    if (ok) {
        int id, url = 0, sep = 0;
        ok = config_string_or(&c, "outgoing_identity_name", buf_slice(&s->identity_name), &s->out_identity_name) &&
             config_string_or(&c, "outgoing_text_name", buf_slice(&s->text_name), &s->out_text_name) &&
             (id = config_string(&c, "outgoing_id_name", &s->out_id_name)) >= 0 &&
             (url = config_string(&c, "sendsms_url", &s->url)) >= 0 &&
             config_string_map(&c, "sendsms_params", &s->params) &&
             (sep = config_string(&c, "identity_separator", &s->separator)) >= 0;
        if (ok) s->has_out_id_name = id == 1, s->has_url = url == 1, s->has_separator = sep == 1;
    }
    json_free(c.table);
    if (!ok) {
        *err = c.err;
        settings_free(s);
        return false;
    }
    buf_free(&c.err);
    return true;
}

/* ---- parse-incoming ----------------------------------------------------- */

static void parse_error(exports_smsgw_backend_adapter_parse_error_t *err, uint8_t tag, buf_t *reason) {
    err->tag = tag;
    err->val.other = wit_from_buf(reason); /* every case holds a string at the same place */
}

/* `Params::required`: the first value of `name`, trimmed and non-empty. */
static bool required_param(const pairs_t *ps, slice_t name, buf_t *out, buf_t *err) {
    slice_t v;
    bool present = pairs_get(ps, name, &v);
    if (present && (v = slice_trim(v)).n > 0) {
        buf_adds(out, v);
        return true;
    }
    buf_addz(err, present ? "parameter '" : "missing parameter '");
    buf_adds(err, name);
    buf_addz(err, present ? "' is empty" : "'");
    return false;
}

static bool header_value(const smsgw_backend_types_pairs_t *headers, const char *name, slice_t *value) {
    for (size_t i = 0; i < headers->len; i++) {
        if (slice_eqz(S(headers->ptr[i].f0), name)) {
            *value = S(headers->ptr[i].f1);
            return true;
        }
    }
    return false;
}

bool exports_smsgw_backend_adapter_parse_incoming(exports_smsgw_backend_adapter_backend_context_t *ctx,
                                                   exports_smsgw_backend_adapter_http_request_t *req,
                                                   exports_smsgw_backend_adapter_incoming_t *ret,
                                                   exports_smsgw_backend_adapter_parse_error_t *err) {
    settings_t s;
    buf_t why = {0};
    bool ok = false;
    pairs_t params = {0};
    if (!settings_read(S(ctx->config), &s, &why)) {
        parse_error(err, SMSGW_BACKEND_TYPES_PARSE_ERROR_CONFIG, &why);
        goto done;
    }
    slice_t method = S(req->method);
    if (slice_eqz(method, "GET")) {
        form_parse(S(req->query), &params);
    } else if (slice_eqz(method, "POST")) {
        /* The body counts only when it is a form (or has no content type). */
        slice_t ct;
        bool is_form = true;
        if (header_value(&req->headers, "content-type", &ct)) {
            static const char form[] = "application/x-www-form-urlencoded";
            is_form = ct.n >= sizeof form - 1;
            for (size_t i = 0; is_form && i < sizeof form - 1; i++) {
                char c = ct.p[i];
                if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
                is_form = c == form[i];
            }
        }
        if (is_form) form_parse((slice_t){(const char *)req->body.ptr, req->body.len}, &params);
    } else {
        buf_addz(&why, "method ");
        buf_adds(&why, method);
        buf_addz(&why, " not allowed; use GET or POST");
        parse_error(err, SMSGW_BACKEND_TYPES_PARSE_ERROR_METHOD_NOT_ALLOWED, &why);
        settings_free(&s);
        goto done;
    }
    buf_t identity = {0}, text = {0};
    if (!required_param(&params, buf_slice(&s.identity_name), &identity, &why) ||
        !required_param(&params, buf_slice(&s.text_name), &text, &why)) {
        buf_free(&identity);
        parse_error(err, SMSGW_BACKEND_TYPES_PARSE_ERROR_INVALID_REQUEST, &why);
        settings_free(&s);
        goto done;
    }
    settings_free(&s);
    smsgw_backend_types_incoming_message_t *msg = xmalloc(sizeof *msg);
    *msg = (smsgw_backend_types_incoming_message_t){0};
    msg->identity = wit_from_buf(&identity);
    msg->text = wit_from_buf(&text);
    *ret = (exports_smsgw_backend_adapter_incoming_t){0};
    ret->messages.ptr = msg;
    ret->messages.len = 1;
    ok = true;
done:
    pairs_free(&params);
    exports_smsgw_backend_adapter_backend_context_free(ctx);
    exports_smsgw_backend_adapter_http_request_free(req);
    return ok;
}

/* ---- send --------------------------------------------------------------- */

/* `json::object_body`: the operator's members keep their secret references,
 * the message's members (written last, and winning a shared name) lose them. */
static void json_object_body(buf_t *out, const pairs_t *trusted, const pairs_t *untrusted_in) {
    /* The message's pairs as a map: sorted by name, a repeated name keeps its last value. */
    const pair_t *untrusted[8];
    size_t n = 0;
    for (size_t i = 0; i < untrusted_in->n && i < 8; i++) {
        const pair_t *p = &untrusted_in->v[i];
        size_t at = 0;
        while (at < n && slice_cmp(buf_slice(&untrusted[at]->name), buf_slice(&p->name)) < 0) at++;
        if (at < n && slice_eq(buf_slice(&untrusted[at]->name), buf_slice(&p->name))) {
            untrusted[at] = p;
            continue;
        }
        memmove(&untrusted[at + 1], &untrusted[at], (n - at) * sizeof *untrusted);
        untrusted[at] = p;
        n++;
    }
    bool first = true;
    buf_addc(out, '{');
    for (size_t i = 0; i < trusted->n; i++) {
        slice_t name = buf_slice(&trusted->v[i].name), ignored;
        if (pairs_get(untrusted_in, name, &ignored)) continue;
        if (!first) buf_addc(out, ',');
        first = false;
        json_write_string(out, name, false);
        buf_addc(out, ':');
        json_write_string(out, buf_slice(&trusted->v[i].value), false);
    }
    for (size_t i = 0; i < n; i++) {
        if (!first) buf_addc(out, ',');
        first = false;
        json_write_string(out, buf_slice(&untrusted[i]->name), true);
        buf_addc(out, ':');
        json_write_string(out, buf_slice(&untrusted[i]->value), true);
    }
    buf_addc(out, '}');
}

static void add_header(request_t *req, const char *name, const char *value) {
    req->headers.ptr = xrealloc(req->headers.ptr, (req->headers.len + 1) * sizeof *req->headers.ptr);
    req->headers.ptr[req->headers.len].f0 = wit_dup(slice_z(name));
    req->headers.ptr[req->headers.len].f1 = wit_dup(slice_z(value));
    req->headers.len++;
}

/* `Settings::request`: the provider call for message `msg` to `to`. */
static void build_request(const settings_t *s, const smsgw_backend_types_outgoing_message_t *msg, slice_t to,
                          request_t *req) {
    pairs_t own = {0};
    pairs_push(&own, buf_slice(&s->out_identity_name), to);
    pairs_push(&own, buf_slice(&s->out_text_name), S(msg->text));
    if (s->has_out_id_name) pairs_push(&own, buf_slice(&s->out_id_name), S(msg->id));

    /* Only the operator's parameters may carry {{secret:NAME}} references; the
     * message's own values are fully encoded so a reference typed into an SMS
     * is never filled in. */
    buf_t encoded = {0};
    form_encode_with_secret_refs(&encoded, &s->params);
    if (encoded.n) buf_addc(&encoded, '&');
    form_encode(&encoded, &own);

    *req = (request_t){0};
    req->method = wit_dup(buf_slice(&s->method));
    buf_t url = {0}, body = {0};
    buf_adds(&url, buf_slice(&s->url));
    switch (s->encoding) {
    case ENC_QUERY:
        buf_addc(&url, memchr(url.p, '?', url.n) ? '&' : '?');
        buf_adds(&url, buf_slice(&encoded));
        break;
    case ENC_FORM:
        add_header(req, "content-type", "application/x-www-form-urlencoded");
        buf_adds(&body, buf_slice(&encoded));
        break;
    case ENC_JSON:
        add_header(req, "content-type", "application/json");
        json_object_body(&body, &s->params, &own);
        break;
    }
    req->url = wit_from_buf(&url);
    backend_string_t b = wit_from_buf(&body);
    req->body.ptr = b.ptr;
    req->body.len = b.len;
    buf_free(&encoded);
    pairs_free(&own);
}

static void send_error(send_error_t *e, uint8_t tag, buf_t *reason) {
    *e = (send_error_t){.tag = tag};
    if (tag == SMSGW_BACKEND_TYPES_SEND_ERROR_THROTTLED) e->val.throttled.reason = wit_from_buf(reason);
    else e->val.other = wit_from_buf(reason); /* the string cases share one place */
}

/* `From<http::Error> for SendError`: denials and malformed requests will not fix themselves. */
static void from_http_error(const smsgw_backend_http_client_error_t *he, send_error_t *e) {
    buf_t r = {0};
    uint8_t tag = SMSGW_BACKEND_TYPES_SEND_ERROR_RETRYABLE;
    switch (he->tag) {
    case SMSGW_BACKEND_HTTP_CLIENT_ERROR_DENIED:
        buf_addz(&r, "denied by the gateway: ");
        buf_adds(&r, S(he->val.denied));
        tag = SMSGW_BACKEND_TYPES_SEND_ERROR_CONFIG;
        break;
    case SMSGW_BACKEND_HTTP_CLIENT_ERROR_TIMEOUT: buf_addz(&r, "timed out"); break;
    case SMSGW_BACKEND_HTTP_CLIENT_ERROR_TOO_LARGE:
        buf_addz(&r, "response larger than ");
        buf_addu64(&r, he->val.too_large);
        buf_addz(&r, " bytes");
        break;
    case SMSGW_BACKEND_HTTP_CLIENT_ERROR_INVALID_REQUEST:
        buf_addz(&r, "invalid request: ");
        buf_adds(&r, S(he->val.invalid_request));
        tag = SMSGW_BACKEND_TYPES_SEND_ERROR_CONFIG;
        break;
    case SMSGW_BACKEND_HTTP_CLIENT_ERROR_TRANSPORT:
        buf_addz(&r, "transport error: ");
        buf_adds(&r, S(he->val.transport));
        break;
    case SMSGW_BACKEND_HTTP_CLIENT_ERROR_LIMIT_EXCEEDED:
        buf_addz(&r, "limit exceeded: ");
        buf_adds(&r, S(he->val.limit_exceeded));
        break;
    default: buf_adds(&r, S(he->val.other)); break;
    }
    send_error(e, tag, &r);
}

/* Sends `req` and says what the reply means for `who` (the identities it covered):
 * true when the provider took it, else false with the error in `e`. */
static bool send_and_classify(request_t *req, slice_t who, send_error_t *e) {
    smsgw_backend_http_client_response_t resp;
    smsgw_backend_http_client_error_t herr;
    bool fetched = smsgw_backend_http_client_fetch(req, &resp, &herr);
    smsgw_backend_http_client_request_free(req);
    if (!fetched) {
        from_http_error(&herr, e);
        smsgw_backend_http_client_error_free(&herr);
        return false;
    }
    uint16_t status = resp.status;
    bool ok = status >= 200 && status < 300;
    if (!ok) {
        buf_t r = {0}, text = {0};
        buf_add_utf8_lossy(&text, resp.body.ptr, resp.body.len);
        if (status == 429) {
            buf_addz(&r, "provider throttled ");
            buf_adds(&r, who);
            send_error(e, SMSGW_BACKEND_TYPES_SEND_ERROR_THROTTLED, &r);
            e->val.throttled.retry_after_ms.is_some = false;
            slice_t v;
            uint64_t secs;
            if (header_value(&resp.headers, "retry-after", &v) && slice_parse_u64(slice_trim(v), &secs)) {
                e->val.throttled.retry_after_ms.is_some = true;
                e->val.throttled.retry_after_ms.val = secs > UINT64_MAX / 1000 ? UINT64_MAX : secs * 1000;
            }
        } else {
            buf_addz(&r, status >= 500 ? "provider answered " : "provider refused ");
            if (status >= 500) {
                buf_addu64(&r, status);
                buf_addz(&r, " for ");
                buf_adds(&r, who);
            } else {
                buf_adds(&r, who);
                buf_addz(&r, " with ");
                buf_addu64(&r, status);
            }
            buf_addz(&r, ": ");
            buf_adds(&r, slice_trim(buf_slice(&text)));
            send_error(e, status >= 500 ? SMSGW_BACKEND_TYPES_SEND_ERROR_RETRYABLE : SMSGW_BACKEND_TYPES_SEND_ERROR_PERMANENT, &r);
        }
        buf_free(&text);
    }
    smsgw_backend_http_client_response_free(&resp);
    return ok;
}

/* A failed identity's reason and whether a retry may help (`describe` in lib.rs). */
static smsgw_backend_types_failed_identity_t describe(slice_t identity, const send_error_t *e) {
    smsgw_backend_types_failed_identity_t f = {.identity = wit_dup(identity)};
    switch (e->tag) {
    case SMSGW_BACKEND_TYPES_SEND_ERROR_PERMANENT:
    case SMSGW_BACKEND_TYPES_SEND_ERROR_CONFIG: f.reason = wit_dup(S(e->val.other)), f.retryable = false; break;
    case SMSGW_BACKEND_TYPES_SEND_ERROR_THROTTLED: f.reason = wit_dup(S(e->val.throttled.reason)), f.retryable = true; break;
    case SMSGW_BACKEND_TYPES_SEND_ERROR_FAILED_IDENTITIES: f.reason = wit_dup(SLICE("partial failure")), f.retryable = true; break;
    default: f.reason = wit_dup(S(e->val.other)), f.retryable = true; break;
    }
    return f;
}

static void sent_all(const backend_list_string_t *ids, exports_smsgw_backend_adapter_list_sent_identity_t *ret) {
    *ret = (exports_smsgw_backend_adapter_list_sent_identity_t){0};
    if (ids->len == 0) return;
    ret->ptr = xmalloc(ids->len * sizeof *ret->ptr);
    for (size_t i = 0; i < ids->len; i++) ret->ptr[i] = (smsgw_backend_types_sent_identity_t){.identity = wit_dup(S(ids->ptr[i]))};
    ret->len = ids->len;
}

bool exports_smsgw_backend_adapter_send(exports_smsgw_backend_adapter_backend_context_t *ctx,
                                        exports_smsgw_backend_adapter_outgoing_message_t *msg,
                                        exports_smsgw_backend_adapter_list_sent_identity_t *ret,
                                        exports_smsgw_backend_adapter_send_error_t *err) {
    settings_t s;
    buf_t why = {0};
    bool ok = false;
    const backend_list_string_t *ids = &msg->identities;
    if (!settings_read(S(ctx->config), &s, &why)) {
        send_error(err, SMSGW_BACKEND_TYPES_SEND_ERROR_CONFIG, &why);
        goto done;
    }
    if (!s.has_url) {
        buf_addz(&why, "config key 'sendsms_url' is required to send");
        send_error(err, SMSGW_BACKEND_TYPES_SEND_ERROR_CONFIG, &why);
        goto settings_done;
    }

    if (s.has_separator) {
        /* One request for every identity. */
        buf_t to = {0}, who = {0};
        for (size_t i = 0; i < ids->len; i++) {
            if (i) buf_adds(&to, buf_slice(&s.separator)), buf_addz(&who, ", ");
            buf_adds(&to, S(ids->ptr[i]));
            buf_adds(&who, S(ids->ptr[i]));
        }
        request_t req;
        build_request(&s, msg, buf_slice(&to), &req);
        ok = send_and_classify(&req, buf_slice(&who), err);
        if (ok) sent_all(ids, ret);
        buf_free(&to);
        buf_free(&who);
        goto settings_done;
    }

    /* One request per identity; keep going after a failure. */
    smsgw_backend_types_list_sent_identity_t sent = {0};
    smsgw_backend_types_list_failed_identity_t failed = {0};
    if (ids->len) {
        sent.ptr = xmalloc(ids->len * sizeof *sent.ptr);
        failed.ptr = xmalloc(ids->len * sizeof *failed.ptr);
    }
    send_error_t last = {0};
    bool have_last = false;
    for (size_t i = 0; i < ids->len; i++) {
        slice_t identity = S(ids->ptr[i]);
        request_t req;
        send_error_t e;
        build_request(&s, msg, identity, &req);
        if (send_and_classify(&req, identity, &e)) {
            sent.ptr[sent.len++] = (smsgw_backend_types_sent_identity_t){.identity = wit_dup(identity)};
        } else {
            failed.ptr[failed.len++] = describe(identity, &e);
            if (have_last) smsgw_backend_types_send_error_free(&last);
            last = e;
            have_last = true;
        }
    }
    if (!have_last) {
        ret->ptr = sent.ptr;
        ret->len = sent.len;
        free(failed.ptr);
        ok = true;
    } else if (sent.len == 0 && ids->len == 1) {
        /* Everything failed the same way: report that error as it is. */
        *err = last;
        free(sent.ptr);
        smsgw_backend_types_list_failed_identity_free(&failed);
    } else {
        smsgw_backend_types_send_error_free(&last);
        if (sent.len == 0) free(sent.ptr), sent.ptr = NULL; /* post-return frees only non-empty lists */
        *err = (send_error_t){.tag = SMSGW_BACKEND_TYPES_SEND_ERROR_FAILED_IDENTITIES};
        err->val.failed_identities.sent = sent;
        err->val.failed_identities.failed = failed;
    }

settings_done:
    settings_free(&s);
done:
    exports_smsgw_backend_adapter_backend_context_free(ctx);
    exports_smsgw_backend_adapter_outgoing_message_free(msg);
    return ok;
}
