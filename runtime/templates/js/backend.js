// {{name}}: an smsgw backend. Inbound: `GET ?from=...&text=...`; outbound: a
// JSON POST per message to the configured `url`. Change both to match your
// provider, then pin the behaviour in `testdata/`.
//
// The exported `adapter` object implements the WIT interface of the same name;
// a `result` error is thrown as `{ tag, val }`. console.log writes to the
// gateway's log.

import httpClient from "smsgw:backend/http-client@0.1.0";
import log from "smsgw:backend/log@0.1.0";

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
  return (...args) => {
    try {
      return fn(...args);
    } catch (e) {
      if (e !== null && typeof e === "object" && typeof e.tag === "string") throw e; // a WIT error
      const text = (e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ""}` : String(e)).trimEnd().slice(0, 4000);
      log.log("error", text);
      throw { tag: "other", val: text };
    }
  };
}

/** UTF-8 bytes of a string (QuickJS inside the component has no TextEncoder). */
function utf8(text) {
  return Uint8Array.from(unescape(encodeURIComponent(text)), (c) => c.charCodeAt(0));
}

/** A percent-encoded query component, decoded; null when malformed (e.g. `%ZZ`). */
function decode(component) {
  try {
    return decodeURIComponent(component.replace(/\+/g, " "));
  } catch {
    return null;
  }
}

/** The first value of a query parameter, trimmed; a 400 naming it when missing or malformed. */
function param(query, name) {
  for (const pair of query.split("&")) {
    const [key, value = ""] = pair.split("=");
    if (decode(key) !== name) continue;
    const text = decode(value);
    if (text === null) throw { tag: "invalid-request", val: `malformed percent-encoding in parameter '${name}'` };
    if (text.trim() !== "") return text.trim();
  }
  throw { tag: "invalid-request", val: `missing parameter '${name}'` };
}

function parseIncoming(ctx, req) {
  if (req.method !== "GET") throw { tag: "method-not-allowed", val: `use GET, not ${req.method}` };
  const message = { identity: param(req.query, "from"), text: param(req.query, "text"), externalId: null, receivedAt: null, fields: [] };
  const ok = { status: 200, headers: [["content-type", "text/plain"]], body: utf8("OK") };
  return { messages: [message], reports: [], response: ok };
}

function send(ctx, msg) {
  const config = JSON.parse(ctx.config || "{}");
  if (typeof config.url !== "string") throw { tag: "config", val: "config key 'url' is required" };
  const body = utf8(JSON.stringify({ to: msg.identities, text: msg.text, id: msg.id }));
  let response;
  try {
    response = httpClient.fetch({ method: "POST", url: config.url, headers: [["content-type", "application/json"]], body, timeoutMs: null });
  } catch (e) {
    throw { tag: "retryable", val: `provider unreachable: ${JSON.stringify(e)}` };
  }
  if (response.status >= 200 && response.status < 300) {
    return msg.identities.map((identity) => ({ identity, externalId: null }));
  }
  if (response.status >= 500) throw { tag: "retryable", val: `provider answered ${response.status}` };
  throw { tag: "permanent", val: `provider answered ${response.status}` };
}

export const adapter = { parseIncoming: reportsExceptions(parseIncoming), send: reportsExceptions(send) };
