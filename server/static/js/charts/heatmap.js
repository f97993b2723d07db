// Hour-of-week heatmap: 7 weekdays × 24 local hours; colour = mean people per week (or female share).
// Suppressed cells are hatched and say so; hours without data stay blank (no data is not zero either).

import { h, hatchDefs, s, uniqueId } from "../dom.js";
import { atLeast, countNode, fmtMean, fmtPct, genderCountNode, meanNode, unclassified } from "../format.js";
import { rampColour, RAMP_CSS } from "./scale.js";
import { createTooltip, tipRow } from "./tooltip.js";

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

function shareColour(share) {
  // Diverging: male blue ← grey at 50% → female magenta.
  const male = [31, 120, 180];
  const mid = [236, 238, 241];
  const female = [194, 88, 143];
  const t = Math.max(-1, Math.min(1, (share - 0.5) * 2.5));
  const to = t > 0 ? female : male;
  const c = mid.map((v, i) => Math.round(v + (to[i] - v) * Math.abs(t)));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** data: the API's Heatmap answer; metric: "people" (mean per week) or "female_share"; passes: the cells sum several
 * zones (zone passes, not people). */
export function heatmapChart(container, data, metric = "people", { passes = false } = {}) {
  const { k } = data;
  const byHour = new Map(data.cells.map((c) => [c.hour_of_week, c]));
  const width = Math.max(340, Math.round(container.clientWidth || 800));
  const left = 40;
  const top = 20;
  const cw = (width - left - 4) / 24;
  const ch = Math.max(16, Math.min(30, cw * 0.8));
  const height = top + 7 * ch + 4;
  const maxMean = Math.max(1e-9, ...data.cells.map((c) => c.mean_people ?? 0));
  const hatch = uniqueId("hatch");

  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "heatmap", role: "img",
    "aria-label": `${passes ? "Zone passes" : "People"} per local hour of the week, Monday to Sunday` });
  svg.append(hatchDefs(hatch));
  for (let hour = 0; hour < 24; hour += width < 600 ? 6 : 3) {
    svg.append(s("text", { x: left + hour * cw + 1, y: top - 7 }, `${String(hour).padStart(2, "0")}:00`));
  }
  const cells = s("g", { class: "cells" });
  for (let day = 0; day < 7; day += 1) {
    svg.append(s("text", { x: 0, y: top + day * ch + ch / 2 + 4 }, DAYS[day]));
    for (let hour = 0; hour < 24; hour += 1) {
      const how = day * 24 + hour;
      const cell = byHour.get(how);
      let fill = "";
      let cls = "cell";
      if (!cell) cls += " empty";
      else if (cell.people === null) { cls += " suppressed"; fill = `url(#${hatch})`; }
      else if (metric === "female_share") {
        // Nobody passed in this hour of the week, or nobody classified (a counts-only site): no share to colour,
        // and nothing hidden either.
        if (cell.people === 0 || unclassified(cell)) cls += " quiet";
        // Released people whose split is withheld: a part of it was below k, not the people (they may be many).
        else if (cell.female_share === null) { cls += " suppressed split-withheld"; fill = `url(#${hatch})`; } else fill = shareColour(cell.female_share);
      } else fill = rampColour((cell.mean_people ?? 0) / maxMean);
      cells.append(s("rect", { class: cls, x: left + hour * cw, y: top + day * ch, width: cw, height: ch, rx: 2,
        fill: fill || null, dataset: { how } }));
    }
  }
  svg.append(cells);

  const box = h("div", { class: "chart" });
  box.append(svg);
  const legend = h("div", { class: "heat-legend" });
  if (metric === "female_share") {
    legend.append(h("span", {}, "more male"),
      h("span", { class: "ramp", style: `background:linear-gradient(90deg, ${shareColour(0.1)}, ${shareColour(0.5)}, ${shareColour(0.9)})` }),
      h("span", {}, "more decided female (raw, not corrected)"));
  } else {
    legend.append(h("span", {}, "0"), h("span", { class: "ramp", style: `background:${RAMP_CSS}` }),
      h("span", {}, `${fmtMean(maxMean)} ${passes ? "zone passes" : "people"} per week`));
  }
  const withheld = metric === "female_share" ? ` withheld (fewer than ${k} people, or a gender part below ${k})`
    : ` suppressed (<${k})`;
  legend.append(h("span", { style: "margin-left:1rem", dataset: { legend: "withheld" } }, h("span", { class: "sw hatch legend-sw" }), withheld),
    h("span", { style: "margin-left:.6rem" }, h("span", { class: "sw legend-sw", style: "background:#f5f7f9;border:1px solid #dfe4ea" }), " no data"));
  container.replaceChildren(box, legend);
  const tooltip = createTooltip(box);

  cells.addEventListener("pointermove", (event) => {
    const how = Number(event.target.dataset?.how);
    if (!Number.isInteger(how)) return;
    const day = Math.floor(how / 24);
    const hour = how % 24;
    const cell = byHour.get(how);
    const title = `${DAYS[day]} ${String(hour).padStart(2, "0")}:00–${String(hour + 1).padStart(2, "0")}:00`;
    const content = [h("div", { class: "t" }, title)];
    if (!cell) content.push(h("div", {}, "No data in this hour"));
    else {
      content.push(
        tipRow("Per week", meanNode(cell.mean_people, k, atLeast(cell))),
        tipRow(`${passes ? "Passes" : "People"} (${cell.weeks_observed} wk)`, countNode(cell.people, k, { lowerBound: atLeast(cell) })),
        tipRow("Female", cell.female_share === null ? genderCountNode(cell, "female", k) : fmtPct(cell.female_share), "var(--female)"),
        tipRow("Male", cell.male_share === null ? genderCountNode(cell, "male", k) : fmtPct(cell.male_share), "var(--male)"));
      if (cell.suppressed) content.push(h("div", { class: "faint" }, "Some counts hidden for privacy"));
    }
    const scale = box.clientWidth / width;
    tooltip.show(content, (left + (hour + 1) * cw) * scale, (top + day * ch + ch / 2) * scale);
  });
  svg.addEventListener("pointerleave", () => tooltip.hide());
  return svg;
}
