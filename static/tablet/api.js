// Talking to the terminal's API with the device token, and the queue's sync.
//
// Only a parsed JSON 200 counts as an answer: a network error, a 5xx, a 401/403, a
// redirect (a captive portal, a proxy's login page) or a body that is not JSON leaves
// every item queued for the next try.
import * as store from "./store.js";

export const BATCH = 50; // the server takes at most 50 payouts and 50 visits per request
const BATCH_BYTES = 4 * 1024 * 1024; // signatures make payouts large: keep a request modest
const TIMEOUT_MS = 30000;

/** An answer that is not a usable success; `kind` says what to tell the user. */
export class ApiError extends Error {
  constructor(kind, status = 0, body = null) {
    super(kind);
    this.kind = kind; // offline | unauthorized | forbidden | not_found | server | bad_answer | refused
    this.status = status;
    this.body = body;
  }
}

/** Call the API; resolve to {status, body} for a JSON 2xx (or 204), else throw ApiError. */
export async function call(method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: "manual",
      cache: "no-store",
      credentials: "omit", // the device token only, never a signed-in browser's cookie
      signal: abort.signal,
    });
  } catch (_err) {
    throw new ApiError("offline");
  } finally {
    clearTimeout(timer);
  }
  if (response.type === "opaqueredirect" || response.redirected || (response.status >= 300 && response.status < 400)) {
    throw new ApiError("bad_answer", response.status);
  }
  if (response.status === 204) return { status: 204, body: null };
  const type = response.headers.get("Content-Type") || "";
  let parsed = null;
  if (type.includes("application/json")) {
    try {
      parsed = await response.json();
    } catch (_err) {
      parsed = null;
    }
  }
  if (response.status === 401) throw new ApiError("unauthorized", 401, parsed);
  if (response.status === 403) throw new ApiError("forbidden", 403, parsed);
  if (response.status >= 500) throw new ApiError("server", response.status, parsed);
  if (parsed === null || typeof parsed !== "object") throw new ApiError("bad_answer", response.status);
  if (response.status === 404) throw new ApiError("not_found", 404, parsed);
  if (response.status < 200 || response.status >= 300) throw new ApiError("refused", response.status, parsed);
  return { status: response.status, body: parsed };
}

function takeBatch(items) {
  const batch = [];
  let bytes = 0;
  while (items.length && batch.length < BATCH) {
    const size = JSON.stringify(items[0].body).length;
    if (batch.length && bytes + size > BATCH_BYTES) break;
    bytes += size;
    batch.push(items.shift());
  }
  return batch;
}

/**
 * Send the whole queue in batches; move each answered item to the history.
 * Returns the history entries made. Throws ApiError when a batch gets no usable
 * answer (the items of that batch and the later ones stay queued).
 */
export async function syncQueue(token) {
  const queued = (await store.all(store.QUEUE)).sort((a, b) => a.seq - b.seq);
  const payouts = queued.filter((item) => item.kind === "payout");
  const visits = queued.filter((item) => item.kind === "visit");
  const settled = [];
  while (payouts.length || visits.length) {
    const sentPayouts = takeBatch(payouts);
    const sentVisits = takeBatch(visits);
    const { status, body } = await call("POST", "/api/v1/sync", {
      token,
      body: { payouts: sentPayouts.map((item) => item.body), visits: sentVisits.map((item) => item.body) },
    });
    if (status !== 200 || !Array.isArray(body.results)) throw new ApiError("bad_answer", status);
    const answered = new Date().toISOString();
    const entries = [];
    const answers = [
      [sentPayouts, body.results],
      [sentVisits, Array.isArray(body.visits) ? body.visits : []],
    ];
    for (const [sent, results] of answers) {
      const byRef = new Map(sent.map((item) => [item.client_ref, item]));
      for (const result of results) {
        const item = result && byRef.get(result.client_ref);
        if (!item || typeof result.status !== "string") continue;
        // "rejected" with error "retry" is the server saying "not now" (a race it lost): not an answer.
        if (result.status === "rejected" && result.error === "retry") continue;
        byRef.delete(result.client_ref);
        entries.push({ ...item, result, answered_at: answered });
      }
    }
    await store.settle(entries);
    settled.push(...entries);
  }
  return settled;
}
