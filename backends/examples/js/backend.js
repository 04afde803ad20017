// The generic HTTP backend in JavaScript: the same behaviour as the Rust one
// (backends/http/src/lib.rs), built with componentize-qjs (QuickJS).
//
// Inbound: `GET ?identity=..&text=..` or a POSTed form, with configurable
// parameter names. Outbound: one request per identity (or one for all when
// `identity_separator` is set) to `sendsms_url`, as a query, form or JSON.
//
// Conventions of the bindings: records have camelCase keys, variants are
// `{ tag, val }`, options are `null` or the value, and a function returning
// `result<T, E>` returns T or throws E.

import httpClient from "smsgw:backend/http-client@0.1.0";
import log from "smsgw:backend/log@0.1.0";
import {
  Config,
  encodePairs,
  encodeWithSecretRefs,
  objectBody,
  parseForm,
  parseQuery,
  requiredParam,
  retryAfterMs,
  rustTrim,
  sendErrorFromHttp,
  utf8DecodeLossy,
  utf8Encode,
} from "./lib.js";

// The sandbox has no stdout/stderr (writing there would trap), so console goes to the gateway's log.
globalThis.console = {
  log: (...args) => log.log("info", args.join(" ")),
  error: (...args) => log.log("error", args.join(" ")),
};

/**
 * Turns an unexpected exception (a bug) into the error `other(...)` with its
 * stack, and logs it: nothing else could show it here.
 */
function reportsExceptions(fn) {
  // Both adapter functions take two arguments; rest and spread cost more in QuickJS.
  return (first, second) => {
    try {
      return fn(first, second);
    } catch (e) {
      if (e !== null && typeof e === "object" && typeof e.tag === "string") throw e; // a WIT error
      const text = (e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ""}` : String(e)).trimEnd().slice(0, 4000);
      log.log("error", text);
      throw { tag: "other", val: text };
    }
  };
}

/** The options of this backend, read from the operator's table; throws the reason. */
function readSettings(ctx) {
  const c = Config.parse(ctx.config);
  const identityName = c.stringOr("identity_name", "identity");
  const textName = c.stringOr("text_name", "text");
  const configuredMethod = c.string("sendsms_method");
  const method = configuredMethod === null ? "GET" : asciiUpper(configuredMethod);
  if (method !== "GET" && method !== "POST") {
    throw `config key 'sendsms_method' must be GET or POST, not '${method}'`;
  }
  const encoding = c.stringOr("sendsms_encoding", method === "GET" ? "query" : "form");
  if (encoding !== "query" && encoding !== "form" && encoding !== "json") {
    throw `config key 'sendsms_encoding' must be query, form or json, not '${encoding}'`;
  }
  const outIdentityName = c.stringOr("outgoing_identity_name", identityName);
  const outTextName = c.stringOr("outgoing_text_name", textName);
  const outIdName = c.string("outgoing_id_name");
  const sendsmsUrl = c.string("sendsms_url");
  const params = c.stringMap("sendsms_params");
  const identitySeparator = c.string("identity_separator");
  return {
    identityName,
    textName,
    sendsmsUrl,
    method,
    encoding,
    outIdentityName,
    outTextName,
    outIdName,
    params,
    identitySeparator,
  };
}

/** `str::to_ascii_lowercase`: only A-Z change. */
function asciiLower(text) {
  return text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

/** `str::to_ascii_uppercase`: only a-z change. */
function asciiUpper(text) {
  return text.replace(/[a-z]+/g, (s) => s.toUpperCase());
}

/** The provider request for `to` (one identity, or several joined). */
function buildRequest(settings, url, msg, to) {
  const own = [
    [settings.outIdentityName, to],
    [settings.outTextName, msg.text],
  ];
  if (settings.outIdName !== null) own.push([settings.outIdName, msg.id]);
  // Only the operator's parameters may carry {{secret:NAME}} references; the
  // message's own values are fully encoded so a reference typed into an SMS is
  // never filled in.
  const configured = encodeWithSecretRefs(settings.params);
  const ownEncoded = encodePairs(own);
  const encoded = configured === "" ? ownEncoded : `${configured}&${ownEncoded}`;
  const request = { method: settings.method, url, headers: [], body: [], timeoutMs: null };
  switch (settings.encoding) {
    case "query":
      request.url = url + (url.includes("?") ? "&" : "?") + encoded;
      break;
    case "form":
      request.headers.push(["content-type", "application/x-www-form-urlencoded"]);
      request.body = utf8Encode(encoded);
      break;
    default:
      request.headers.push(["content-type", "application/json"]);
      request.body = utf8Encode(objectBody(settings.params, own));
  }
  return request;
}

/** Calls the host's policed HTTP client: { ok: response } or { err: http error }. */
function fetchOnce(request) {
  try {
    return { ok: httpClient.fetch(request) };
  } catch (e) {
    return { err: httpError(e) };
  }
}

/** The `http-client.error` variant, whether thrown bare or wrapped in an Error. */
function httpError(e) {
  if (e && typeof e === "object" && typeof e.tag === "string") return e;
  if (e && typeof e === "object" && e.payload && typeof e.payload.tag === "string") return e.payload;
  throw e; // not a host error: a bug here, reported by reportsExceptions
}

/** What one provider reply means for the identities it covered: null when sent, else a send-error. */
function classify(identities, outcome) {
  const who = identities.join(", ");
  if (outcome.err) return sendErrorFromHttp(outcome.err);
  const resp = outcome.ok;
  const text = () => rustTrim(utf8DecodeLossy(resp.body));
  if (resp.status >= 200 && resp.status < 300) return null;
  if (resp.status === 429) {
    return { tag: "throttled", val: { reason: `provider throttled ${who}`, retryAfterMs: retryAfterMs(resp.headers) } };
  }
  if (resp.status >= 500) {
    return { tag: "retryable", val: `provider answered ${resp.status} for ${who}: ${text()}` };
  }
  return { tag: "permanent", val: `provider refused ${who} with ${resp.status}: ${text()}` };
}

/** A send-error as a failed identity's (reason, retryable). */
function describe(e) {
  switch (e.tag) {
    case "permanent":
    case "config":
      return [e.val, false];
    case "throttled":
      return [e.val.reason, true];
    case "failed-identities":
      return ["partial failure", true];
    default:
      return [e.val, true];
  }
}

function parseIncoming(ctx, req) {
  let settings;
  try {
    settings = readSettings(ctx);
  } catch (reason) {
    throw { tag: "config", val: String(reason) };
  }
  let params;
  if (req.method === "GET") {
    params = parseQuery(req.query);
  } else if (req.method === "POST") {
    const ct = req.headers.find(([name]) => name === "content-type");
    const isForm = ct === undefined || asciiLower(ct[1]).startsWith("application/x-www-form-urlencoded");
    params = isForm ? parseForm(req.body) : [];
  } else {
    throw { tag: "method-not-allowed", val: `method ${req.method} not allowed; use GET or POST` };
  }
  const identity = requiredParam(params, settings.identityName);
  const text = requiredParam(params, settings.textName);
  return {
    messages: [{ identity, text, externalId: null, receivedAt: null, fields: [] }],
    reports: [],
    response: null,
  };
}

function send(ctx, msg) {
  let settings;
  try {
    settings = readSettings(ctx);
  } catch (reason) {
    throw { tag: "config", val: String(reason) };
  }
  const url = settings.sendsmsUrl;
  if (url === null) throw { tag: "config", val: "config key 'sendsms_url' is required to send" };

  if (settings.identitySeparator !== null) {
    const to = msg.identities.join(settings.identitySeparator);
    const error = classify(msg.identities, fetchOnce(buildRequest(settings, url, msg, to)));
    if (error) throw error;
    return msg.identities.map((identity) => ({ identity, externalId: null }));
  }

  const sent = [];
  const failed = [];
  let lastError = null;
  for (const identity of msg.identities) {
    const error = classify([identity], fetchOnce(buildRequest(settings, url, msg, identity)));
    if (error === null) {
      sent.push({ identity, externalId: null });
    } else {
      const [reason, retryable] = describe(error);
      failed.push({ identity, reason, retryable });
      lastError = error;
    }
  }
  if (lastError === null) return sent;
  // Everything failed the same way: report that error as it is.
  if (sent.length === 0 && msg.identities.length === 1) throw lastError;
  throw { tag: "failed-identities", val: { sent, failed } };
}

export const adapter = { parseIncoming: reportsExceptions(parseIncoming), send: reportsExceptions(send) };
