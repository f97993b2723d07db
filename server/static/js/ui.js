// The page shell (top bar, navigation, key prompt, error banner) and the loading / empty / error states.

import { ApiError, captureKeyFromUrl, clearKey, getKey, setKey } from "./api.js";
import { selectField } from "./controls.js";
import { clear, fill, h } from "./dom.js";

const LOGO = `<svg viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8" fill="#14b8a6"/>
<path d="M8 22V10M13 22V14M18 22V7M23 22v-9" stroke="#0f2a33" stroke-width="3" stroke-linecap="round"/></svg>`;

const PAGES = [
  { id: "overview", label: "Overview", href: "/dashboard/" },
  { id: "zone", label: "Zones", href: "/dashboard/zone" },
  { id: "ads", label: "Ad placement", href: "/dashboard/ad-placement" },
];

export function pageParams() {
  return new URLSearchParams(window.location.search);
}

/** Writes the page's state into the address bar (shareable links; never the key). */
export function setParams(values) {
  const url = new URL(window.location.href);
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === null || value === "") url.searchParams.delete(name);
    else url.searchParams.set(name, value);
  }
  window.history.replaceState(null, "", url.pathname + url.search);
}

function renderTopbar(active) {
  const bar = document.getElementById("topbar");
  const site = pageParams().get("site");
  const inner = h("div", { class: "inner" });
  const brand = h("a", { class: "brand", href: "/dashboard/" });
  brand.innerHTML = LOGO; // constant markup, no data
  brand.append(h("span", {}, "footfall"));
  const nav = h("nav", { class: "nav", "aria-label": "Dashboard pages" },
    PAGES.map((page) => h("a", {
      href: site && page.id !== "overview" ? `${page.href}?site=${encodeURIComponent(site)}` : page.href,
      "aria-current": page.id === active ? "page" : null,
    }, page.label)));
  const keyButton = h("button", { class: "keybtn", type: "button", id: "change-key" }, "API key");
  keyButton.addEventListener("click", () => openKeyDialog(""));
  inner.append(brand, nav, keyButton);
  bar.replaceChildren(inner);
}

// ---- key prompt ------------------------------------------------------------------------------------------

let dialog;
let onKeyEntered = () => {};

function buildDialog() {
  const error = h("p", { class: "err", role: "alert", id: "key-error", hidden: true });
  const input = h("input", { type: "password", id: "key-input", name: "key", autocomplete: "off", spellcheck: "false",
    placeholder: "ffk_…", required: true, "aria-describedby": "key-help" });
  const cancel = h("button", { type: "button", class: "btn", id: "key-cancel" }, "Cancel");
  const form = h("form", { method: "dialog" },
    h("h2", { id: "key-title" }, "Viewer API key"),
    h("p", { class: "muted", id: "key-help" },
      "The dashboard reads the footfall API with a key of role viewer or admin. It is kept in this browser tab " +
      "only and forgotten when the tab closes. An administrator creates one with ",
      h("code", {}, "footfall keys create --role viewer --name you"), "."),
    error,
    h("label", { for: "key-input", class: "sr-only" }, "API key"),
    input,
    h("div", { class: "actions" }, cancel, h("button", { type: "submit", class: "btn primary", id: "key-submit" }, "Open dashboard")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    setKey(value);
    input.value = "";
    dialog.close();
    onKeyEntered();
  });
  cancel.addEventListener("click", () => dialog.close());
  dialog = h("dialog", { class: "keydialog", "aria-labelledby": "key-title", id: "key-dialog" }, form);
  document.body.append(dialog);
}

export function openKeyDialog(message) {
  const error = dialog.querySelector("#key-error");
  error.textContent = message || "";
  error.hidden = !message;
  dialog.querySelector("#key-cancel").hidden = !getKey();
  if (!dialog.open) dialog.showModal();
  dialog.querySelector("#key-input").focus();
}

// ---- banner and states -----------------------------------------------------------------------------------

export function showBanner(kind, title, text, action, actionLabel = "Retry") {
  const banner = document.getElementById("banner");
  const parts = [h("div", { class: "msg" }, h("strong", {}, title), text ? h("span", {}, text) : null)];
  if (action) parts.push(h("button", { class: "btn", type: "button", onclick: action }, actionLabel));
  banner.replaceChildren(h("div", { class: `banner ${kind}`, role: kind === "error" ? "alert" : "status" }, parts));
}

export function hideBanner() {
  clear(document.getElementById("banner"));
}

export function loading(node, text = "Loading…") {
  node.replaceChildren(h("div", { class: "state", role: "status", "aria-live": "polite" },
    h("div", { class: "spinner", "aria-hidden": "true" }), h("span", {}, text)));
}

export function empty(node, title, ...text) {
  node.replaceChildren(h("div", { class: "state empty", dataset: { state: "empty" } },
    h("div", { class: "title" }, title), text.length ? h("div", {}, ...text) : null));
}

function handleError(error, retry) {
  if (error instanceof ApiError) {
    if (error.kind === "auth") {
      const hadKey = Boolean(getKey());
      clearKey();
      openKeyDialog(hadKey ? error.message : "");
      showBanner("info", "A viewer API key is needed.", " Enter it to load the dashboard.",
        () => openKeyDialog(""), "Enter key");
      return;
    }
    if (error.kind === "forbidden") {
      clearKey();
      openKeyDialog(error.message);
      return;
    }
    if (error.kind === "network") {
      showBanner("error", "Server unreachable.", ` ${error.message}`, retry);
      return;
    }
    if (error.kind === "server") {
      showBanner("error", "Server error.", ` ${error.message}`, retry);
      return;
    }
    // A refused request (a range too long for the granularity, say) keeps the controls usable to fix it.
    reveal();
    for (const spinner of document.querySelectorAll("#content .state[role=status]")) {
      spinner.replaceWith(h("div", { class: "state empty" }, h("div", {}, "Not loaded: see the message above.")));
    }
    showBanner("error", "Request refused.", ` ${error.message}`, retry);
    return;
  }
  showBanner("error", "Something went wrong in the page.", ` ${error && error.message ? error.message : error}`, retry);
  throw error;
}

/** A wide table in a box of its own that scrolls sideways (the page itself keeps the screen's width), with a cue
 * above it while columns are out of sight: on a phone the ranking's audience column was cut off without a word. */
export function tableBox(table, label = "Table") {
  const wrap = h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `${label} (scrolls sideways)` }, table);
  const hint = h("p", { class: "scroll-hint", hidden: true }, "More columns to the right: scroll the table sideways →");
  const box = h("div", { class: "table-box" }, hint, wrap);
  const update = () => {
    const more = wrap.scrollWidth > wrap.clientWidth + 1;
    hint.hidden = !more;
    wrap.dataset.overflow = String(more);
    wrap.tabIndex = more ? 0 : -1;
  };
  if (typeof ResizeObserver === "function") {
    const observer = new ResizeObserver(update);
    observer.observe(wrap);
    observer.observe(table);
  }
  requestAnimationFrame(update);
  return box;
}

/** The address names no site the server has (an old bookmark, a site id typed wrong): says so, with a site picker
 * in the page's controls and a link to the overview, and hides ``figures`` (the page's nodes that show a site's
 * figures; the first site's, shown instead, read as the site asked for). The address is left as it was.
 * ``onPick(siteId)`` loads the site picked. ``asked`` goes in as text, never as HTML. */
export function showMissingSite(asked, sites, figures, onPick) {
  document.title = `No site '${asked}' · footfall`;
  fill(document.getElementById("crumbs"), h("a", { href: "/dashboard/" }, "Overview"));
  const controls = document.getElementById("controls");
  controls.replaceChildren(selectField("site", "Site", [
    { value: "", label: "Pick a site" },
    ...sites.map((one) => ({ value: one.site_id, label: one.name })),
  ], "", (value) => { if (value) onPick(value); }));
  for (const node of figures) {
    if (!("siteMissing" in node.dataset)) node.dataset.siteMissing = String(node.hidden); // restored by clearMissingSite
    node.hidden = true;
  }
  let box = document.getElementById("site-missing");
  if (!box) {
    box = h("div", { class: "panel spaced", id: "site-missing" });
    controls.after(box);
  }
  fill(box, h("div", { class: "state empty", role: "alert", dataset: { state: "missing-site" } },
    h("div", { class: "title" }, `No site '${asked}'`),
    h("div", {}, "No site has this id: it may have been renamed or removed, or the link mistyped. Pick a site above, " +
      "or see every site on the ", h("a", { href: "/dashboard/" }, "overview"), ".")));
}

/** Undoes showMissingSite once the address names a site: the message goes, the figures' boxes are as they were. */
export function clearMissingSite() {
  document.getElementById("site-missing")?.remove();
  for (const node of document.querySelectorAll("[data-site-missing]")) {
    node.hidden = node.dataset.siteMissing === "true";
    delete node.dataset.siteMissing;
  }
}

/** Shows the page's content (hidden until the first answer, so errors do not sit over empty panels). Call it
 * before drawing charts: they size themselves to their box. */
export function reveal() {
  document.body.classList.add("loaded");
}

/** Sets up a page: shell, key from the URL or storage, then runs ``load`` (again after a new key or a retry). */
export function startPage(active, load) {
  captureKeyFromUrl();
  renderTopbar(active);
  buildDialog();
  let running = null;
  const run = async () => {
    if (running) return running;
    hideBanner();
    document.body.dataset.ready = "false";
    running = (async () => {
      try {
        await load();
        document.body.classList.add("loaded");
        document.body.dataset.ready = "true";
      } catch (error) {
        document.body.dataset.ready = "error";
        handleError(error, run);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  onKeyEntered = run;
  if (!getKey()) {
    document.body.dataset.ready = "error";
    showBanner("info", "A viewer API key is needed.", " Enter it to load the dashboard.", () => openKeyDialog(""),
      "Enter key");
    openKeyDialog("");
  } else {
    run();
  }
  return run;
}
