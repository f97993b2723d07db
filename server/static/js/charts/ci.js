// A value with its 95% interval: a bar to the estimate and a whisker across the interval, on a shared scale.

import { s } from "../dom.js";

/**
 * value, low, high: the estimate and its interval; max: the right end of the shared scale;
 * reference: optional value marked with a tick (e.g. 50% for a share).
 */
export function ciBar({ value, low, high, max, colour = "var(--accent)", reference = null, label }) {
  const width = 200;
  const height = 22;
  const pad = 4;
  const x = (v) => pad + (Math.max(0, Math.min(max, v)) / (max || 1)) * (width - 2 * pad);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", class: "ci-bar", role: "img",
    "aria-label": label, dataset: { value, low, high } });
  svg.append(s("rect", { x: pad, y: 8, width: width - 2 * pad, height: 6, rx: 3, fill: "#eef1f4" }));
  if (value !== null) {
    svg.append(s("rect", { class: "estimate", x: pad, y: 8, width: Math.max(0, x(value) - pad), height: 6, rx: 3, fill: colour,
      opacity: 0.85 }));
  }
  if (reference !== null) {
    svg.append(s("line", { x1: x(reference), x2: x(reference), y1: 3, y2: 19, stroke: "#9aa5b1", "stroke-dasharray": "2 2" }));
  }
  const whisker = s("g", { class: "interval", stroke: "#17212b", "stroke-width": 1.6, "vector-effect": "non-scaling-stroke" });
  whisker.append(
    s("line", { x1: x(low), x2: x(high), y1: 11, y2: 11, "vector-effect": "non-scaling-stroke" }),
    s("line", { x1: x(low), x2: x(low), y1: 5, y2: 17, "vector-effect": "non-scaling-stroke" }),
    s("line", { x1: x(high), x2: x(high), y1: 5, y2: 17, "vector-effect": "non-scaling-stroke" }));
  svg.append(whisker);
  // No estimate (value null): the interval alone, with no bar or dot at 0 to read as one.
  if (value !== null) svg.append(s("circle", { cx: x(value), cy: 11, r: 3.2, fill: "#fff", stroke: "#17212b", "stroke-width": 1.5 }));
  return svg;
}
