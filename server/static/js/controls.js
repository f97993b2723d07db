// Form controls shared by the pages: segmented buttons, selects, and the site's date range.

import { h } from "./dom.js";
import { addDays, isoUtc, localDate, midnightUtc } from "./format.js";

/** Segmented control: options [{value, label}], calls onChange(value). */
export function segmented(name, label, options, value, onChange, { disabled = false } = {}) {
  const group = h("div", { class: "seg", role: "group", "aria-label": label, id: `seg-${name}` });
  for (const option of options) {
    const button = h("button", { type: "button", "aria-pressed": String(option.value === value), disabled: disabled || null,
      dataset: { value: option.value }, title: option.title || null }, option.label);
    button.addEventListener("click", () => {
      for (const b of group.children) b.setAttribute("aria-pressed", String(b === button));
      onChange(option.value);
    });
    group.append(button);
  }
  return h("div", { class: "field" }, h("span", { class: "flabel", "aria-hidden": "true" }, label), group);
}

export function selectField(name, label, options, value, onChange) {
  const id = `sel-${name}`;
  const select = h("select", { id, name }, options.map((o) => h("option", { value: o.value, selected: o.value === value || null }, o.label)));
  select.addEventListener("change", () => onChange(select.value));
  return h("div", { class: "field" }, h("label", { for: id }, label), select);
}

export const RANGES = [
  { value: "7d", label: "7 days", days: 7 },
  { value: "14d", label: "14 days", days: 14 },
  { value: "28d", label: "4 weeks", days: 28 },
  { value: "84d", label: "12 weeks", days: 84 },
];

/**
 * Local-calendar range of a site: whole local days from ``from`` to ``to`` inclusive.
 * Returns {from, to, start, end} with start/end as UTC ISO strings for the API.
 */
export function resolveRange(params, tz, fallback = "7d", presets = RANGES) {
  const today = localDate(Date.now(), tz);
  let range = params.get("range") || fallback;
  let from = params.get("from");
  let to = params.get("to");
  const iso = /^\d{4}-\d{2}-\d{2}$/;
  if (range === "custom" && iso.test(from || "") && iso.test(to || "") && from <= to) {
    // keep the custom days
  } else {
    const preset = presets.find((r) => r.value === range) || presets.find((r) => r.value === fallback);
    range = preset.value;
    to = today;
    from = addDays(today, -(preset.days - 1));
  }
  const startMs = midnightUtc(from, tz);
  const endMs = midnightUtc(addDays(to, 1), tz);
  return { range, from, to, startMs, endMs, start: isoUtc(startMs), end: isoUtc(endMs),
    days: Math.round((endMs - startMs) / 86400e3) };
}

/** Range picker: presets plus two date inputs (editing a date switches to a custom range). */
export function rangeField(current, onChange, presetList = RANGES) {
  const presets = segmented("range", "Range", presetList, current.range, (value) => onChange({ range: value, from: null, to: null }));
  const from = h("input", { type: "date", id: "range-from", value: current.from, max: current.to, "aria-label": "First day" });
  const to = h("input", { type: "date", id: "range-to", value: current.to, min: current.from, "aria-label": "Last day" });
  const changed = () => {
    if (from.value && to.value && from.value <= to.value) onChange({ range: "custom", from: from.value, to: to.value });
  };
  from.addEventListener("change", changed);
  to.addEventListener("change", changed);
  const dates = h("div", { class: "field" }, h("span", { class: "flabel" }, "From – to (site time)"),
    h("div", { style: "display:flex;gap:.4rem;align-items:center" }, from, h("span", { class: "faint" }, "–"), to));
  return [presets, dates];
}
