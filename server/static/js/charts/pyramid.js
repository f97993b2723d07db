// Age pyramid: one row per age band (oldest on top), women's bar to the left, men's to the right, from one
// gender × band table of the traffic API (/traffic/ages). A band the server suppressed (null) is drawn hatched and
// labelled as suppressed, never as 0; people of a released gender whose bands were withheld are said below.

import { h, hatchDefs, s, uniqueId } from "../dom.js";
import { countNode, fmtInt } from "../format.js";

export const PYRAMID_BANDS = ["65+", "55-64", "45-54", "35-44", "25-34", "18-24", "13-17", "0-12", "unknown"];

/** table: an AgeTable of the API (bands, bands_withheld, unsplit, people). */
export function agePyramid(container, table, k) {
  const width = 640;
  const rowHeight = 24;
  const labelWidth = 80;
  const half = (width - labelWidth) / 2;
  const height = PYRAMID_BANDS.length * rowHeight;
  const values = ["female", "male"].flatMap((gender) => PYRAMID_BANDS.map((band) => table.bands[gender][band] ?? 0));
  const max = Math.max(1, ...values);
  const hatch = uniqueId("hatch");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "pyramid-svg", role: "img",
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
      const w = suppressed ? half - 8 : (value / max) * (half - 8);
      const x = gender === "female" ? half - w : half + labelWidth;
      svg.append(s("rect", {
        class: `bar ${gender}${suppressed ? " suppressed" : ""}`, x, y, width: w, height: barHeight, rx: 3,
        fill: suppressed ? `url(#${hatch})` : `var(--${gender})`,
        dataset: { gender, band, value: suppressed ? "" : String(value), suppressed: String(suppressed) },
      }, s("title", {}, `${gender === "female" ? "Women" : "Men"} ${band}: ${suppressed ? `suppressed (a band below ${k})` : fmtInt(value)}`)));
    }
  });
  const withheld = table.bands_withheld.female + table.bands_withheld.male;
  const rows = h("div", { class: "pyramid-rows" }, ["female", "male", "unknown"].map((gender) => h("div", { class: "pyramid-row", dataset: { gender } },
    h("span", {}, gender === "female" ? "Women" : gender === "male" ? "Men" : "Gender unknown"),
    h("span", { class: "count" }, PYRAMID_BANDS.some((band) => table.bands[gender][band] === null)
      ? countNode(null, k) : countNode(PYRAMID_BANDS.reduce((sum, band) => sum + table.bands[gender][band], 0), k)))));
  const notes = [
    "Women to the left, men to the right; 'age ?' are people whose age the model abstained on or did not estimate.",
    withheld || table.unsplit
      ? ` ${fmtInt(withheld + table.unsplit)} people are not broken down by age here: a gender's bands are shown only when each is 0 or at least ${k}.`
      : "",
  ];
  container.replaceChildren(h("div", { class: "chart pyramid" }, svg), rows, h("p", { class: "faint" }, notes.join("")));
}
