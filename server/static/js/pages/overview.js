// Overview: every site with today's and the last 7 days' counts, its zones, and the live state of its agents.

import { api, getKey } from "../api.js";
import { h } from "../dom.js";
import {
  addDays, atLeast, correctedShareNode, countNode, fmtAgo, fmtDateTime, fmtInt, fmtPct, isoUtc, kindLabel, localDate,
  midnightUtc, MISSING_HELP, occupancyNode, plural, pluralNoun, zonedToUtc,
} from "../format.js";
import { occupancyCurve } from "../charts/occupancy.js";
import { sparkBars } from "../charts/spark.js";
import { empty, loading, reveal, startPage, tableBox } from "../ui.js";

const REFRESH_MS = 30_000;
const SPARK_DAYS = 14;
const HOUR_MS = 3600e3;

/** The instant (ms) occupancy last started again from 0 at or before ``now``: the site's closing time (local "HH:MM",
 * null for midnight) today or the day before, moved on to the first hour starting at or after it (the API resets
 * occupancy from that hour). */
function lastClosing(closingTime, tz, now) {
  const [hour, minute] = (closingTime || "00:00").split(":").map(Number);
  const at = (day) => {
    const [y, m, d] = day.split("-").map(Number);
    return Math.ceil((zonedToUtc(y, m, d, hour, tz) + minute * 60e3) / HOUR_MS) * HOUR_MS;
  };
  const today = localDate(now, tz);
  const todays = at(today);
  return todays <= now ? todays : at(addDays(today, -1));
}
let firstLoad = true;

async function siteFigures(site, now) {
  const tz = site.timezone;
  const today = localDate(now, tz);
  const todayStart = midnightUtc(today, tz);
  const weekStart = midnightUtc(addDays(today, -6), tz);
  const sparkStart = midnightUtc(addDays(today, -(SPARK_DAYS - 1)), tz);
  const end = isoUtc(now);
  const base = `/sites/${encodeURIComponent(site.site_id)}/traffic`;
  // The occupancy curve runs from the closing time, when occupancy starts again from 0 (not from midnight, where
  // "since closing at 22:00" sat over an axis from 00:00): its own answer where that is not today's midnight.
  const closedAt = lastClosing(site.closing_time, tz, now);
  const visitorsPath = `/sites/${encodeURIComponent(site.site_id)}/visitors`;
  const [todayTotals, weekTotals, daily, visitors, sinceClosing] = await Promise.all([
    api(`${base}/compare`, { start: isoUtc(todayStart), end }),
    api(`${base}/compare`, { start: isoUtc(weekStart), end }),
    api(`${base}/series`, { start: isoUtc(sparkStart), end, granularity: "day" }),
    api(visitorsPath, { start: isoUtc(todayStart), end, granularity: "hour" }),
    closedAt === todayStart ? null : api(visitorsPath, { start: isoUtc(closedAt), end, granularity: "hour" }),
  ]);
  const days = Array.from({ length: SPARK_DAYS }, (_, i) => addDays(today, i - SPARK_DAYS + 1));
  return { site, today, todayStart, todayTotals, weekTotals, daily, days, visitors,
    occupancy: { since: closedAt, visitors: sinceClosing ?? visitors } };
}

function kpi(label, valueNode, note, id) {
  return h("div", { class: "kpi", id }, h("div", { class: "label" }, label), h("div", { class: "value" }, valueNode),
    note ? h("div", { class: "note" }, note) : null);
}

/** Today's female share KPI: the site's corrected estimate with its interval. Sites are estimated one by one
 * (each answer is one site's), so with several sites each card shows its own and the KPI says so. */
function shareKpi(figures) {
  if (figures.length === 1) {
    const t = figures[0].todayTotals.totals;
    const raw = t.female_share !== null ? h("span", { class: "faint" }, ` (raw: ${fmtPct(t.female_share)} of those classified)`) : null;
    // Without an estimate the "—" says why in words, not only in its tooltip (which a touch screen never shows).
    const missing = t.female_share_corrected === null
      ? `not estimated: ${MISSING_HELP[t.female_share_corrected_missing] || "nothing to correct"}` : null;
    return kpi("Female share today", correctedShareNode(t, "female", "passes"),
      h("span", {}, missing ?? "women among passes, corrected for the classifier's known errors", raw), "kpi-share");
  }
  return kpi("Female share", h("span", { class: "faint" }, "per site"),
    "corrected for the classifier's known errors: see each site's card (7 days)", "kpi-share");
}

/** ", up to 14:00" when the server answers only up to the start of the hour in progress (it releases an hour once
 * it has ended), in the first site's time zone; empty when it is live. */
function releasedUpTo(figures) {
  const first = figures[0];
  if (!first) return "";
  const end = Date.parse(first.todayTotals.end);
  if (Date.now() - end < 60_000) return "";
  const time = new Intl.DateTimeFormat(undefined, { timeZone: first.site.timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return `, up to ${time.format(new Date(end))}`;
}

/** A sum of the sites' {people, withheld_cells, people_lower_bound} figures (site visitors, out), over the sites
 * that have entrance lines; null when none has. */
function siteSum(figures, pick) {
  const parts = figures.map((f) => pick(f.visitors)).filter((part) => part !== null);
  if (!parts.length) return null;
  return {
    known: parts.every((part) => part.people !== null),
    people: parts.reduce((sum, part) => sum + (part.people ?? 0), 0),
    // Withheld cells, entrance hours not observed (camera down) or watched only in part: each leaves people out.
    lowerBound: parts.some(atLeast),
  };
}

function sumNode(sum, k) {
  if (sum === null) return h("span", { class: "faint", dataset: { none: "true" } }, "—");
  return sum.known ? countNode(sum.people, k, { lowerBound: sum.lowerBound }) : countNode(null, k);
}

/** The time (site's local) an answer's figures reach: the start of the hour in progress unless the server is live. */
function asOf(visitors) {
  const time = new Intl.DateTimeFormat(undefined, { timeZone: visitors.timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return time.format(new Date(Date.parse(visitors.end)));
}

function visitorKpis(figures, k) {
  const entered = siteSum(figures, (v) => v.totals.visitors);
  const left = siteSum(figures, (v) => v.totals.out);
  const withEntrances = figures.filter((f) => f.visitors.entrances.length);
  const entrances = withEntrances.reduce((sum, f) => sum + f.visitors.entrances.length, 0);
  const missing = figures.length - withEntrances.length;
  // Occupancy runs from the last closing time, which may be yesterday's: just after midnight nothing of today is
  // released, yet the people inside since closing are known (it read "not yet" until today's first hour).
  const sinceClosing = withEntrances.map((f) => f.occupancy.visitors);
  const ends = sinceClosing.map((v) => v.occupancy_at_end);
  // One site whose occupancy is unknown leaves the sum unknown: it is shown as "–", never a smaller number.
  const inside = {
    people: ends.some((o) => o.people === null) ? null : ends.reduce((sum, o) => sum + o.people, 0),
    withheld_cells: ends.reduce((sum, o) => sum + o.withheld_cells, 0),
    unobserved_cells: ends.reduce((sum, o) => sum + o.unobserved_cells, 0),
    hours_partly_observed: ends.reduce((sum, o) => sum + (o.hours_partly_observed ?? 0), 0),
  };
  // Every reason the running sum is uncertain, both where both apply.
  const reasons = [inside.withheld_cells > 0 ? "withheld for privacy" : "",
    inside.hours_partly_observed > 0 ? "watched only in part" : ""].filter(Boolean);
  const uncertain = inside.people === null ? "; not known now"
    : reasons.length ? `; some entrance hours ${reasons.join(", some ")}` : "";
  const first = withEntrances[0]?.visitors;
  const occupancyAsOf = sinceClosing[0];
  const occupancyEarly = sinceClosing.length > 0 && sinceClosing.every(nothingReleased);
  const visitorNote = entered === null
    ? "no entrance line yet: mark a counting line 'entrance: true' to count people coming in"
    : `people in through ${plural(entrances, "entrance")}, each counted once${missing ? `; ${plural(missing, "site")} without entrances left out` : ""}`;
  // Nothing of today released yet (its first hour or so): no count, rather than 0 people in and out.
  const early = withEntrances.length > 0 && withEntrances.every((f) => nothingReleased(f.visitors));
  return [
    kpi("Site visitors today", early ? notReleasedYet() : sumNode(entered, k), visitorNote, "kpi-visitors"),
    kpi("In / out today", entered === null ? sumNode(null, k) : early ? notReleasedYet()
      : h("span", { class: "smaller" }, sumNode(entered, k), h("span", { class: "faint" }, " / "), sumNode(left, k)),
    "through the entrances, in / out", "kpi-inout"),
    kpi("Occupancy now", first ? (occupancyEarly ? notReleasedYet(SINCE_CLOSING)
      : occupancyNode(inside)) : sumNode(null, k),
    first ? `inside at ${asOf(occupancyAsOf)}: in − out since closing time, never below 0${uncertain}` : "needs an entrance line", "kpi-occupancy"),
  ];
}

/** Whether a comparison's zones hold an hour a camera watched only part of: its passes are then at least the sum. */
const partlyObserved = (comparison) => comparison.zones.some((z) => (z.hours_partly_observed ?? 0) > 0);
/** Whether any zone of a comparison was reported in its range: where none was, its 0 people are no count. */
const reported = (comparison) => comparison.zones.some((z) => z.hours_observed > 0);
/** Whether nothing of a comparison's range is released yet: the first hour of a day, as an hour is released a few
 * minutes after it ends. Its figures read "not yet", never "no data", which says the cameras were off. */
const nothingReleased = (comparison) => Date.parse(comparison.end) <= Date.parse(comparison.start);

const OF_TODAY = "Nothing of today is released yet: an hour's counts are released a few minutes after it ends.";
const SINCE_CLOSING = "Nothing since the closing time is released yet: an hour's counts are released a few minutes " +
  "after it ends.";

function notReleasedYet(why = OF_TODAY) {
  return h("span", { class: "faint", dataset: { notReleased: "true" }, title: why }, "not yet");
}

function renderKpis(sites, figures, agents) {
  // A withheld count is below its own site's k, so below the largest: "<k" holds for every site with it.
  const k = figures.length ? Math.max(...figures.map((f) => f.todayTotals.k)) : 5;
  // A site whose total is withheld leaves the sum of the others a lower bound, not a withheld figure.
  const peopleKnown = figures.some((f) => f.todayTotals.totals.people !== null);
  const peopleMissing = figures.some((f) => f.todayTotals.totals.people === null);
  const people = figures.reduce((sum, f) => sum + (f.todayTotals.totals.people ?? 0), 0);
  const peopleAtLeast = figures.some((f) => f.todayTotals.totals.people_lower_bound || partlyObserved(f.todayTotals));
  const weekKnown = figures.some((f) => f.weekTotals.totals.people !== null);
  const weekMissing = figures.some((f) => f.weekTotals.totals.people === null);
  const weekAtLeast = figures.some((f) => f.weekTotals.totals.people_lower_bound || partlyObserved(f.weekTotals));
  const week = figures.reduce((sum, f) => sum + (f.weekTotals.totals.people ?? 0), 0);
  const online = agents.filter((a) => a.online).length;
  const zones = sites.reduce((sum, s) => sum + s.zones, 0);
  document.getElementById("kpis").replaceChildren(
    ...visitorKpis(figures, k),
    // Zones overlap (a counting line inside a zone), so their sum counts passes, not distinct people.
    kpi("Zone passes today", figures.every((f) => nothingReleased(f.todayTotals)) ? notReleasedYet()
      : !figures.some((f) => reported(f.todayTotals)) ? notReported("today", "any zone")
      : peopleKnown ? countNode(people, k, { lowerBound: peopleAtLeast || peopleMissing }) : countNode(null, k),
      `${sites.length > 1 ? `${plural(sites.length, "site")}, each since its midnight` : `since midnight, ${sites[0].timezone}`}` +
      `${releasedUpTo(figures)}; one person in two zones counts twice`, "kpi-people"),
    kpi("Last 7 days", !figures.some((f) => reported(f.weekTotals)) ? notReported("in the last 7 days", "any zone")
      : weekKnown ? countNode(week, k, { lowerBound: weekAtLeast || weekMissing }) : countNode(null, k), "zone passes, today included", "kpi-week"),
    shareKpi(figures),
    kpi("Zones", fmtInt(zones), `${plural(sites.length, "site")}; cameras and entrances not included`, "kpi-zones"),
    kpi("Agents online", h("span", {}, fmtInt(online), h("span", { class: "faint" }, ` / ${fmtInt(agents.length)}`)),
      online === agents.length ? "all reporting" : `${agents.length - online} not reporting`, "kpi-agents"));
}

/** Today's occupancy curve of a site card, or a line saying why there is none. */
function occupancyBlock(f) {
  const v = f.visitors;
  if (!v.entrances.length) {
    // The API's visitors_note says it at length; the card keeps it short and offers it as the title.
    return h("p", { class: "faint occupancy-none", title: v.visitors_note },
      "No entrance line: no visitor count or occupancy here (zone passes overlap; they are not visitors).");
  }
  // A snapshot saved before the curve had an answer of its own draws from midnight, as it was drawn then.
  const curve = f.occupancy ?? { since: f.todayStart, visitors: v };
  const since = v.closing_time === "00:00" ? "midnight" : `closing at ${v.closing_time}`;
  // The axis names the times; the caption is a line of its own under it (its "00:00" and the axis's ran together).
  return h("div", { class: "occupancy-block" }, occupancyCurve(curve.visitors, curve.since),
    h("p", { class: "occupancy-caption" },
      `Occupancy: people inside at each hour's end since ${since} (in − out, never below 0), up to ${asOf(v)}.`));
}

const CAMERA_WITHHELD_HELP = (k) =>
  `Withheld for privacy: a part of this camera's people (its share of a zone, or of a zone or entrance it feeds) ` +
  `was below ${k} or is held back, and the camera's figure beside its zones' would give that part back. It is not ` +
  `zero, and not necessarily below ${k}.`;

/** A camera's distinct people: a withheld camera reads "withheld", never "<k": it is withheld whole where a part of
 * it is hidden, however many people it saw (API.md, "Cameras"). */
function cameraCount(camera, k) {
  if (camera.people !== null) return countNode(camera.people, k, { lowerBound: camera.people_lower_bound });
  const chip = h("span", { class: "supp", title: CAMERA_WITHHELD_HELP(k), "aria-label": "withheld for privacy",
    dataset: { suppressed: "true", cameraWithheld: "true" } }, "withheld");
  return chip;
}

function cameraLine(f) {
  const cameras = f.visitors.totals.cameras;
  if (!cameras.length) return null;
  const k = f.visitors.k;
  return h("div", { class: "meta cameras-line" }, "Distinct people per camera today: ",
    cameras.map((c, i) => h("span", { dataset: { camera: c.camera_id } }, i ? ", " : "", `${c.camera_id} `,
      cameraCount(c, k))),
    " (cameras overlap; not added up)");
}

/** Entrance lines more than one camera counted today: their counts add up, twice the visitors if the cameras
 * watch one doorway. The server cannot tell, so the card says it where the visitors figure is read. */
function sharedEntrancesLine(f) {
  const shared = f.visitors.shared_entrances || [];
  if (!shared.length) return null;
  return h("div", { class: "meta shared-entrances", role: "note" },
    shared.map((e, i) => h("span", { dataset: { entrance: e.entrance } }, i ? "; " : "",
      `Entrance “${e.entrance}” is counted by ${plural(e.cameras.length, "camera")} (${e.cameras.join(", ")})`)),
    ": their counts are added up, so if they watch the same doorway its visitors count twice. " +
    "Give each doorway a line id of its own.");
}

function siteCard(f) {
  const { site, todayTotals, weekTotals, daily, days, visitors } = f;
  const inside = f.occupancy.visitors; // since the last closing time, which may be yesterday's
  const k = todayTotals.k;
  const week = weekTotals.totals;
  const tz = site.timezone;
  const agentBadge = site.agents_total === 0 ? h("span", { class: "badge" }, "no agents yet")
    : h("span", { class: `badge ${site.agents_online === site.agents_total ? "ok" : site.agents_online ? "warn" : "bad"}` },
      h("span", { class: "dot" }), `${site.agents_online}/${site.agents_total} ${pluralNoun(site.agents_total, "agent")} online`);
  const link = (page) => `/dashboard/${page}?site=${encodeURIComponent(site.site_id)}`;
  return h("article", { class: "panel site-card", dataset: { site: site.site_id } },
    h("div", { style: "display:flex;justify-content:space-between;gap:.5rem;align-items:flex-start" },
      h("div", {}, h("h2", {}, site.name),
        h("div", { class: "meta" }, `${site.site_id} · ${tz}`),
        h("div", { class: "meta" }, `Local time ${fmtDateTime(Date.now(), tz)}`)),
      agentBadge),
    h("div", { class: "figures" },
      h("div", { class: "fig" }, h("div", { class: "v", dataset: { metric: "visitors" } }, !visitors.totals.visitors
        ? h("span", { class: "faint" }, "—") : nothingReleased(visitors) ? notReleasedYet()
          : countNode(visitors.totals.visitors.people, k, { lowerBound: atLeast(visitors.totals.visitors) })),
      h("div", { class: "l" }, "site visitors today")),
      h("div", { class: "fig" }, h("div", { class: "v", dataset: { metric: "occupancy" } }, !inside.occupancy_at_end
        ? h("span", { class: "faint" }, "—") : nothingReleased(inside) ? notReleasedYet(SINCE_CLOSING)
          : occupancyNode(inside.occupancy_at_end)),
      h("div", { class: "l" }, inside.occupancy_at_end ? `inside at ${asOf(inside)}` : "inside now")),
      // A range no zone reported is "no data", as in the zones table: its 0 people are no count.
      h("div", { class: "fig" }, h("div", { class: "v", dataset: { metric: "today" } }, nothingReleased(todayTotals) ? notReleasedYet()
        : reported(todayTotals)
          ? countNode(todayTotals.totals.people, k, { lowerBound: todayTotals.totals.people_lower_bound || partlyObserved(todayTotals) })
          : notReported("today", "any zone of this site")),
        h("div", { class: "l" }, "zone passes today")),
      h("div", { class: "fig" }, h("div", { class: "v", dataset: { metric: "week" } }, reported(weekTotals)
        ? countNode(week.people, k, { lowerBound: week.people_lower_bound || partlyObserved(weekTotals) })
        : notReported("in the last 7 days", "any zone of this site")),
        h("div", { class: "l" }, "passes, 7 days")),
      h("div", { class: "fig" }, h("div", { class: "v", dataset: { metric: "female" } }, correctedShareNode(week, "female", "passes")),
        h("div", { class: "l" }, "women, 7 days (corrected)")),
      h("div", { class: "fig" }, h("div", { class: "v" }, fmtInt(site.zones)), h("div", { class: "l" }, pluralNoun(site.zones, "zone")))),
    occupancyBlock(f),
    sharedEntrancesLine(f),
    cameraLine(f),
    sparkBars(daily.points, days, k),
    h("div", { class: "spark-caption" }, h("span", {}, `${plural(SPARK_DAYS, "day")} ago`), h("span", {}, "zone passes per day"),
      h("span", {}, "today so far")),
    h("div", { class: "links" }, h("a", { href: link("zone") }, "Zone details →"),
      h("a", { href: link("ad-placement") }, "Ad placement →")));
}

/** A zone (or a site's zones) no agent reported in a range: no count, rather than a 0 that reads as nobody passing. */
function notReported(when, what = "this zone") {
  return h("span", { class: "faint", dataset: { notReported: "true" }, title: `No agent reported ${what} ${when}: its camera or agent was off or down.` }, "no data");
}

/** A zone's people in the zones table: at least the count where cells were withheld or a camera watched only part of
 * an hour (the title says which). */
function zoneCount(zone, k) {
  const partly = zone.hours_partly_observed ?? 0;
  const node = countNode(zone.people, k, { lowerBound: atLeast(zone) });
  if (partly > 0 && zone.people !== null) {
    node.dataset.partlyObserved = String(partly);
    const why = `${plural(partly, "hour")} partly observed: a camera was off for part of it, so at least this many passed.`;
    node.title = zone.people_lower_bound ? `${why} ${node.title}` : why;
  }
  return node;
}

function zonesTable(figures) {
  const multi = figures.length > 1;
  const rows = [];
  for (const f of figures) {
    const k = f.todayTotals.k;
    const todayBy = new Map(f.todayTotals.zones.map((z) => [z.zone_id, z]));
    for (const z of f.weekTotals.zones) {
      const today = todayBy.get(z.zone_id);
      const href = `/dashboard/zone?site=${encodeURIComponent(f.site.site_id)}&zone=${encodeURIComponent(z.zone_id)}`;
      rows.push(h("tr", { dataset: { zone: z.zone_id, site: f.site.site_id } },
        h("td", {}, h("a", { href, class: "slot-name" }, z.name), z.name !== z.zone_id ? h("div", { class: "faint" }, z.zone_id) : null),
        multi ? h("td", {}, f.site.name) : null,
        h("td", {}, h("span", { class: "kind" }, kindLabel(z.kind))),
        h("td", {}, z.floor ?? h("span", { class: "faint" }, "—")),
        h("td", { class: "num", dataset: { col: "today" } }, nothingReleased(f.todayTotals) ? notReleasedYet()
          : today && today.hours_observed > 0 ? zoneCount(today, k) : notReported("today")),
        h("td", { class: "num", dataset: { col: "week" } }, z.hours_observed > 0
          ? zoneCount(z, k) : notReported("in the last 7 days")),
        h("td", { class: "num" }, z.share_of_traffic === null ? h("span", { class: "faint" }, "—") : fmtPct(z.share_of_traffic)),
        h("td", { class: "num", dataset: { col: "female" } }, correctedShareNode(z))));
    }
  }
  if (!rows.length) return null;
  return tableBox(h("table", { id: "zones-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Zone"), multi ? h("th", {}, "Site") : null, h("th", {}, "Kind"), h("th", {}, "Floor"),
      h("th", { class: "num" }, "Today"), h("th", { class: "num" }, "Last 7 days"), h("th", { class: "num" }, "Share of passes"),
      h("th", { class: "num", title: "Last 7 days, corrected for the classifier's known errors, with its 95% interval; the raw share is in the tooltip" }, "Women (7 days, corrected)"))),
    h("tbody", {}, rows)), "Zones");
}

// What each demographics mode leaves out, and the modes from loosest to strictest.
const MODE_LEAVES_OUT = { "gender-only": "no age estimated", "counts-only": "no classifier", off: "no camera read" };
const MODES = ["full", "gender-only", "counts-only", "off"];

// The mode this agent applies (null: an agent older than the modes, which classifies) beside its site's: a box looser
// than its site has not applied the site's settings yet (they may not reach it: the broker's ACL must let it read
// footfall/v1/<site>/settings). The server refuses what the site's mode forbids either way.
function modeCell(applied, siteMode) {
  const parts = [];
  if (applied && applied !== "full") {
    parts.push(h("span", { class: "badge warn" }, applied), ` ${MODE_LEAVES_OUT[applied] || ""}`);
  }
  if (applied && MODES.indexOf(applied) < MODES.indexOf(siteMode)) {
    parts.push(h("div", {
      class: "badge bad mode-not-applied",
      title: "This box still applies a looser mode than its site's. Its site's settings may not reach it: the " +
        "broker's ACL must let it read footfall/v1/<site>/settings. The server refuses what the site's mode forbids.",
    }, `site asks ${siteMode}; not applied`));
  }
  return parts.length ? h("div", { class: "demographics", dataset: { mode: applied } }, ...parts) : "";
}

/** A figure an agent has not reported: it sent counts but no status yet (an agent that posts over HTTP alone). */
function notToldNode() {
  return h("span", { class: "faint", dataset: { notTold: "true" },
    title: "Not reported: this agent has sent counts but no status yet, so its frame rate, latency and outbox are not known." }, "—");
}

// A box whose clock runs further ahead than this is marked: seconds are the network's, a minute is the clock's.
const CLOCK_AHEAD_MARKED_S = 60;

/** How far a box's clock runs ahead of the server's, when that is worth an operator's look (else nothing). */
function clockAheadNode(aheadS) {
  if (!(aheadS >= CLOCK_AHEAD_MARKED_S)) return "";
  const lead = aheadS < 3600 ? `${Math.round(aheadS / 60)} min` : `${(aheadS / 3600).toFixed(1)} h`;
  return h("div", { class: "badge warn clock-ahead", dataset: { aheadS: String(aheadS) },
    title: "This box's clock runs ahead of the server's. Its counts are dated by its clock: those more than 15 " +
      "minutes ahead wait in its outbox until the server's clock catches up, so they come late and are filed " +
      "that far off. Set the box's clock right (NTP)." }, `clock ${lead} ahead`);
}

function agentsTable(agents, sites) {
  const tzOf = new Map(sites.map((s) => [s.site_id, s.timezone]));
  const modeOf = new Map(sites.map((s) => [s.site_id, s.demographics || "full"]));
  const rows = agents.map((a) => {
    const tz = tzOf.get(a.site_id) || "UTC";
    const status = a.online ? h("span", { class: "badge ok",
      title: a.state === "no_status" ? "Sending counts; no status from it yet" : null }, h("span", { class: "dot" }), "online")
      : a.state === "offline" ? h("span", { class: "badge bad" }, h("span", { class: "dot" }), "offline")
        : h("span", { class: "badge warn", title: a.state === "no_status" ? "Sent counts, but none recently (and no status)"
          : "Says it is online but has not been heard from recently" },
          h("span", { class: "dot" }), "not heard from");
    const cameras = a.cameras.length
      ? a.cameras.map((c) => h("div", { class: "faint" }, a.online ? "" : "last report: ",
        `${c.camera_id}: ${c.state}${c.state === "online" ? `, ${c.fps.toFixed(1)} fps` : ""}`, c.error ? ` (${c.error})` : ""))
      : h("span", { class: "faint" }, "—");
    const cpu = a.cpu ? `${a.cpu.model} (${a.cpu.arch}; ${a.cpu.flags.join(" ") || "no int8 dot-product flags"})` : "";
    // What each model bundle really runs on this box: INT8, or the FP32 reference after a failed parity check.
    const models = (a.models || []).length
      ? a.models.map((m) => h("div", { class: "model-serving", dataset: { bundle: m.bundle, precision: m.precision } },
        h("span", { class: `badge ${m.parity === "failed" ? "warn" : "ok"}`, title: [m.reason, cpu].filter(Boolean).join(" · ") },
          m.precision.toUpperCase()),
        ` ${m.bundle}`,
        m.parity === "failed" ? h("div", { class: "faint" }, `INT8 failed its parity check here: ${m.reason}`) : ""))
      : h("span", { class: "faint" }, "—");
    return h("tr", { dataset: { agent: a.agent_id, online: String(a.online) } },
      h("td", { class: "slot-name" }, a.agent_id),
      h("td", {}, a.site_id),
      h("td", {}, status),
      h("td", {}, h("div", {}, fmtAgo(a.seconds_since_seen)), h("div", { class: "faint" }, fmtDateTime(a.last_seen, tz)),
        clockAheadNode(a.clock_ahead_s)),
      h("td", { class: "num" }, a.fps === null ? notToldNode() : a.online ? a.fps.toFixed(1) : h("span", { class: "faint" }, a.fps.toFixed(1))),
      h("td", { class: "num" }, a.latency_ms === null ? notToldNode() : `${Math.round(a.latency_ms)} ms`),
      h("td", { class: "num" }, a.outbox_depth === null ? notToldNode()
        : a.outbox_depth ? h("span", { class: "badge warn" }, fmtInt(a.outbox_depth)) : "0"),
      h("td", {}, cameras),
      h("td", { title: cpu }, models, modeCell(a.demographics, modeOf.get(a.site_id) || "full")),
      h("td", { class: "faint" }, a.version || "—"));
  });
  return tableBox(h("table", { id: "agents-table" },
    h("thead", {}, h("tr", {}, ["Agent", "Site", "Status", "Last seen", "FPS", "Latency", "Outbox", "Cameras", "Models", "Version"]
      .map((t) => h("th", { class: ["FPS", "Latency", "Outbox"].includes(t) ? "num" : null }, t)))),
    h("tbody", {}, rows)), "Camera boxes");
}

// The last answers, kept for this browser tab only (sessionStorage): a reload paints them at once, marked as
// not yet refreshed, instead of a spinner while a busy server answers. They are the same released counts the
// page showed; nothing else is kept.
const SNAPSHOT_KEY = "footfall.overview.snapshot.v4"; // v4: with each site's occupancy since closing (v3: owned by the whole key)

// Whose answers they were: the whole key (kept in this tab's sessionStorage already), so another key entered in
// this tab never sees the figures a previous one loaded; its public prefix alone could be typed by anyone who read
// `footfall keys list`. A key the server refuses clears the snapshot (api.js clearKey).
const keyOwner = () => getKey() || "";

function savedSnapshot() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SNAPSHOT_KEY) || "null");
    const usable = saved && saved.key === keyOwner() && Array.isArray(saved.sites) && Array.isArray(saved.figures);
    return usable ? saved : null;
  } catch {
    return null;
  }
}

function saveSnapshot(snapshot) {
  try {
    sessionStorage.setItem(SNAPSHOT_KEY, JSON.stringify(snapshot));
  } catch {
    // A full or disabled storage only costs the fast first paint.
  }
}

function render({ sites, figures, agents, now }, stale) {
  const zonesBox = document.getElementById("zones");
  const agentsBox = document.getElementById("agents");
  reveal();
  renderKpis(sites, figures, agents);
  const cards = document.getElementById("sites");
  cards.classList.add("sites");
  cards.replaceChildren(...figures.map(siteCard));
  const table = zonesTable(figures);
  if (table) zonesBox.replaceChildren(table);
  else empty(zonesBox, "No zones yet", "Zones appear with the first counts from a camera box.");
  document.getElementById("zones-note").textContent = "Today = since local midnight of each site";
  if (agents.length) agentsBox.replaceChildren(agentsTable(agents, sites));
  else empty(agentsBox, "No agents have reported yet", "An agent shows up here with its first status message.");
  const online = agents.filter((a) => a.online).length;
  document.getElementById("agents-note").textContent = `${online} of ${agents.length} online`;
  document.getElementById("updated").textContent = updatedLine(sites, now, stale);
  if (stale) document.body.dataset.stale = "true";
  else delete document.body.dataset.stale;
}

/** When the figures were fetched, on a named clock: the site's (every other time on the page is site time), or,
 * where the sites keep different time zones, the browser's, named as such. "Updated 05:24:39" beside "inside at
 * 06:24" read as two clocks an hour apart. */
function updatedLine(sites, now, stale) {
  const zones = [...new Set(sites.map((site) => site.timezone))];
  const tz = zones.length === 1 ? zones[0] : Intl.DateTimeFormat().resolvedOptions().timeZone;
  const at = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit",
    hourCycle: "h23" }).format(new Date(now));
  const clock = zones.length === 1 ? `site time, ${tz}` : `your time, ${tz}`;
  return stale ? `Showing figures from ${at} (${clock}) · refreshing…` : `Updated ${at} (${clock}) · refreshes every 30 s`;
}

async function load() {
  const zonesBox = document.getElementById("zones");
  const agentsBox = document.getElementById("agents");
  const saved = firstLoad ? savedSnapshot() : null;
  if (saved) render(saved, true);
  else if (firstLoad) {
    loading(document.getElementById("sites"), "Loading sites…");
    loading(zonesBox);
    loading(agentsBox);
  }
  const now = Date.now();
  const [sites, agents] = await Promise.all([api("/sites"), api("/agents")]);
  if (!sites.length) {
    delete document.body.dataset.stale;
    document.getElementById("kpis").replaceChildren();
    if (agents.length) {
      // A box is online but its first counts have not arrived: they are sent once its first minute has passed.
      empty(document.getElementById("sites"), "Waiting for the first counts",
        `${plural(agents.length, "camera box", "camera boxes")} reported in; counts appear once a box has counted for a ` +
        "minute and sent it (about a minute after it starts).");
    } else {
      empty(document.getElementById("sites"), "No data yet",
        "Sites and zones appear here as soon as the first camera box reports. Start an agent with ",
        h("code", {}, "footfall agent --config agent.yaml"), ".");
    }
    document.getElementById("sites").classList.remove("sites");
    empty(zonesBox, "No zones yet");
    if (agents.length) agentsBox.replaceChildren(agentsTable(agents, sites));
    else empty(agentsBox, "No agents have reported yet");
    firstLoad = false;
    return;
  }
  const figures = await Promise.all(sites.map((site) => siteFigures(site, now)));
  const snapshot = { key: keyOwner(), sites, figures, agents, now };
  render(snapshot, false);
  saveSnapshot(snapshot);
  firstLoad = false;
}

const run = startPage("overview", load);
setInterval(() => {
  if (document.visibilityState === "visible" && document.body.dataset.ready === "true") run();
}, REFRESH_MS);
