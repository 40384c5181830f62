// A small client of Doorstep's API for its pages: the key as a bearer token, JSON in and out,
// and errors that say whether the server answered (ApiError) or could not be reached (Offline).

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

export class Offline extends Error {}

export class Api {
  constructor(key, { timeoutMs = 15000 } = {}) {
    this.key = key;
    this.timeoutMs = timeoutMs;
  }

  async request(method, path, { body, headers = {} } = {}) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: {
          Accept: "application/json",
          ...(this.key ? { Authorization: `Bearer ${this.key}` } : {}),
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        referrerPolicy: "no-referrer",
        signal: controller.signal,
      });
    } catch (error) {
      throw new Offline(String(error)); // no signal, or the server is out of reach
    } finally {
      clearTimeout(timer);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!response.ok) {
      throw new ApiError(response.status, (data && data.detail) || response.statusText);
    }
    return { status: response.status, data };
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body, headers) {
    return this.request("POST", path, { body, headers });
  }
}

// A 422's first error as "field: message" (the API names the field that is wrong).
export function describe(error) {
  if (error instanceof ApiError && Array.isArray(error.detail) && error.detail.length) {
    const first = error.detail[0];
    return `${(first.loc || []).filter((p) => p !== "body").join(".")}: ${first.msg}`;
  }
  return error.message;
}
