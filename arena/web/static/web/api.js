// JSON calls to Arena's HTTP API with the session cookie and the CSRF token.
// Errors are `{"error", "detail"}` (docs/protocol.md); they become ApiError.

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || null;
    this.detail = detail || this.message;
  }
}

export function readCookie(name, cookieString = globalThis.document ? document.cookie : "") {
  for (const part of cookieString.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

export async function api(method, url, body, { fetchImpl = globalThis.fetch } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") {
    const csrf = readCookie("csrftoken");
    if (csrf) headers["X-CSRFToken"] = csrf;
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetchImpl(url, init);
  } catch (err) {
    throw new ApiError(0, "network_error", "The server cannot be reached. Retrying…");
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const code = data && data.error;
    const detail = (data && data.detail) || `${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, code, detail);
  }
  return { status: response.status, data };
}
