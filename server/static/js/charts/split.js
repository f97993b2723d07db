// Gender split: one stacked SVG bar (female | male | unknown) with counts and shares beside it. Every share names its
// base, the people whose split was withheld for privacy have a row of their own, and the card says that its shares
// are the classifier's raw decisions (the corrected share is another figure, and can differ).

import { fill, h, hatchDefs, s, uniqueId } from "../dom.js";
import { countNode, fmtInt, fmtPct, genderCountNode, splitWithheld, UNCLASSIFIED_HELP, unclassified } from "../format.js";

/** A share with what it is a share of: "61%" then "of the 831 decided female or male". */
function shareOf(share, base) {
  return [h("span", { class: "share" }, fmtPct(share)), h("span", { class: "of" }, ` of ${base}`)];
}

/** counts: an API Counts object (people, female, male, unknown, unsplit, shares, suppressed). passes: the counts sum
 * several zones, which overlap: they are zone passes (one person through three zones is three), never "people". */
export function genderSplit(container, counts, k, { passes = false } = {}) {
  const noun = passes ? "zone passes" : "people";
  const short = passes ? "passes" : "people";
  // Nobody classified: the bar is all unknown, and nothing of it is hidden.
  const none = unclassified(counts);
  const value = (key) => (none && key !== "unknown" ? 0 : counts[key]);
  const keys = ["female", "male", "unknown"];
  const known = keys.every((key) => value(key) !== null);
  // The people whose split was released (each part 0 or at least k in their hours), and of those the classified.
  const total = known ? keys.reduce((sum, key) => sum + value(key), 0) : 0;
  const classified = known ? value("female") + value("male") : 0;
  // People released without their split: a part of it was from 1 to k-1 in their hours.
  const unsplit = typeof counts.people === "number" && counts.unsplit > 0 ? counts.unsplit : 0;
  const ofClassified = `the ${fmtInt(classified)} decided female or male`;
  const ofReleased = `the ${fmtInt(total)} whose split was released`;
  const parts = [
    { key: "female", label: "Female", colour: "var(--female)",
      share: known && classified ? shareOf(counts.female_share ?? value("female") / classified, ofClassified) : null },
    { key: "male", label: "Male", colour: "var(--male)",
      share: known && classified ? shareOf(counts.male_share ?? value("male") / classified, ofClassified) : null },
    { key: "unknown", label: "Unknown", colour: "var(--unknown)",
      share: known && total ? shareOf(value("unknown") / total, ofReleased) : null },
  ];
  const width = 600;
  const height = 34;
  const hatch = uniqueId("hatch");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "split-svg", preserveAspectRatio: "none",
    role: "img", "aria-label": known && total
      ? `Raw decisions of the ${fmtInt(total)} ${noun} whose split was released: female ${fmtInt(value("female"))}, ` +
        `male ${fmtInt(value("male"))}, unknown ${fmtInt(value("unknown"))}` : "Gender split hidden or empty" });
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
  const basis = known && total && !none
    ? h("p", { class: "split-basis" }, `Raw decisions of the ${fmtInt(total)} ${noun} whose split was released, as the ` +
      "classifier made them: not corrected for its known errors, so the corrected share of women can differ.")
    : null;
  const rows = h("div", { class: "split-rows" }, parts.map((part) => h("div", { class: "split-row", dataset: { part: part.key } },
    h("span", { class: "sw", style: `background:${part.colour}` }),
    h("span", {}, part.label, part.key === "unknown" ? h("span", { class: "faint" }, " · not classified") : null),
    h("span", { class: "share-of" }, part.share ?? ""),
    h("span", { class: "count" }, genderCountNode(counts, part.key, k)))),
  unsplit ? h("div", { class: "split-row", dataset: { part: "unsplit" } },
    h("span", { class: "sw supp", "aria-hidden": "true" }),
    h("span", {}, "Split withheld", h("span", { class: "faint" }, " · for privacy")),
    h("span", { class: "share-of" }, shareOf(unsplit / counts.people,
      counts.people_lower_bound ? `the ${fmtInt(counts.people)} ${short} released` : `all ${fmtInt(counts.people)} ${short}`)),
    h("span", { class: "count" }, countNode(unsplit, k))) : null);
  const withheldWhy = unsplit && !splitWithheld(counts)
    ? ` The split of ${fmtInt(unsplit)} ${noun} is withheld for privacy: in ${passes ? "their zone-hours" : "the hours they passed"}, a part of it ` +
      `(female, male or unknown) was below ${k}, so no part of it is shown; they are in none of the female, male or unknown shares.`
    : "";
  const note = h("p", { class: "faint" },
    none ? UNCLASSIFIED_HELP + withheldWhy
      : known ? `Unknown means the classifier abstained, not a third gender.${withheldWhy}`
      : splitWithheld(counts) ? `The split of these ${fmtInt(counts.people)} ${noun} is withheld for privacy: in ` +
        `${passes ? "their zone-hours" : "the hours they passed"}, a part of it was below ${k}, so no part is shown ` +
        `(the parts are not each below ${k}).`
      : `Part of the split is hidden for privacy: a count below ${k} (or one that would reveal it) is never shown.`);
  // basis is null where no split was released: fill leaves it out (replaceChildren printed it as "null").
  fill(container, h("div", { class: "chart split" }, svg), basis, rows, note);
}
