// Zone page: traffic over a range (hour/day/week), gender split, busiest hours, age pyramid per hour,
// hour-of-week heatmap, CSV export.

import { api, download } from "../api.js";
import { fill, h, s } from "../dom.js";
import {
  atLeast, correctedShareNode, countNode, fmtDay, fmtInt, fmtMean, fmtPct, genderCountNode, kindLabel, localDate, meanNode,
  plural, splitWithheld, withheldNode,
} from "../format.js";
import { rangeField, resolveRange, segmented, selectField } from "../controls.js";
import { heatmapChart } from "../charts/heatmap.js";
import { genderSplit } from "../charts/split.js";
import { agePyramid } from "../charts/pyramid.js";
import { SERIES_LEGEND, seriesChart } from "../charts/series.js";
import {
  clearMissingSite, empty, loading, reveal, pageParams, setParams, showBanner, showMissingSite, startPage,
} from "../ui.js";

const ALL = "*";
let state = null; // the last answers, kept to redraw on resize or metric change
let heatMetric = "people";

const DOWNLOAD_ICON = () => s("svg", { viewBox: "0 0 16 16", width: 14, height: 14, "aria-hidden": "true" },
  s("path", { d: "M8 2v8M4.5 6.5 8 10l3.5-3.5M3 13h10", fill: "none", stroke: "currentColor", "stroke-width": 1.8,
    "stroke-linecap": "round", "stroke-linejoin": "round" }));

function kpi(label, value, note, id) {
  return h("div", { class: "kpi", id }, h("div", { class: "label" }, label), h("div", { class: "value" }, value),
    note ? h("div", { class: "note" }, note) : null);
}

// The longest range the API answers in hours (footfall.server.api.deps.check_span); longer ones take days or weeks.
const HOURLY_MAX_DAYS = 400;

/** zoneId: the zone shown, ALL, or null where the address names no zone of the site (the picker then asks for one,
 * and nothing is exported). */
function renderControls(sites, site, zones, zoneId, range, granularity, reload) {
  const form = document.getElementById("controls");
  const fields = [];
  if (sites.length > 1) {
    fields.push(selectField("site", "Site", sites.map((one) => ({ value: one.site_id, label: one.name })), site.site_id,
      (value) => { setParams({ site: value, zone: null }); reload(); }));
  }
  fields.push(selectField("zone", "Zone", [
    ...(zoneId === null ? [{ value: "", label: "Pick a zone" }] : []),
    ...zones.map((z) => ({ value: z.zone_id, label: `${z.name}${z.floor !== null ? ` · floor ${z.floor}` : ""}` })),
    { value: ALL, label: "All zones of the site" },
  ], zoneId ?? "", (value) => { if (value) { setParams({ zone: value }); reload(); } }));
  fields.push(...rangeField(range, (change) => { setParams(change); reload(); }));
  if (zoneId === null) {
    form.replaceChildren(...fields);
    return;
  }
  fields.push(segmented("granularity", "Per", [
    { value: "hour", label: "Hour" }, { value: "day", label: "Day" }, { value: "week", label: "Week" },
  ], granularity, (value) => { setParams({ g: value }); reload(); }));
  const exportButton = h("button", { type: "button", class: "btn", id: "export-csv",
    title: "One row per zone and bucket; a withheld count is empty, with withheld_cells saying how many zone-hours" }, DOWNLOAD_ICON(), "Export CSV");
  exportButton.addEventListener("click", async () => {
    exportButton.disabled = true;
    try {
      const params = { start: range.start, end: range.end, granularity, zone: zoneId === ALL ? null : zoneId };
      const name = await download(`/sites/${encodeURIComponent(site.site_id)}/traffic/export.csv`, params, "footfall.csv");
      exportButton.dataset.downloaded = name;
    } catch (error) {
      showBanner("error", "Export failed.", ` ${error.message}`);
    } finally {
      exportButton.disabled = false;
    }
  });
  fields.push(h("div", { class: "spacer" }), h("div", { class: "field" }, h("span", { class: "flabel" }, "\u00a0"), exportButton));
  form.replaceChildren(...fields);
}

/** Whether no camera box reported the zone (or any zone of the site) in the range: the API's hours_observed is 0.
 * Its people 0 is then no count, and no hour of it is hidden for privacy: there is no data. */
const nothingObserved = (totals) => totals.hours_observed === 0;

const reportedWhat = (allZones) => (allZones ? "any zone of this site" : "this zone");
const NO_DATA_WHY = (allZones) => `No camera box reported ${reportedWhat(allZones)} in this range: its camera or agent ` +
  "was off or down, or not installed yet.";

function noData(text = "No data") {
  return h("span", { class: text === "No data" ? "faint smaller" : "faint", dataset: { notReported: "true" } }, text);
}

function renderNoDataKpis(range, allZones) {
  document.getElementById("kpis").replaceChildren(
    kpi(allZones ? "Zone passes" : "People", noData(),
      `no camera box reported ${reportedWhat(allZones)} in these ${plural(range.days, "day")}`, "kpi-people"),
    kpi("Per day", noData("—"), "no data", "kpi-per-day"),
    kpi("Women", noData("—"), "no data to estimate from", "kpi-female"),
    kpi("Men", noData("—"), "no data to estimate from", "kpi-male"),
    kpi("Busiest hour", noData("—"), "No data: no hour reported in this range", "kpi-peak"),
    kpi("Mean dwell", noData("—"), "no data", "kpi-dwell"));
}

function renderKpis(data, range, allZones, tz) {
  // Summed over a site's zones, which overlap, a figure counts passes (one person in three zones is three).
  const unit = allZones ? "passes" : "people";
  const { totals, series, peaks } = data;
  if (nothingObserved(totals)) {
    renderNoDataKpis(range, allZones);
    return;
  }
  const k = totals.k;
  const t = totals.totals;
  // Days reported (an agent sent buckets, quiet ones included; a day before the camera was installed, say, is not
  // averaged in): the local dates of hourly or daily buckets; for weekly buckets, the most days any hour of the
  // day was seen on.
  const daysWithData = series.granularity === "week"
    ? Math.max(0, ...peaks.hours.map((p) => p.days_observed))
    : new Set(series.points.map((p) => p.label.slice(0, 10))).size;
  // Today is a part of a day while the range runs on: averaged in, two days of 100 people and 10 so far today read
  // 70 a day. Left out where the series can tell its people apart (hours and days, not weeks).
  const today = localDate(Date.now(), tz);
  const todays = series.granularity === "week" ? [] : series.points.filter((p) => p.label.slice(0, 10) === today);
  const wholeDays = todays.length && range.endMs > Date.now() && daysWithData > 1 && t.people !== null;
  const perDay = wholeDays
    ? { people: t.people - todays.reduce((sum, p) => sum + (p.people ?? 0), 0), days: daysWithData - 1 }
    : { people: t.people, days: daysWithData };
  const top = peaks.hours.find((p) => p.people !== null);
  // Hours a camera watched for only part of: people is at least the count.
  const partly = totals.hours_partly_observed ?? 0;
  const nobody = t.people === 0 && !t.people_lower_bound;
  // No hour with a count: hidden for privacy only where an hour was withheld, else none was reported.
  const peakNote = peaks.hours.some((p) => p.people === null) ? "no hour above the privacy threshold"
    : "no hour reported in this range";
  document.getElementById("kpis").replaceChildren(
    // Summed over a site's zones, which overlap, the figure counts passes (a person in two zones counts twice).
    kpi(allZones ? "Zone passes" : "People", countNode(t.people, k, { lowerBound: atLeast(totals.totals) || partly > 0 }),
      `${plural(range.days, "day")}, ${plural(series.points.length, series.granularity)} reported` +
      (partly > 0 ? `; ${plural(partly, allZones ? "zone-hour" : "hour")} partly observed (a camera off for part of it)` : ""),
      "kpi-people"),
    kpi("Per day", t.people === null || !perDay.days ? countNode(t.people === null ? null : 0, k) : meanNode(perDay.people / perDay.days, k, t.people_lower_bound || partly > 0),
      wholeDays ? `average over ${plural(perDay.days, "whole day")} reported (today so far left out)`
        : `average over ${plural(daysWithData, "day")} reported`, "kpi-per-day"),
    // The corrected estimate (with its interval) is the figure; the raw decisions stay beside it. Nobody passed
    // (the zone reported, no hour withheld): no share to give, and "raw: 0 of 0 classified" said it clumsily.
    kpi("Women", correctedShareNode(t, "female", unit), nobody ? "nobody passed in this range"
      : splitWithheld(t)
      ? h("span", {}, "corrected for the classifier's known errors; raw: ", withheldNode(k), ` (a part of the split was below ${k} in its hours)`)
      : h("span", {}, "corrected for the classifier's known errors; raw: ", genderCountNode(t, "female", k), " of ",
        t.female !== null && t.male !== null ? countNode(t.female + t.male, k) : genderCountNode(t, "male", k), " classified",
        t.female_share !== null ? ` (${fmtPct(t.female_share)})` : ""), "kpi-female"),
    kpi("Men", correctedShareNode(t, "male", unit), nobody ? "nobody passed in this range"
      : splitWithheld(t)
      ? h("span", {}, "corrected; raw: ", withheldNode(k), " for privacy")
      : h("span", {}, "corrected; raw: ", genderCountNode(t, "male", k), " classified male",
        t.male_share !== null ? ` (${fmtPct(t.male_share)})` : ""), "kpi-male"),
    kpi("Busiest hour", top ? h("span", { class: "smaller" }, top.label.replace("-", "–")) : h("span", { class: "faint" }, "—"),
      top ? `${atLeast(top) ? "at least " : ""}${fmtMean(top.mean_people_per_day)} ${unit} per day on average`
        : peakNote, "kpi-peak"),
    kpi("Mean dwell", totals.mean_dwell_seconds === null ? h("span", { class: "faint" }, "—") : `${fmtMean(totals.mean_dwell_seconds)} s`,
      totals.mean_dwell_seconds === null ? "not measured (a counting line has none), or too few visits"
        : allZones ? "time spent in a zone, per pass" : "time spent in the zone", "kpi-dwell"));
}

function seriesTable(series, allZones) {
  const k = series.k;
  return h("table", { id: "series-rows" },
    h("thead", {}, h("tr", {}, h("th", {}, `Bucket (${series.timezone})`), ...[allZones ? "Passes" : "People", "Female", "Male", "Unknown"].map((t) => h("th", { class: "num" }, t)))),
    h("tbody", {}, series.points.map((p) => h("tr", { dataset: { suppressed: String(p.suppressed) } }, h("td", {}, p.label),
      ...["people", "female", "male", "unknown"].map((key) => h("td", { class: "num" },
        key !== "people" ? genderCountNode(p, key, k)
          : countNode(p[key], k, { lowerBound: atLeast(p) })))))));
}

function renderPeaks(peaks, noDataWhy, allZones) {
  const box = document.getElementById("peaks");
  const k = peaks.k;
  const shown = peaks.hours.slice(0, 8);
  if (!shown.length) {
    if (noDataWhy) empty(box, "No data", noDataWhy);
    else empty(box, "No counts in this range");
    return;
  }
  const max = Math.max(1, ...shown.map((p) => p.mean_people_per_day ?? 0));
  box.replaceChildren(h("div", { class: "peaks", id: "peak-list" }, shown.map((p) => h("div", { class: "peak", dataset: { hour: p.hour } },
    h("span", {}, p.label.replace("-", "–")),
    h("span", { class: "bar" }, p.mean_people_per_day === null ? null : h("span", { style: `width:${(p.mean_people_per_day / max) * 100}%` })),
    h("span", { class: "v" }, meanNode(p.mean_people_per_day, k, atLeast(p)))))),
  h("p", { class: "faint" }, `Mean ${allZones ? "zone passes" : "people"} per day in each local hour, over the days observed.`));
}

/** Whether an ages answer shows people in an age band (not age unknown): counted while age estimation was on. */
function agedBefore(ages) {
  return [ages.totals, ...ages.points].some((table) => table && Object.values(table.bands || {}).some((bands) =>
    Object.entries(bands || {}).some(([band, count]) => band !== "unknown" && count > 0)));
}

// The age pyramid of the whole range, or of one bucket of it at the page's granularity (the ``ah`` parameter: the
// bucket's UTC start).
function renderAges(ages, site, noDataWhy = null, allZones = false) {
  const box = document.getElementById("ages");
  const params = pageParams();
  const hours = ages.points.filter((p) => p.people > 0 || p.withheld_cells > 0);
  let chosen = params.get("ah");
  if (chosen !== "all" && !hours.some((p) => p.start === chosen)) chosen = "all";
  const unit = ages.granularity ?? "hour";
  document.getElementById("ages-controls").replaceChildren(selectField("age-hour", unit[0].toUpperCase() + unit.slice(1), [
    { value: "all", label: "Whole range" },
    ...hours.slice().reverse().map((p) => ({ value: p.start, label: p.label })),
  ], chosen, (value) => { setParams({ ah: value }); renderAges(ages, site, noDataWhy, allZones); }));
  document.getElementById("ages-note").textContent = site.age_estimation
    ? `${allZones ? "Zone passes (one person in three zones counts three times)" : "People"} by gender and age band, ` +
      `k = ${ages.k}: a gender's bands are hidden when any of them is below ${ages.k}.`
    : `Age estimation is off for this site now (mode '${site.demographics}'): people counted while it is off are ` +
      `age unknown.${agedBefore(ages) ? " Bands counted before, while it was on, still show below." : ""}`;
  if (!hours.length) {
    if (noDataWhy) empty(box, "No data", noDataWhy);
    else empty(box, "No counts in this range");
    return;
  }
  const table = chosen === "all" ? ages.totals : hours.find((p) => p.start === chosen);
  box.dataset.hour = chosen;
  agePyramid(box, table, ages.k, { passes: allZones });
}

function drawCharts() {
  if (!state) return;
  const { series, heatmap, totals } = state.data;
  const passes = state.allZones;
  const none = nothingObserved(totals) ? "No data" : "No counts in this range";
  const seriesBox = document.getElementById("series");
  if (series.points.length) seriesChart(seriesBox, series, { passes });
  else empty(seriesBox, none, "Pick a longer range, or check on the overview that the zone's camera box is online.");
  const heatBox = document.getElementById("heatmap");
  if (heatmap.cells.length) heatmapChart(heatBox, heatmap, heatMetric, { passes });
  else empty(heatBox, none);
}

/** The address names a zone the site does not have: say so, with the zone picker, and show no figures (the first
 * zone's, under its own name, read as the zone asked for). The address keeps what was asked. */
function renderMissingZone(sites, site, zones, asked, range, granularity) {
  state = null;
  document.title = `No zone '${asked}' · ${site.name} · footfall`;
  fill(document.getElementById("crumbs"), h("a", { href: "/dashboard/" }, "Overview"), " / ", site.name);
  document.getElementById("title").textContent = "Zone not found";
  document.getElementById("subtitle").textContent = `${site.name} has ${plural(zones.length, "zone")}; pick one below.`;
  renderControls(sites, site, zones, null, range, granularity, () => runPage());
  document.getElementById("zone-figures").hidden = true;
  const box = document.getElementById("zone-missing");
  box.hidden = false;
  fill(box, h("div", { class: "state empty", role: "alert", dataset: { state: "missing-zone" } },
    h("div", { class: "title" }, `No zone '${asked}' at ${site.name}`),
    h("div", {}, "It may have been renamed, or the link mistyped. Pick one of the site's zones above, or ",
      h("a", { href: `/dashboard/zone?site=${encodeURIComponent(site.site_id)}&zone=${encodeURIComponent(ALL)}` },
        "all zones of the site"), ".")));
}

// The page's figure panels: each shows a spinner until its answer, and "No data yet" where there is none to ask for.
const PANELS = ["series", "split", "peaks", "ages", "heatmap"];

async function load() {
  const params = pageParams();
  if (!state) {
    // The page's frame at once, each panel with its own spinner, instead of one spinner over a blank page while a
    // busy server answers.
    reveal();
    for (const id of PANELS) loading(document.getElementById(id));
  }
  const sites = await api("/sites");
  if (!sites.length) {
    document.getElementById("title").textContent = "Zones";
    for (const id of PANELS) empty(document.getElementById(id), "No data yet");
    empty(document.getElementById("series"), "No data yet", "Zones appear when the first camera box reports.");
    return;
  }
  // No site asked: the first. A site asked that the server does not have: said so, never another site's figures.
  const askedSite = params.get("site");
  const site = askedSite ? sites.find((one) => one.site_id === askedSite) : sites[0];
  if (!site) {
    state = null;
    document.getElementById("title").textContent = "Site not found";
    document.getElementById("subtitle").textContent = "Pick a site to see its zones.";
    showMissingSite(askedSite, sites, ["zone-missing", "zone-figures"].map((id) => document.getElementById(id)),
      (value) => { setParams({ site: value, zone: null }); runPage(); });
    return;
  }
  clearMissingSite();
  const zones = await api(`/sites/${encodeURIComponent(site.site_id)}/zones`);
  if (!zones.length) {
    for (const id of PANELS) empty(document.getElementById(id), "No data yet");
    empty(document.getElementById("series"), "This site has no zones yet");
    return;
  }
  const tz = site.timezone;
  const range = resolveRange(params, tz);
  let granularity = params.get("g");
  if (!["hour", "day", "week"].includes(granularity)) granularity = range.days <= 14 ? "hour" : "day";
  // No zone asked: the site's first. A zone asked that the site does not have: said so, never another's figures.
  const asked = params.get("zone");
  const zoneId = asked || zones[0].zone_id;
  const zone = zones.find((z) => z.zone_id === zoneId);
  if (zoneId !== ALL && !zone) {
    setParams({ site: site.site_id });
    renderMissingZone(sites, site, zones, zoneId, range, granularity);
    return;
  }
  document.getElementById("zone-missing").hidden = true;
  document.getElementById("zone-figures").hidden = false;
  setParams({ site: site.site_id, zone: zoneId });
  const allZones = zoneId === ALL;

  document.title = `${zone ? zone.name : "All zones"} · ${site.name} · footfall`;
  fill(document.getElementById("crumbs"), h("a", { href: "/dashboard/" }, "Overview"), " / ", site.name);
  document.getElementById("title").textContent = zone ? zone.name : `All zones of ${site.name}`;
  // fill, not replaceChildren: over all zones there is no kind or floor, and replaceChildren printed the nulls
  // ("nullnullDec 1, 2026 – …").
  fill(document.getElementById("subtitle"),
    zone ? h("span", { class: "kind" }, kindLabel(zone.kind)) : null, zone ? " " : null,
    zone && zone.floor !== null && zone.floor !== undefined ? `Floor ${zone.floor} · ` : null,
    `${fmtDay(range.from)} – ${fmtDay(range.to)} · times in ${tz} (site time)`);
  renderControls(sites, site, zones, zoneId, range, granularity, () => runPage());

  for (const id of ["series", "split", "peaks", "heatmap"]) if (!state) loading(document.getElementById(id));
  const base = `/sites/${encodeURIComponent(site.site_id)}/traffic`;
  const common = { start: range.start, end: range.end, zone: allZones ? null : zoneId };
  const [series, totals, peaks, heatmap, ages] = await Promise.all([
    api(`${base}/series`, { ...common, granularity }),
    api(`${base}/totals`, common),
    api(`${base}/peak-hours`, common),
    api(`${base}/heatmap`, common),
    // Hourly pyramids where the API answers hours for the range; beyond, the page's own buckets.
    api(`${base}/ages`, { ...common, granularity: range.days < HOURLY_MAX_DAYS ? "hour" : granularity }),
  ]);
  const noDataWhy = nothingObserved(totals) ? NO_DATA_WHY(allZones) : null;
  state = { data: { series, totals, peaks, heatmap, ages }, range, allZones,
    redrawAges: () => renderAges(ages, site, noDataWhy, allZones) };
  reveal();
  renderKpis(state.data, range, allZones, tz);
  // Summed over a site's zones, which overlap, the figures count passes (a person in two zones counts twice).
  const counted = allZones ? "Zone passes" : "People";
  document.getElementById("series-title").textContent = `${counted} per ${granularity}`;
  document.getElementById("series-note").textContent = `k = ${series.k}: counts below ${series.k} are hidden`;
  document.getElementById("series-legend").replaceChildren(
    ...SERIES_LEGEND(series.k, series.points.some((p) => p.hours_partly_observed > 0)));
  document.getElementById("series-table").replaceChildren(seriesTable(series, allZones));
  if (noDataWhy) {
    empty(document.getElementById("split"), "No data", noDataWhy);
    document.getElementById("split-note").textContent = "no data in range";
  } else {
    genderSplit(document.getElementById("split"), totals.totals, totals.k, { passes: allZones });
    const inRange = totals.totals.people === null ? `fewer than ${totals.k} (withheld for privacy)`
      : `${totals.totals.people_lower_bound ? "at least " : ""}${fmtInt(totals.totals.people)}`;
    document.getElementById("split-note").textContent = `${inRange} ${counted.toLowerCase()} in range`;
  }
  renderPeaks(peaks, noDataWhy, allZones);
  renderAges(ages, site, noDataWhy, allZones);
  document.getElementById("heat-controls").replaceChildren(segmented("heat-metric", "Colour by", [
    { value: "people", label: allZones ? "Zone passes per week" : "People per week" },
    { value: "female_share", label: "Female share (raw)", title: "The share of the classified people decided female, not corrected for the classifier's errors" },
  ], heatMetric, (value) => { heatMetric = value; drawCharts(); }));
  drawCharts();
}

const runPage = startPage("zone", load);

let resizeTimer;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    drawCharts();
    // The pyramid is drawn at its box's width (its labels stay readable): drawn again at the new one.
    if (state) state.redrawAges();
  }, 150);
});
