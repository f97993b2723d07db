// Occupancy over a day: people inside (in − out through the site's entrances since its closing time) at the end of
// each hour, as a step area in the traffic chart's style. Hours without entrance data, and hours whose occupancy the
// API says is unknown (people null: an entrance hour not observed, or nothing released since the closing time), stay
// gaps, never invented.

import { h, s } from "../dom.js";
import { fmtInt, plural, zonedParts } from "../format.js";
import { compact, linear, niceTicks } from "./scale.js";

const HOUR_MS = 3600e3;

/**
 * The curve of a visitors answer (hour granularity) from ``dayStart`` (ms: the closing time occupancy counts from) to
 * the answer's end.
 * data: the API's Visitors answer; returns an element (the chart, or a line saying why there is none).
 */
export function occupancyCurve(data, dayStart) {
  const points = data.points.filter((p) => p.occupancy !== null && p.occupancy.people !== null);
  const tz = data.timezone;
  const width = 300;
  const height = 70;
  const m = { l: 26, r: 4, t: 6, b: 16 };
  const t0 = dayStart;
  const t1 = Math.max(Date.parse(data.end), t0 + HOUR_MS);
  const x = linear(t0, t1, m.l, width - m.r);
  const label = (t) => {
    const p = zonedParts(t, tz);
    return `${String(p.hour).padStart(2, "0")}:${String(p.minute).padStart(2, "0")}`;
  };
  const top = Math.max(1, ...points.map((p) => p.occupancy.people));
  const ticks = niceTicks(top, 2);
  const y = linear(0, ticks[ticks.length - 1], height - m.b, m.t);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "occupancy-chart", role: "img",
    preserveAspectRatio: "none", dataset: { points: points.length },
    "aria-label": `Occupancy at the end of each hour since ${label(t0)}, ${plural(points.length, "hour")} with entrance counts` });

  const axisY = s("g", { class: "axis axis-y" });
  for (const v of ticks) {
    axisY.append(s("line", { class: "gridline", x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }),
      s("text", { x: m.l - 4, y: y(v) + 3, "text-anchor": "end" }, compact(v)));
  }
  // The first label is where the curve starts (the closing time, when occupancy starts again from 0), then every
  // sixth local hour, none closer than a label's width to the one before.
  const axisX = s("g", { class: "axis axis-x" });
  const labelWidth = 30; // "00:00" at the axis's 9 px, in the chart's units
  let rightEdge = -Infinity;
  for (let t = t0; t <= t1; t = (Math.floor(t / HOUR_MS) + 1) * HOUR_MS) {
    if (t !== t0 && zonedParts(t, tz).hour % 6 !== 0) continue;
    const anchor = t === t0 ? "start" : x(t) + labelWidth / 2 > width ? "end" : "middle";
    const left = x(t) - (anchor === "start" ? 0 : anchor === "end" ? labelWidth : labelWidth / 2);
    if (left < rightEdge + 4) continue;
    axisX.append(s("text", { x: x(t), y: height - 3, "text-anchor": anchor, dataset: { t: new Date(t).toISOString() } },
      label(t)));
    rightEdge = left + labelWidth;
  }
  axisX.append(s("line", { x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b }));
  svg.append(axisY, axisX);

  // One step area per run of consecutive hours; each hour shows the occupancy at its end.
  let d = "";
  let line = "";
  let runStart = null;
  let previousEnd = null;
  const close = () => {
    if (runStart === null) return;
    d += `L${x(previousEnd).toFixed(1)},${y(0).toFixed(1)}L${x(runStart).toFixed(1)},${y(0).toFixed(1)}Z`;
    runStart = null;
  };
  for (const p of points) {
    const a = Math.max(t0, Date.parse(p.start));
    const b = Math.min(t1, Date.parse(p.start) + HOUR_MS);
    if (b <= a) continue;
    if (previousEnd === null || Math.abs(a - previousEnd) > 60e3) {
      close();
      runStart = a;
      d += `M${x(a).toFixed(1)},${y(0).toFixed(1)}`;
      line += `M${x(a).toFixed(1)},${y(p.occupancy.people).toFixed(1)}`;
    }
    const py = y(p.occupancy.people).toFixed(1);
    d += `L${x(a).toFixed(1)},${py}L${x(b).toFixed(1)},${py}`;
    line += `L${x(a).toFixed(1)},${py}L${x(b).toFixed(1)},${py}`;
    previousEnd = b;
  }
  close();
  if (d) {
    svg.append(s("path", { d, class: "occupancy-area", fill: "var(--accent)", opacity: 0.25 }),
      s("path", { d: line, class: "occupancy-line", fill: "none", stroke: "var(--accent)", "stroke-width": 1.5 }));
  }
  const hits = s("g", { class: "hits" });
  for (const p of points) {
    const a = Math.max(t0, Date.parse(p.start));
    const b = Math.min(t1, Date.parse(p.start) + HOUR_MS);
    const shown = `${p.label}: ${fmtInt(p.occupancy.people)} inside at the hour's end` +
      (p.occupancy.withheld_cells
        ? ` (${plural(p.occupancy.withheld_cells, "entrance hour")} withheld for privacy: uncertain)` : "");
    hits.append(s("rect", { x: x(a), width: Math.max(1, x(b) - x(a)), y: m.t, height: height - m.b - m.t, fill: "transparent" },
      s("title", {}, shown)));
  }
  svg.append(hits);
  return h("div", { class: "occupancy" }, svg);
}
