// Small daily bars for a site card: one bar per day, hatched when the day's count is suppressed.

import { hatchDefs, s, uniqueId } from "../dom.js";
import { plural } from "../format.js";

/** points: Series points (day granularity) of a site's zones, summed: zone passes, never people (zones overlap);
 * days: the "YYYY-MM-DD" days to show, oldest first. */
export function sparkBars(points, days, k) {
  const width = 300;
  const height = 44;
  const byDay = new Map(points.map((p) => [p.label, p]));
  const max = Math.max(k, ...points.map((p) => p.people ?? 0));
  const bw = width / days.length;
  const hatch = uniqueId("hatch");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "spark", role: "img", preserveAspectRatio: "none",
    "aria-label": `Zone passes per day over the last ${plural(days.length, "day")}` });
  svg.append(hatchDefs(hatch));
  days.forEach((day, i) => {
    const p = byDay.get(day);
    const barHeight = p && p.people !== null ? Math.max(1.5, (p.people / max) * (height - 2)) : height - 2;
    // Today's bar grows until midnight: its count is of the hours released so far, not of the day.
    const when = i === days.length - 1 ? `${day} (today, so far)` : day;
    const title = !p ? `${when}: no data` : p.people === null ? `${when}: suppressed (<${k})` : `${when}: ${plural(p.people, "zone pass", "zone passes")}`;
    const fill = !p ? "#eef1f4" : p.people === null ? `url(#${hatch})` : i === days.length - 1 ? "#14b8a6" : "#0b6e78";
    svg.append(s("rect", { x: i * bw + 1, width: Math.max(1, bw - 2), y: height - (p ? barHeight : 2), height: p ? barHeight : 2,
      rx: 1.5, fill, class: `day ${!p ? "nodata" : p.people === null ? "suppressed" : "bar"}` }, s("title", {}, title)));
  });
  return svg;
}
