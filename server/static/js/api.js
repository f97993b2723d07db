// Talks to the footfall API with the viewer's key, sent as the X-API-Key header. The key lives in sessionStorage
// only (gone when the tab closes); a `?key=` or `#key=` on first load is taken and removed from the address bar
// so it is not bookmarked or shared.

const STORAGE = "footfall.apiKey";
export const API = "/api/v1";

export class ApiError extends Error {
  /** kind: "auth" (401), "forbidden" (403), "notfound" (404), "request" (other 4xx), "server" (5xx), "network". */
  constructor(kind, message, status = 0) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** Takes a key from `?key=` or `#key=` (the fragment never reaches the server's logs) into sessionStorage and
 * removes it from the address bar and the current history entry. */
export function captureKeyFromUrl() {
  const url = new URL(window.location.href);
  const fragment = new URLSearchParams(url.hash.slice(1));
  const key = url.searchParams.get("key") ?? fragment.get("key");
  if (key === null) return;
  if (key.trim()) setKey(key.trim());
  url.searchParams.delete("key");
  fragment.delete("key");
  const hash = fragment.toString();
  window.history.replaceState(window.history.state, "", url.pathname + url.search + (hash ? `#${hash}` : ""));
}

export function getKey() {
  try {
    return sessionStorage.getItem(STORAGE) || "";
  } catch {
    return "";
  }
}

export function setKey(key) {
  sessionStorage.setItem(STORAGE, key);
}

/** Forgets the key, and every page's figures kept in this tab for it (a refused key must not repaint them). */
export function clearKey() {
  for (const name of Object.keys(sessionStorage)) {
    if (name === STORAGE || name.startsWith("footfall.")) sessionStorage.removeItem(name);
  }
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(name, String(item));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function request(path, params) {
  const key = getKey();
  if (!key) throw new ApiError("auth", "Enter a viewer API key to see the dashboard.", 401);
  let response;
  try {
    response = await fetch(API + path + query(params), {
      headers: { "X-API-Key": key, Accept: "application/json" },
      cache: "no-store",
    });
  } catch {
    throw new ApiError("network", "The footfall server cannot be reached. Check that it is running and that " +
      "this computer is on its network.");
  }
  if (response.ok) return response;
  let detail = "";
  try {
    const body = await response.json();
    detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    detail = response.statusText;
  }
  const status = response.status;
  if (status === 401) throw new ApiError("auth", `The server did not accept this key: ${detail}.`, status);
  if (status === 403) throw new ApiError("forbidden", `This key cannot read the dashboard: ${detail}.`, status);
  if (status === 404) throw new ApiError("notfound", detail, status);
  if (status >= 500) throw new ApiError("server", `The server failed to answer (${status}): ${detail}`, status);
  throw new ApiError("request", detail || `request failed (${status})`, status);
}

export async function api(path, params) {
  const response = await request(path, params);
  return response.json();
}

/** Downloads a file from the API (the key travels in a header, so a plain link cannot do it). */
export async function download(path, params, fallbackName) {
  const response = await request(path, params);
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = disposition.match(/filename="?([^";]+)"?/);
  const name = match ? match[1] : fallbackName;
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  return name;
}
