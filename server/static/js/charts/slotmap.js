// Ad-placement map: the 7 × 24 local hours of the week, each coloured by the best slot's expected audience in
// that hour (any zone), with the top-ranked slots numbered. Hours whose slots are hidden or absent stay blank.

import { h, s } from "../dom.js";
import { atLeast, fmtMean, plural } from "../format.js";
import { rampColour, RAMP_CSS } from "./scale.js";
import { createTooltip, tipRow } from "./tooltip.js";

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** slots: every ranked slot (all zones); top: how many of the best to number; noun: "women", "men" or "people". */
export function slotMap(container, slots, top, noun) {
  const best = new Map();
  for (const slot of slots) {
    const known = best.get(slot.hour_of_week);
    // A slot without an estimate (null) is kept only where no zone in that hour has one.
    if (!known || (slot.expected_audience ?? -1) > (known.expected_audience ?? -1)) best.set(slot.hour_of_week, slot);
  }
  // Only slots with an estimate are numbered and set the scale: those without one rank last, and numbering them
  // (or a legend up to "0.0 per week") read as a ranking where every hour was blank.
  const estimated = slots.filter((slot) => slot.expected_audience !== null);
  const rankOf = new Map(estimated.slice(0, top).map((slot) => [slot.hour_of_week, slot.rank]).reverse());
  const width = Math.max(340, Math.round(container.clientWidth || 800));
  const left = 36;
  const head = 18;
  const cw = (width - left - 2) / 24;
  const ch = Math.max(15, Math.min(24, cw * 0.75));
  const height = head + 7 * ch + 2;
  const max = Math.max(1e-9, ...estimated.map((slot) => slot.expected_audience));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "heatmap slotmap", role: "img",
    "aria-label": `Expected ${noun} per week by hour of the week; the ${plural(top, "best slot is", "best slots are")} numbered` });
  for (let hour = 0; hour < 24; hour += width < 600 ? 6 : 3) {
    svg.append(s("text", { x: left + hour * cw + 1, y: head - 6 }, `${String(hour).padStart(2, "0")}:00`));
  }
  const cells = s("g", { class: "cells" });
  for (let day = 0; day < 7; day += 1) {
    svg.append(s("text", { x: 0, y: head + day * ch + ch / 2 + 4 }, DAYS[day]));
    for (let hour = 0; hour < 24; hour += 1) {
      const how = day * 24 + hour;
      const slot = best.get(how);
      const estimated = slot && slot.expected_audience !== null;
      const t = estimated ? slot.expected_audience / max : 0;
      cells.append(s("rect", { class: estimated ? "cell" : slot ? "cell unestimated" : "cell empty", x: left + hour * cw,
        y: head + day * ch, width: cw, height: ch, rx: 2, fill: estimated ? rampColour(t) : null, dataset: { how } }));
      const rank = rankOf.get(how);
      if (rank) {
        cells.append(s("text", { class: `rank-label${t > 0.5 ? " on-dark" : ""}`, x: left + hour * cw + cw / 2,
          y: head + day * ch + ch / 2 + 4, "text-anchor": "middle", "pointer-events": "none" }, String(rank)));
      }
    }
  }
  svg.append(cells);
  const box = h("div", { class: "chart" }, svg);
  const legend = estimated.length
    ? h("div", { class: "heat-legend" }, h("span", {}, "0"), h("span", { class: "ramp", style: `background:${RAMP_CSS}` }),
      h("span", {}, `${fmtMean(max)} ${noun} per week (best zone in each hour)`),
      h("span", { style: "margin-left:1rem" }, `Numbers: the top ${plural(Math.min(top, estimated.length), "rank")}. Blank: outside the chosen hours and days, no data, hidden for privacy, or no estimate.`))
    : h("div", { class: "heat-legend", dataset: { estimate: "none" } },
      h("span", {}, `No slot has an estimate of ${noun} to colour or number: every hour is blank (its slots have no estimate, no data, or are hidden for privacy).`));
  container.replaceChildren(box, legend);
  const tooltip = createTooltip(box);
  cells.addEventListener("pointermove", (event) => {
    const how = Number(event.target.dataset?.how);
    if (!Number.isInteger(how)) return;
    const slot = best.get(how);
    const content = [h("div", { class: "t" }, `${DAYS[Math.floor(how / 24)]} ${String(how % 24).padStart(2, "0")}:00`)];
    if (!slot) content.push(h("div", {}, "No ranked slot (no data, or hidden for privacy)"));
    else {
      // A lower bound (hours withheld, or watched only in part) reads "≥" here as in the ranking table.
      const bound = Boolean(slot.audience_lower_bound) || atLeast(slot) ? "≥ " : "";
      content.push(h("div", {}, `Best: ${slot.zone_name} (${slot.expected_audience === null ? "no rank: no estimate" : `rank ${slot.rank}`})`),
        tipRow(`${noun[0].toUpperCase()}${noun.slice(1)} / week`, slot.expected_audience === null ? "not estimated" : `${bound}${fmtMean(slot.expected_audience)}`),
        tipRow(slot.expected_audience === null ? "Anywhere from" : "95% interval",
          `${fmtMean(slot.expected_audience_low)}–${fmtMean(slot.expected_audience_high)}`));
      if (slot.hours_partly_observed) {
        content.push(tipRow("Partly observed", `${plural(slot.hours_partly_observed, "hour")} (a camera off for part of it)`));
      }
    }
    const scale = box.clientWidth / width;
    tooltip.show(content, (left + ((how % 24) + 1) * cw) * scale, (head + Math.floor(how / 24) * ch + ch / 2) * scale);
  });
  svg.addEventListener("pointerleave", () => tooltip.hide());
}
