// Gender split: one stacked SVG bar (female | male | unknown) with counts and shares beside it.

import { h, hatchDefs, s, uniqueId } from "../dom.js";
import { fmtInt, fmtPct, genderCountNode, splitWithheld, UNCLASSIFIED_HELP, unclassified } from "../format.js";

/** counts: an API Counts object (people, female, male, unknown, shares, suppressed). */
export function genderSplit(container, counts, k) {
  const parts = [
    { key: "female", label: "Female", colour: "var(--female)", share: counts.female_share },
    { key: "male", label: "Male", colour: "var(--male)", share: counts.male_share },
    { key: "unknown", label: "Unknown", colour: "var(--unknown)", share: null },
  ];
  // Nobody classified: the bar is all unknown, and nothing of it is hidden.
  const none = unclassified(counts);
  const value = (key) => (none && key !== "unknown" ? 0 : counts[key]);
  const known = parts.every((p) => value(p.key) !== null);
  const total = known ? parts.reduce((sum, p) => sum + value(p.key), 0) : 0;
  const width = 600;
  const height = 34;
  const hatch = uniqueId("hatch");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "split-svg", preserveAspectRatio: "none",
    role: "img", "aria-label": known && total
      ? `Female ${counts.female}, male ${counts.male}, unknown ${counts.unknown}` : "Gender split hidden or empty" });
  svg.append(hatchDefs(hatch), s("clipPath", { id: `${hatch}-clip` }, s("rect", { width, height, rx: 7 })));
  const g = s("g", { "clip-path": `url(#${hatch}-clip)` });
  if (known && total > 0) {
    let at = 0;
    for (const part of parts) {
      const w = (value(part.key) / total) * width;
      g.append(s("rect", { class: `seg ${part.key}`, x: at, width: w, height, fill: part.colour }));
      at += w;
    }
  } else {
    g.append(s("rect", { class: known ? "seg none" : "seg suppressed", width, height,
      fill: known ? "#eef1f4" : `url(#${hatch})` }));
  }
  svg.append(g);
  const rows = h("div", { class: "split-rows" }, parts.map((part) => h("div", { class: "split-row", dataset: { part: part.key } },
    h("span", { class: "sw", style: `background:${part.colour}` }),
    h("span", {}, part.label, part.key === "unknown" ? h("span", { class: "faint" }, " · not classified") : null),
    h("span", { class: "share" }, part.share !== null && part.share !== undefined ? fmtPct(part.share)
      : part.key === "unknown" && known && total ? h("span", { class: "faint" }, `${fmtPct(counts.unknown / total)} of all`) : ""),
    h("span", { class: "count" }, genderCountNode(counts, part.key, k)))));
  const note = h("p", { class: "faint" },
    none ? UNCLASSIFIED_HELP
      : known ? "Shares are of the people the classifier decided on (female + male); unknown means it abstained, not a third gender."
      : splitWithheld(counts) ? `The split of these ${fmtInt(counts.people)} people is withheld for privacy: in the hours ` +
        `they passed, a part of it was below ${k}, so no part is shown (the parts are not each below ${k}).`
      : `Part of the split is hidden for privacy: a count below ${k} (or one that would reveal it) is never shown.`);
  container.replaceChildren(h("div", { class: "chart split" }, svg), rows, note);
}
