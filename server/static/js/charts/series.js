// Traffic over time: female, male and unknown stacked as step areas (each bucket is a flat step, so gaps in the
// data stay visible as gaps, never as invented lines). Suppressed buckets are hatched, never drawn as zero.

import { h, hatchDefs, s, uniqueId } from "../dom.js";
import { addDays, atLeast, countNode, fmtPct, genderCountNode, localDate, midnightUtc, plural, unclassified, zonedParts } from "../format.js";
import { linear, niceTicks, compact } from "./scale.js";
import { createTooltip, tipRow } from "./tooltip.js";

const STEP_MS = { minute: 60e3, hour: 3600e3, day: 86400e3, week: 7 * 86400e3 };
const LAYERS = [
  { key: "female", label: "Female", colour: "var(--female)" },
  { key: "male", label: "Male", colour: "var(--male)" },
  { key: "unknown", label: "Unknown", colour: "var(--unknown)" },
];

function bucketEnd(point, granularity, tz) {
  const t0 = Date.parse(point.start);
  if (granularity === "day" || granularity === "week") {
    const day = localDate(t0 + 12 * 3600e3, tz); // noon is safely inside the local day
    return midnightUtc(addDays(day, granularity === "day" ? 1 : 7), tz);
  }
  return t0 + STEP_MS[granularity];
}

function timeTicks(t0, t1, granularity, tz) {
  const days = (t1 - t0) / 86400e3;
  const ticks = [];
  if (granularity === "hour" && days <= 4) {
    const every = days <= 2 ? 3 : 6;
    for (let t = Math.ceil(t0 / 3600e3) * 3600e3; t <= t1; t += 3600e3) {
      const p = zonedParts(t, tz);
      if (p.hour % every === 0) {
        ticks.push({ t, label: p.hour === 0 ? `${p.weekday} ${p.day}` : `${String(p.hour).padStart(2, "0")}:00`, major: p.hour === 0 });
      }
    }
    return ticks;
  }
  const month = new Intl.DateTimeFormat(undefined, { timeZone: "UTC", month: "short" });
  const dayMonth = new Intl.DateTimeFormat(undefined, { timeZone: "UTC", day: "numeric", month: "short" });
  const weekdayName = new Intl.DateTimeFormat(undefined, { timeZone: "UTC", weekday: "short" });
  const weekday = { format: (d) => `${weekdayName.format(d)} ${d.getUTCDate()}` };
  let day = localDate(t0, tz);
  for (let guard = 0; guard < 4000; guard += 1, day = addDays(day, 1)) {
    const t = midnightUtc(day, tz);
    if (t > t1) break;
    if (t < t0) continue;
    const [y, m, d] = day.split("-").map(Number);
    const asDate = new Date(Date.UTC(y, m - 1, d));
    const dow = asDate.getUTCDay();
    if (days <= 16) ticks.push({ t, label: weekday.format(asDate), major: dow === 1 });
    else if (days <= 100) { if (dow === 1) ticks.push({ t, label: dayMonth.format(asDate), major: d <= 7 }); }
    else if (d === 1) ticks.push({ t, label: m === 1 ? `${month.format(asDate)} ${y}` : month.format(asDate), major: m === 1 });
  }
  return ticks;
}

/**
 * Draws the series into ``container``.
 * data: the API's Series answer (points, granularity, timezone, k, start, end).
 */
export function seriesChart(container, data, { passes = false } = {}) {
  // Summed over several zones, which overlap, the counts are zone passes (one person in three zones is three).
  const Counted = passes ? "Zone passes" : "People";
  const { points, granularity, timezone: tz, k } = data;
  const width = Math.max(320, Math.round(container.clientWidth || 800));
  const height = width < 600 ? 220 : 280;
  const m = { l: 46, r: 14, t: 12, b: 30 };
  const t0 = Date.parse(data.start);
  const t1 = Date.parse(data.end);
  const x = linear(t0, t1, m.l, width - m.r);
  const spans = points.map((p) => [Math.max(t0, Date.parse(p.start)), Math.min(t1, bucketEnd(p, granularity, tz))]);
  const maxPeople = Math.max(0, ...points.map((p) => p.people ?? 0));
  const yTicks = niceTicks(Math.max(maxPeople, k));
  const y = linear(0, yTicks[yTicks.length - 1], height - m.b, m.t);
  const hatch = uniqueId("hatch");

  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "series-chart", role: "img",
    "aria-label": `${Counted} per ${granularity}, ${plural(points.length, "bucket")} reported, stacked by gender`,
    dataset: { points: points.length } });
  svg.append(hatchDefs(hatch));

  const axisY = s("g", { class: "axis axis-y" });
  for (const v of yTicks) {
    axisY.append(s("line", { class: "gridline", x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }),
      s("text", { x: m.l - 8, y: y(v) + 4, "text-anchor": "end" }, compact(v)));
  }
  const axisX = s("g", { class: "axis axis-x" });
  const ticks = timeTicks(t0, t1, granularity, tz);
  const minGap = 46;
  let lastX = -Infinity;
  for (const tick of ticks) {
    const px = x(tick.t);
    if (px - lastX < minGap) continue;
    lastX = px;
    axisX.append(s("line", { x1: px, x2: px, y1: height - m.b, y2: height - m.b + 5 }),
      s("text", { x: px, y: height - m.b + 18, "text-anchor": "middle", "font-weight": tick.major ? 600 : 400 }, tick.label));
  }
  axisX.append(s("line", { x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b }));
  svg.append(axisY, axisX);

  // Stacked step areas, one path per layer per run of consecutive complete buckets.
  // A bucket whose people nobody classified is complete too: all unknown (its female and male are no figure, 0 here).
  const complete = points.map((p) => p.unknown !== null && ((p.female !== null && p.male !== null) || unclassified(p)));
  const runs = [];
  let run = [];
  points.forEach((p, i) => {
    const joined = run.length && Math.abs(spans[run[run.length - 1]][1] - spans[i][0]) < 60e3;
    if (!complete[i] || (run.length && !joined)) {
      if (run.length) runs.push(run);
      run = [];
    }
    if (complete[i]) run.push(i);
  });
  if (run.length) runs.push(run);

  const dense = (width - m.l - m.r) / Math.max(1, (t1 - t0) / STEP_MS[granularity]) < 4;
  const areas = s("g", { class: "areas" });
  const outline = s("g", { class: "outline" });
  for (const indices of runs) {
    let base = indices.map(() => 0);
    for (const layer of LAYERS) {
      const top = indices.map((i, j) => base[j] + (points[i][layer.key] ?? 0));
      let d = "";
      indices.forEach((i, j) => {
        const [a, b] = spans[i];
        d += `${j ? "L" : "M"}${x(a).toFixed(1)},${y(top[j]).toFixed(1)}L${x(b).toFixed(1)},${y(top[j]).toFixed(1)}`;
      });
      for (let j = indices.length - 1; j >= 0; j -= 1) {
        const [a, b] = spans[indices[j]];
        d += `L${x(b).toFixed(1)},${y(base[j]).toFixed(1)}L${x(a).toFixed(1)},${y(base[j]).toFixed(1)}`;
      }
      areas.append(s("path", { d: `${d}Z`, fill: layer.colour, class: `area ${layer.key}`, opacity: 0.9 }));
      base = top;
    }
    let line = "";
    indices.forEach((i, j) => {
      const [a, b] = spans[i];
      line += `${j ? "L" : "M"}${x(a).toFixed(1)},${y(base[j]).toFixed(1)}L${x(b).toFixed(1)},${y(base[j]).toFixed(1)}`;
    });
    outline.append(s("path", { d: line, fill: "none", stroke: "#17212b", "stroke-width": dense ? 0.6 : 1.2, "stroke-opacity": 0.55 }));
  }

  // Suppressed buckets are hatched: up to the total when only the split is hidden, up to the k line when the
  // total is (a hidden total is almost always below k; the tooltip says it is hidden, not how large it is).
  const hidden = s("g", { class: "suppressed-marks" });
  const kTop = Math.min(y(k), height - m.b - 10);
  points.forEach((p, i) => {
    if (complete[i]) return;
    const [a, b] = spans[i];
    const top = p.people !== null ? Math.min(y(p.people), height - m.b - 2) : kTop;
    hidden.append(s("rect", { class: p.people !== null ? "suppressed split-hidden" : "suppressed total-hidden", x: x(a),
      width: Math.max(1.5, x(b) - x(a)), y: top, height: height - m.b - top, fill: `url(#${hatch})`, dataset: { i } }));
  });
  // Buckets a camera watched for only part of (it was down, or started within it) get a strip under the axis: their people
  // are a lower bound, and the dip beside full buckets is the camera's, not the zone's.
  const partial = s("g", { class: "partly-observed-marks" });
  points.forEach((p, i) => {
    if (!p.hours_partly_observed) return;
    const [a, b] = spans[i];
    partial.append(s("rect", { class: "partly-observed", x: x(a), width: Math.max(1.5, x(b) - x(a)), y: height - m.b + 1,
      height: 3, fill: "var(--warn)", dataset: { i } }));
  });
  svg.append(areas, hidden, outline, partial);

  const rule = s("line", { class: "hover-rule", y1: m.t, y2: height - m.b, visibility: "hidden" });
  const hits = s("g", { class: "hits" });
  points.forEach((p, i) => {
    const [a, b] = spans[i];
    hits.append(s("rect", { class: "hit", x: x(a), width: Math.max(1, x(b) - x(a)), y: m.t, height: height - m.b - m.t,
      dataset: { i } }));
  });
  svg.append(rule, hits);

  const box = h("div", { class: "chart", tabindex: points.length ? 0 : null,
    "aria-label": "Traffic chart; use the left and right arrow keys to read each bucket" });
  box.append(svg);
  container.replaceChildren(box);
  const tooltip = createTooltip(box);
  let selected = -1;

  const show = (i) => {
    selected = i;
    const p = points[i];
    const [a, b] = spans[i];
    const mid = (x(a) + x(b)) / 2;
    rule.setAttribute("x1", mid);
    rule.setAttribute("x2", mid);
    rule.setAttribute("visibility", "visible");
    const scaleX = box.clientWidth / width;
    const share = (v) => (v === null ? "" : ` · ${fmtPct(v)}`);
    const content = [
      h("div", { class: "t" }, p.label),
      tipRow(passes ? "Passes" : "People", countNode(p.people, k, { lowerBound: atLeast(p) })),
      h("div", { class: "row" }, h("span", {}, h("span", { class: "sw", style: "background:var(--female)" }), "Female"),
        h("span", {}, genderCountNode(p, "female", k), share(p.female_share))),
      h("div", { class: "row" }, h("span", {}, h("span", { class: "sw", style: "background:var(--male)" }), "Male"),
        h("span", {}, genderCountNode(p, "male", k), share(p.male_share))),
      tipRow("Unknown", genderCountNode(p, "unknown", k), "var(--unknown)"),
    ];
    // The shares above are the raw decisions; the estimate corrected for the classifier's errors follows.
    if (p.female_share_corrected !== null && p.female_share_corrected !== undefined) {
      content.push(h("div", { class: "row corrected" }, h("span", {}, "Women, corrected"),
        h("span", {}, `${fmtPct(p.female_share_corrected)} (${fmtPct(p.female_share_low)}–${fmtPct(p.female_share_high)})`)));
    }
    if (p.suppressed) content.push(h("div", { class: "faint" }, `Hatched: hidden for privacy (k = ${k})`));
    if (p.hours_partly_observed > 0) {
      content.push(h("div", { class: "faint partly-observed-note" }, granularity === "hour" && data.zones.length === 1
        ? "Partly observed: a camera was off for part of this hour, so people are at least this"
        : `Partly observed: ${plural(p.hours_partly_observed, "zone-hour")} with a camera off for part of the hour, so ${passes ? "passes" : "people"} are at least this`));
    }
    tooltip.show(content, mid * scaleX, (p.people !== null ? y(p.people) : height / 2) * scaleX);
  };
  const hide = () => {
    rule.setAttribute("visibility", "hidden");
    tooltip.hide();
  };
  hits.addEventListener("pointermove", (event) => {
    const i = Number(event.target.dataset?.i);
    if (Number.isInteger(i) && i !== selected) show(i);
  });
  svg.addEventListener("pointerleave", () => { selected = -1; hide(); });
  box.addEventListener("keydown", (event) => {
    if (!points.length) return;
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      const next = selected < 0 ? (event.key === "ArrowRight" ? 0 : points.length - 1)
        : Math.max(0, Math.min(points.length - 1, selected + (event.key === "ArrowRight" ? 1 : -1)));
      show(next);
    } else if (event.key === "Escape") {
      hide();
    }
  });
  box.addEventListener("blur", () => { selected = -1; hide(); });
  return svg;
}

export const SERIES_LEGEND = (k, partlyObserved = false) => [
  ...LAYERS.map((l) => h("span", {}, h("span", { class: "sw", style: `background:${l.colour}` }), l.label)),
  h("span", {}, h("span", { class: "sw hatch" }), `Withheld (zone-hours of fewer than ${k}, or a split with a part below ${k})`),
  ...(partlyObserved ? [h("span", { dataset: { legend: "partly-observed" } },
    h("span", { class: "sw", style: "background:var(--warn)" }),
    "Partly observed (a camera off for part of the hour: people are at least the count)")] : []),
];

