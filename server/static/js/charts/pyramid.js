// Age pyramid: one row per age band (oldest on top), women's bar to the left, men's to the right, from one
// gender × band table of the traffic API (/traffic/ages). A band the server suppressed (null) is drawn hatched and
// labelled as suppressed, never as 0 (so is a withheld hour's); the rows under it sum each gender's released
// bands, with the people whose bands were withheld beside them and in the note below.
//
// Each side is its gender's age profile: a bar is the band's share of the gender's people in released bands, not
// its count. A gender's bands are released per zone-hour only when each is 0 or at least k, so over a range the
// fewer gender's are withheld in more hours: drawn as counts, women's bars stood 3.5 times the men's where the
// women were 1.4 times as many. The counts are in each bar's title and the rows below.

import { h, hatchDefs, s, uniqueId } from "../dom.js";
import { countNode, fmtInt, fmtPct } from "../format.js";

export const PYRAMID_BANDS = ["65+", "55-64", "45-54", "35-44", "25-34", "18-24", "13-17", "0-12", "unknown"];

/** table: an AgeTable of the API (bands, bands_withheld, unsplit, people, withheld_cells); passes: the table sums
 * several zones (its figures are zone passes, not people).
 *
 * Drawn at the container's own width (no viewBox scaling): scaled from a fixed 640 wide, the band labels were 5 px
 * tall on a phone. */
export function agePyramid(container, table, k, { passes = false } = {}) {
  const width = Math.min(760, Math.max(280, Math.round(container.clientWidth || 640)));
  const rowHeight = 24;
  const labelWidth = 64;
  const half = (width - labelWidth) / 2;
  const height = PYRAMID_BANDS.length * rowHeight;
  const inBands = (gender) => PYRAMID_BANDS.reduce((sum, band) => sum + (table.bands[gender][band] ?? 0), 0);
  const released = { female: inBands("female"), male: inBands("male") };
  const share = (gender, band) => released[gender] ? (table.bands[gender][band] ?? 0) / released[gender] : 0;
  const max = Math.max(Number.EPSILON, ...["female", "male"].flatMap((gender) => PYRAMID_BANDS.map((band) => share(gender, band))));
  const hatch = uniqueId("hatch");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "pyramid-svg", role: "img",
    "aria-label": "Age pyramid: women to the left, men to the right, one row per age band" });
  svg.append(hatchDefs(hatch));
  PYRAMID_BANDS.forEach((band, row) => {
    const y = row * rowHeight + 3;
    const barHeight = rowHeight - 6;
    svg.append(s("text", { x: half + labelWidth / 2, y: y + barHeight - 4, "text-anchor": "middle", class: "band-label" },
      band === "unknown" ? "age ?" : band));
    for (const gender of ["female", "male"]) {
      const value = table.bands[gender][band];
      const suppressed = value === null || value === undefined;
      const w = suppressed ? half - 8 : (share(gender, band) / max) * (half - 8);
      const x = gender === "female" ? half - w : half + labelWidth;
      const who = gender === "female" ? "women" : "men";
      svg.append(s("rect", {
        class: `bar ${gender}${suppressed ? " suppressed" : ""}`, x, y, width: w, height: barHeight, rx: 3,
        fill: suppressed ? `url(#${hatch})` : `var(--${gender})`,
        dataset: { gender, band, value: suppressed ? "" : String(value), share: suppressed ? "" : String(share(gender, band)),
          suppressed: String(suppressed) },
      }, s("title", {}, `${gender === "female" ? "Women" : "Men"} ${band}: ${suppressed ? `suppressed (a band below ${k})`
        : `${fmtInt(value)}, ${fmtPct(share(gender, band))} of the ${fmtInt(released[gender])} ${who} in released bands`}`)));
    }
  });
  // Each row sums the gender's released bands only (over a range, the hours whose bands were released), so it
  // says so, with the people of that gender whose bands were withheld beside it.
  const names = { female: "Women", male: "Men", unknown: "Gender unknown" };
  const rows = h("div", { class: "pyramid-rows" }, ["female", "male", "unknown"].map((gender) => {
    const hidden = PYRAMID_BANDS.every((band) => table.bands[gender][band] === null);
    const withheldHere = table.bands_withheld[gender];
    return h("div", { class: "pyramid-row", dataset: { gender } },
      h("span", {}, `${names[gender]} in released bands`),
      h("span", { class: "count" }, hidden
        ? h("span", { class: "supp", dataset: { suppressed: "true" }, title: `Suppressed: a band below ${k}, or a withheld hour` }, "suppressed")
        : countNode(inBands(gender), k)),
      withheldHere > 0
        ? h("span", { class: "withheld faint", dataset: { withheld: String(withheldHere) } }, ` + ${fmtInt(withheldHere)} whose bands were withheld`)
        : null);
  }));
  const withheld = table.bands_withheld.female + table.bands_withheld.male + table.bands_withheld.unknown;
  const parts = [
    table.bands_withheld.female ? `${fmtInt(table.bands_withheld.female)} women` : "",
    table.bands_withheld.male ? `${fmtInt(table.bands_withheld.male)} men` : "",
    table.bands_withheld.unknown ? `${fmtInt(table.bands_withheld.unknown)} of unknown gender` : "",
    table.unsplit ? `${fmtInt(table.unsplit)} whose gender split was withheld` : "",
  ].filter(Boolean);
  const cells = table.withheld_cells || 0;
  const notes = [
    "Women to the left, men to the right, each as its age profile: a bar is the band's share of that gender's people in released bands (a gender's bands show in a zone-hour only when each is 0 or at least " +
      `${k}, so the two sides may cover different hours: compare their shapes; how many women and men passed is in the gender split). ` +
      "Each band counts an estimate from the model's band probabilities, not any one person's age; 'age ?' are people whose age was not estimated.",
    withheld || table.unsplit
      ? ` ${fmtInt(withheld + table.unsplit)} ${passes ? "zone passes" : "people"} are not broken down by age here (${parts.join(", ")}): a gender's bands are shown only when each is 0 or at least ${k}.`
      : "",
    cells
      ? ` ${fmtInt(cells)} ${cells === 1 ? "hour" : "hours"} with fewer than ${k} people ${cells === 1 ? "is" : "are"} withheld whole: none of its people is in any figure here.`
      : "",
  ];
  container.replaceChildren(h("div", { class: "chart pyramid" }, svg), rows, h("p", { class: "faint" }, notes.join("")));
}
