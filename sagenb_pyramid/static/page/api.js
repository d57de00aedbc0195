// Requests of the pages: the JSON API (CSRF header, {"error"} answers as ApiError) and
// uploads through XMLHttpRequest (for their progress), shared by the worksheet's data
// files and the listing's worksheet upload.

export class ApiError extends Error {
  constructor(message, status, data = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    // The answer's JSON (a 409 of an edit carries the cell's current input).
    this.data = data;
  }
}

// The session's CSRF token (the layout's <meta>, or a form's hidden field).
export function csrfToken(form = null) {
  return document.querySelector('meta[name="csrf-token"]')?.content
    || form?.querySelector("input[name=csrf_token]")?.value || "";
}

// api(method, path, body, {signal, keepalive}) -> the answer's JSON; paths are relative
// to `base` (the worksheet's URL).
export function jsonApi(base, csrf) {
  return async function api(method, path, body, { signal, keepalive } = {}) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin", signal, keepalive, cache: "no-store" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = csrf;
      if (method !== "DELETE" || body !== undefined) init.body = JSON.stringify(body ?? {});
    }
    let resp;
    try {
      resp = await fetch(new URL(path, base), init);
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError("Cannot reach the server (network error).", 0);
    }
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!resp.ok) {
      const msg = (data && data.error) || `${resp.status} ${resp.statusText || "error"}`;
      throw new ApiError(msg, resp.status, data);
    }
    if (data === null) {
      throw new ApiError("Unexpected answer from the server (logged out?). Reload the page.", resp.status);
    }
    return data;
  };
}

// POST a FormData with XMLHttpRequest: resolves to the JSON answer of a 2xx; rejects
// with an ApiError (the server's message, a 413, the status, or a network error), or an
// error named AbortError when `signal` aborts it.  onProgress(loaded, total) while sent.
export function upload(url, body, { csrf, onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", csrf ?? csrfToken());
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && e.total > 0 && onProgress) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener("load", () => {
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        answer = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && answer) {
        resolve(answer);
      } else if (answer && typeof answer.error === "string") {
        reject(new ApiError(answer.error, xhr.status));
      } else if (xhr.status === 413) {
        reject(new ApiError("the file is too large for the server", 413));
      } else {
        reject(new ApiError(`${xhr.status} ${xhr.statusText || "error"}`.trim(), xhr.status));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError("cannot reach the server (network error)", 0)));
    const cancelled = () => {
      const err = new Error("Upload cancelled.");
      err.name = "AbortError";
      reject(err);
    };
    xhr.addEventListener("abort", cancelled);
    if (signal) {
      if (signal.aborted) {
        cancelled();
        return;
      }
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    xhr.send(body);
  });
}
