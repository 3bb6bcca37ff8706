// The platform's REST API and the UI's own endpoints, called with the signed-in user's token.

export const TOKEN_KEY = "fleuve.token";
export const UI = "/api/fleuve/v1/ui";
export const FLEUVE = "/api/fleuve/v1";
export const state = { me: null, completion: null };

let signedOut = () => {};

// The shell shows its sign-in form when the server no longer accepts the token.
export function onSignedOut(handler) {
  signedOut = handler;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Authorization: `_dremio${localStorage.getItem(TOKEN_KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    localStorage.removeItem(TOKEN_KEY);
    state.me = null;
    signedOut();
    throw new ApiError(401, "please sign in again");
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try { const e = await res.json(); message = e.errorMessage || message; } catch (_) { /* not JSON */ }
    throw new ApiError(res.status, message);
  }
  if (raw) return res;
  return res.status === 204 ? null : res.json();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Run SQL as a job through the REST API v3 and wait for it to finish.
export async function sqlJob(sql) {
  const { id } = await api("/api/v3/sql", { method: "POST", body: { sql } });
  let delay = 20;
  for (;;) {
    const job = await api(`/api/v3/job/${id}`);
    if (job.jobState === "COMPLETED") return { id, job };
    if (job.jobState === "FAILED") throw new ApiError(400, job.errorMessage || "the query failed");
    if (job.jobState === "CANCELED") throw new ApiError(400, "the query was cancelled");
    await sleep(delay);
    delay = Math.min(delay * 2, 500);
  }
}

export async function completionData(refresh = false) {
  if (!state.completion || refresh) {
    state.completion = api(`${UI}/completion`).then((r) => r.datasets);
  }
  return state.completion;
}
