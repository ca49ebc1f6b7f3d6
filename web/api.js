// The console's one door to the API: the base URL, cookies (credentials:
// "include"), the CSRF header on every write, JSON in and out, and every
// failure as an ApiError carrying the API's `code` and `message`.

/** A failed call: `status` 0 when the API could not be reached at all. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function readCookie(name) {
  for (const pair of document.cookie.split(";")) {
    const [key, ...rest] = pair.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

async function errorOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's or the gateway's own page): keep the status line.
  }
  const retry = response.headers.get("retry-after");
  return new ApiError(
    response.status,
    body.code || `HTTP_${response.status}`,
    body.message || `The API answered ${response.status} ${response.statusText}`.trim(),
    retry === null ? null : Number(retry),
  );
}

export class Api {
  /** `base`: the API's URL, e.g. `https://api.example.com`. */
  constructor(base) {
    this.base = base.replace(/\/+$/, "");
    /** Called with the ApiError of any 401 not expected by the caller. */
    this.onUnauthorized = null;
    /** Where the last CSRF token came from: "cookie" or "header". */
    this.xsrfSource = "";
    this.headerToken = "";
  }

  /**
   * `GET /`: sets the XSRF cookies. A console on another site cannot read the
   * `XSRF-TOKEN` cookie (it belongs to the API's site), so the same token also
   * comes in the `X-XSRF-TOKEN` response header, which CORS exposes.
   */
  async ping() {
    const response = await this.#send("GET", "/");
    this.headerToken = response.headers.get("x-xsrf-token") || "";
    if (!response.ok) throw await errorOf(response);
    return response.json();
  }

  /** The token to echo: the cookie when the page can read it, else the header's. */
  xsrfToken() {
    const cookie = readCookie("XSRF-TOKEN");
    this.xsrfSource = cookie ? "cookie" : this.headerToken ? "header" : "";
    return cookie || this.headerToken;
  }

  get(path, query) {
    return this.request("GET", path, { query });
  }
  post(path, body) {
    return this.request("POST", path, { body });
  }
  patch(path, body) {
    return this.request("PATCH", path, { body });
  }
  delete(path) {
    return this.request("DELETE", path);
  }

  /**
   * One call. A write without a token pings first; a write refused with
   * CSRF_FAILED (cookies expired, key rotated) pings and is sent once more.
   * `quiet401`: the caller expects 401 (`/verify` at start-up) and handles it.
   */
  async request(method, path, { body, query, quiet401 = false } = {}) {
    const write = WRITES.has(method);
    if (write && !this.xsrfToken()) await this.ping();
    let response = await this.#send(method, path, body, query);
    if (write && response.status === 403) {
      const error = await errorOf(response);
      if (error.code !== "CSRF_FAILED") throw error;
      await this.ping();
      response = await this.#send(method, path, body, query);
    }
    if (response.ok) {
      return response.status === 204 ? null : response.json();
    }
    const error = await errorOf(response);
    // Later codes (REAUTHENTICATE) reach the handler too, which tells them apart.
    if (response.status === 401 && !quiet401 && this.onUnauthorized) {
      this.onUnauthorized(error);
    }
    throw error;
  }

  async #send(method, path, body, query) {
    const url = new URL(this.base + path);
    for (const [key, value] of Object.entries(query || {})) {
      url.searchParams.set(key, value);
    }
    const headers = {};
    if (WRITES.has(method)) headers["X-XSRF-TOKEN"] = this.xsrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      return await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "include",
        cache: "no-store",
      });
    } catch {
      throw new ApiError(
        0,
        "NETWORK",
        `Cannot reach the API at ${this.base} (offline, or it does not allow this console's origin)`,
      );
    }
  }
}
