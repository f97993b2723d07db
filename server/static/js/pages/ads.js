// Ad placement: zone × hour-of-week slots ranked for a target audience, each with its 95% interval and the
// numbers behind it, plus a plain-language account of how the ranking is made.

import { api, ApiError } from "../api.js";
import { fill, h } from "../dom.js";
import { atLeast, fmtDay, fmtInt, fmtMean, fmtPct, kindLabel, MISSING_HELP, plural } from "../format.js";
import { rangeField, resolveRange, segmented, selectField } from "../controls.js";
import { ciBar } from "../charts/ci.js";
import { slotMap } from "../charts/slotmap.js";
import {
  clearMissingSite, empty, loading, reveal, pageParams, setParams, showMissingSite, startPage, tableBox,
} from "../ui.js";

const RANGES = [
  { value: "28d", label: "4 weeks", days: 28 },
  { value: "56d", label: "8 weeks", days: 56 },
  { value: "84d", label: "12 weeks", days: 84 },
];
const AUDIENCES = [
  { value: "all", label: "Everyone" },
  { value: "female", label: "Women" },
  { value: "male", label: "Men" },
];
const NOUN = { all: "people", female: "women", male: "men" };
// Adult bands only: the server refuses any audience under 18 (footfall does not target minors), so none is offered.
const AGES = [
  { value: "", label: "All ages" },
  ...["18-24", "25-34", "35-44", "45-54", "55-64", "65+"].map((band) => ({ value: band, label: band })),
];
const NO_ESTIMATE = "the share could not be corrected for the classifier's errors (nobody classified, a split withheld " +
  "for privacy, or a model without known error rates), so the range runs from none to everyone in the slot";
// An age audience has no estimate where no one of its gender is in a released band: their bands were withheld (a band
// below k) or their age is unknown (a box without an age head, a gender-only period, or undecided). Its own words,
// not the classifier's, which never came into it.
const ageUnknownOnly = (slot) => Boolean(slot && slot.age_unknown && !slot.bands_withheld);
const noEstimate = (choice, slot) => (!choice.age ? NO_ESTIMATE
  : ageUnknownOnly(slot)
  ? `the age of the ${NOUN[choice.audience]} here is unknown (their camera box estimated no age, or could not ` +
    "decide it), so the range runs from none to all of them"
  : `the age bands of the ${NOUN[choice.audience]} were withheld for privacy (a band of theirs, or their ` +
    "gender split, had fewer than k people), so the range runs from none to as many as the withheld people could be");
// A slot without an estimate ranks after every slot with one, in an order that means nothing of its audience: it gets
// no number (they read as a ranking where every slot showed "—").
const UNRANKED_HELP = "No rank: this slot has no estimate of the audience, so it is listed after every slot with an " +
  "estimate, in no particular order of audience.";
const nounOf = (choice) => `${NOUN[choice.audience]}${choice.age ? ` aged ${choice.age}` : ""}`;
// A slot's audience is a lower bound where hours were withheld (audience_lower_bound) or a camera watched some of its
// hours only in part (hours_partly_observed, which the API keeps apart): it reads "at least" / "≥" for both.
const lowerBound = (slot) => Boolean(slot.audience_lower_bound) || atLeast(slot);
const PARTLY_OBSERVED_HELP = "Hours of this slot a camera watched only in part (off for part of the hour): the " +
  "people who passed meanwhile were missed, so the slot's figures are at least what is shown. It ranks by what was counted.";
const DAYS = [
  { value: "", label: "All week" },
  { value: "mon-fri", label: "Mon–Fri" },
  { value: "sat-sun", label: "Sat–Sun" },
];
const PAGE_SIZE = 20;
const MAP_LIMIT = 1000; // the API maximum: a site has at most zones × 168 slots
let limit = PAGE_SIZE;
let firstLoad = true;
let lastMap = null; // [slots, noun] of the drawn map, to redraw it at a new width

const pad = (hour) => `${String(hour).padStart(2, "0")}:00`;

function hoursWindow(params) {
  const text = params.get("hours") || "";
  const match = text.match(/^(\d{1,2})-(\d{1,2})$/);
  if (!match) return { from: 0, to: 24, text: "" };
  const from = Number(match[1]);
  const to = Number(match[2]);
  if (from < 0 || from > 23 || to < 1 || to > 24 || from === to) return { from: 0, to: 24, text: "" };
  return { from, to, text: from === 0 && to === 24 ? "" : `${from}-${to}` };
}

function renderControls(sites, site, kinds, choice, range, reload) {
  const set = (values) => { setParams(values); limit = PAGE_SIZE; reload(); };
  const fields = [];
  if (sites.length > 1) {
    fields.push(selectField("site", "Site", sites.map((one) => ({ value: one.site_id, label: one.name })), site.site_id,
      (value) => set({ site: value, kind: null })));
  }
  fields.push(segmented("audience", "Target audience", AUDIENCES, choice.audience,
    (value) => set({ audience: value, sort: value === "all" ? null : choice.sort })));
  const hourOptions = (first, last) => Array.from({ length: last - first + 1 }, (_, i) => ({ value: String(first + i), label: pad(first + i) }));
  const from = selectField("hours-from", "Hours from", hourOptions(0, 23), String(choice.hours.from),
    (value) => set({ hours: `${value}-${choice.hours.to}` }));
  const to = selectField("hours-to", "to", hourOptions(1, 24), String(choice.hours.to),
    (value) => set({ hours: `${choice.hours.from}-${value}` }));
  // An age from the address bar that is no single band ('18-34', '35+', '18-24,25-34', or one the server refuses)
  // is offered as chosen, under its own text: the select must not say "All ages" while the ranking is for it.
  const ages = AGES.some((a) => a.value === choice.age) ? AGES : [...AGES, { value: choice.age, label: choice.age }];
  fields.push(selectField("age", "Age", ages, choice.age, (value) => set({ age: value || null })));
  fields.push(from, to);
  fields.push(segmented("days", "Days", DAYS, choice.days, (value) => set({ days: value })));
  fields.push(selectField("kind", "Zone kind", [{ value: "", label: "All kinds" }, ...kinds.map((k) => ({ value: k, label: kindLabel(k) }))],
    choice.kind, (value) => set({ kind: value })));
  fields.push(...rangeField(range, (change) => set(change), RANGES).slice(0, 1));
  fields.push(segmented("sort", "Rank by", [
    { value: "audience", label: "Expected audience" },
    { value: "share", label: "Share (cautious)", title: "Ranks by the lower end of the share's 95% interval" },
  ], choice.sort, (value) => set({ sort: value }), { disabled: choice.audience === "all" }));
  document.getElementById("controls").replaceChildren(...fields);
}

function explainPanel(result, choice) {
  const k = result.k;
  const noun = nounOf(choice);
  const top = result.slots[0];
  const withoutEstimate = result.slots.filter((slot) => slot.expected_audience === null).length;
  const example = top ? (choice.age && top.expected_audience === null
    // Every band of the gender withheld: no count of the audience to divide, so no "0 … = 0.0 per week".
    ? `${top.zone_name}, ${top.label}: ${fmtMean(top.people / top.weeks_observed)} people per week; ` +
      (top.bands_withheld ? `the age bands of ${fmtInt(top.bands_withheld)} ${NOUN[choice.audience]} were withheld for ` +
        `privacy (a band of theirs below k = ${k})`
        : top.age_unknown ? `the age of ${fmtInt(top.age_unknown)} ${NOUN[choice.audience]} is unknown (not estimated, or ` +
          "undecided)"
        : "their gender split was withheld for privacy") +
      `, so no estimate of ${noun}: anywhere from ${fmtMean(top.expected_audience_low)} to ` +
      `${fmtMean(top.expected_audience_high)} per week.`
    : choice.age
    ? `${top.zone_name}, ${top.label}: ${fmtInt(top.audience_count)} ${noun} over ${plural(top.weeks_observed, "week")} = ` +
      `${fmtMean(top.expected_audience)} per week, of ${fmtMean(top.people / top.weeks_observed)} people per week.`
    : choice.audience === "all"
    ? `${top.zone_name}, ${top.label}: ${fmtInt(top.people)} people over ${plural(top.weeks_observed, "week")} = ${fmtMean(top.expected_audience)} per week.`
    : `${top.zone_name}, ${top.label}: ${fmtInt(top.people)} people over ${plural(top.weeks_observed, "week")} = ` +
      `${fmtMean(top.people / top.weeks_observed)} per week; ` +
      // No released split (withheld for privacy, or nobody classified): no "0 of the 0 … decided on", and the reason
      // in words, not the API's code.
      (top.classified ? `${fmtInt(top.audience_count)} of the ${fmtInt(top.classified)} people the classifier decided on ` +
        `were read as ${noun} (${top.share_raw === null ? "—" : fmtPct(top.share_raw)}); ` : "") +
      (top.share === null ? `no corrected share (${MISSING_HELP[top.share_missing] || top.share_missing}), so no audience estimate.`
        : `corrected for its known errors, ${fmtPct(top.share)} are ${noun}, so ${lowerBound(top) ? "at least" : "about"} ${fmtMean(top.expected_audience)} ${noun} per week.`)) : null;
  return [
    h("h2", { id: "how-title" }, "How this ranking works"),
    h("h3", {}, "A slot"),
    h("p", {}, "One zone in one local hour of the week (site time, ", result.timezone, "), for example “Food court, Saturday " +
      "13:00–14:00”, added up over every week in the range."),
    h("h3", {}, `Expected ${noun} per week`),
    h("p", {}, choice.age
      ? `The ${noun} counted in the slot divided by the number of weeks it was observed: the classifier's gender ` +
        "decisions as made; each band's count follows the sum of the model's band probabilities (allotted on the " +
        "box), not corrected further for its errors; people whose age was not estimated are in no band. " +
        "Audiences under 18 are never ranked: footfall does not target minors."
      : choice.audience === "all"
      ? "People counted in the slot divided by the number of weeks it was observed."
      : `Mean people per week in the slot × the share of ${noun}, corrected for the classifier's known errors: ` +
        "estimated from its female, male and undecided counts with the error rates measured for the model that made " +
        "them, so people it could not classify count through their expected split."),
    example ? h("p", { class: "example", id: "worked-example" }, example) : null,
    h("h3", {}, "The 95% interval"),
    h("p", {}, choice.audience === "all" || choice.age
      ? "The whisker shows how far the weekly mean could plausibly be from the estimate, treating the count as Poisson. " +
        "Fewer weeks or fewer people give a wider whisker."
      : "The share's interval holds both sampling and the uncertainty of the classifier's measured error rates; the " +
        "audience interval scales the same bounds. A short whisker means solid evidence; a long one means few people " +
        "were counted."),
    choice.age ? h("p", {}, `A zone-hour adds its ${noun} only where each age band of its ${NOUN[choice.audience]} ` +
      `was 0 or at least k = ${k}; elsewhere that gender's bands are suppressed, so the figure is a lower bound.`) : null,
    choice.audience !== "all" ? h("p", {}, "“Share (cautious)” ranks by the lower end of the interval, so a slot with " +
      "little evidence cannot float to the top on luck.") : null,
    h("h3", {}, "Privacy"),
    // An age audience's bands can be withheld in a slot that is shown: "a count below k is left out" alone was
    // untrue beside rows of "≥ 0.0"; such a slot is listed, without an estimate, and the paragraph says so.
    h("p", {}, choice.age
      ? `Slots whose every zone-hour has fewer than k = ${k} people are left out, not shown as zero. ` +
        `${plural(result.suppressed_slots, "slot was", "slots were")} left out for this choice. Slots whose ` +
        `${NOUN[choice.audience]}'s age bands were all withheld (a band below k) are listed without an estimate (“—”), ` +
        `after every slot with one: ${withoutEstimate} of the ${result.slots.length} shown here.`
      : `Slots where a count is below k = ${k} (or would reveal such a count) are left out, not shown as zero. ` +
        `${plural(result.suppressed_slots, "slot was", "slots were")} left out for this choice.`),
    h("h3", {}, "Reading it well"),
    h("ul", {}, h("li", {}, "Use 8–12 weeks for stable figures; holidays and events move single weeks."),
      h("li", {}, "Counts are zone passes: people entering the zone, each time they enter it (one person walking " +
        "through three zones is three passes, one in each), not impressions or dwell time."),
      h("li", {}, "A slot with hours a camera watched only in part (“partly observed”, off for part of the hour) reads " +
        "“≥”: the people it missed are in no figure. It keeps its place, ranked by what was counted.")),
    h("details", { class: "data" }, h("summary", {}, "The server's method statement"), h("p", { class: "faint" }, result.method)),
  ];
}

function headline(result, choice) {
  const box = document.getElementById("headline");
  const top = result.slots[0];
  if (!top) {
    box.replaceChildren();
    return;
  }
  const noun = nounOf(choice);
  if (top.expected_audience === null) {
    // Slots without an estimate rank last: the best being one means that no slot has an estimate to rank by.
    box.replaceChildren(h("div", { class: "banner info", id: "best-slot", dataset: { estimate: "none" } }, h("div", { class: "msg" },
      h("strong", {}, `No slot has an estimate of ${noun}`),
      h("span", {}, ` — ${noEstimate(choice, top)}`))));
    return;
  }
  box.replaceChildren(h("div", { class: "banner info", id: "best-slot" }, h("div", { class: "msg" },
    h("strong", {}, `Best slot: ${top.zone_name}, ${top.label.replace("-", "–")}`),
    h("span", {}, `${lowerBound(top) ? "at least" : "about"} ${fmtMean(top.expected_audience)} ${noun} per week (95% interval ${fmtMean(top.expected_audience_low)}–` +
      `${fmtMean(top.expected_audience_high)})`,
    top.share !== null ? `, ${fmtPct(top.share)} ${noun} there (corrected for the classifier's known errors)` : "", `, seen in ${plural(top.weeks_observed, "week")}.`))));
}

/** Above a ranking where no slot has an estimate: why, and what may give one. */
function noEstimateNote(choice, slots) {
  const noun = nounOf(choice);
  const tryThis = choice.age && slots.every(ageUnknownOnly)
    // No age was sent for them: a longer range brings more of the same.
    ? "Age bands come from camera boxes whose model estimates age, at a site whose mode is “full”; “All ages” " +
      "ranks by the gender split instead."
    : choice.age
    // A gender's bands count in a zone-hour only where each is 0 or at least k: quiet hours withhold them all.
    ? "Try a longer range (more busy hours, where every band of theirs reaches k) or a broader audience: “All ages” " +
      "ranks by the gender split, which is withheld far less often than the age bands."
    : "Try a longer range (more people classified) or a broader audience: “Everyone” needs no classifier.";
  return h("div", { class: "banner info", id: "no-estimate", role: "note" }, h("div", { class: "msg" },
    h("strong", {}, `No slot has an estimate of ${noun}, so none is ranked`),
    h("span", {}, `The slots below are listed without a rank (why: see above, or “Why?” on a row). ${tryThis}`)));
}

function rankingTable(result, choice) {
  const noun = nounOf(choice);
  const withShare = choice.audience !== "all" && !choice.age;
  const maxAudience = Math.max(1, ...result.slots.map((slot) => slot.expected_audience_high));
  const rows = [];
  result.slots.forEach((slot, i) => {
    const explainId = `why-${i}`;
    const button = h("button", { type: "button", class: "explain-btn", "aria-expanded": "false", "aria-controls": explainId }, "Why?");
    const explanation = h("tr", { class: "explain", id: explainId, hidden: true },
      h("td", { colspan: withShare ? 6 : 5 }, slot.explanation));
    button.addEventListener("click", () => {
      const open = explanation.hidden;
      explanation.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      button.textContent = open ? "Hide" : "Why?";
    });
    const estimated = slot.expected_audience !== null;
    const audienceCell = h("div", { class: "ci" },
      ciBar({ value: slot.expected_audience, low: slot.expected_audience_low, high: slot.expected_audience_high, max: maxAudience,
        colour: choice.audience === "male" ? "var(--male)" : choice.audience === "female" ? "var(--female)" : "var(--accent)",
        label: estimated
          ? `${fmtMean(slot.expected_audience)} ${noun} per week, 95% interval ${fmtMean(slot.expected_audience_low)} to ${fmtMean(slot.expected_audience_high)}`
          : `no estimate of ${noun} per week: anywhere from ${fmtMean(slot.expected_audience_low)} to ${fmtMean(slot.expected_audience_high)}` }),
      // An age audience whose bands, splits or hours were withheld is a lower bound: "≥", never a bare 0; a slot
      // without a share has no estimate at all: "—", never a 0 that reads like nobody of the audience passes.
      h("div", {}, estimated
        ? h("div", { class: "v", dataset: { value: slot.expected_audience, lowerBound: String(lowerBound(slot)) } },
          `${lowerBound(slot) ? "≥ " : ""}${fmtMean(slot.expected_audience)}`)
        : h("div", { class: "v faint", title: noEstimate(choice, slot), "aria-label": "no audience estimate", dataset: { value: "none" } }, "—"),
        h("div", { class: "range" }, `${fmtMean(slot.expected_audience_low)}–${fmtMean(slot.expected_audience_high)}`)));
    // A slot without a share (nobody classified, or rates unknown) says so; it is no "0 %" and no "0 %–100 %" range.
    const shareCell = !withShare ? null : slot.share === null
      ? h("td", {}, h("div", { class: "v faint", "aria-label": "no share estimate" }, "—"))
      : h("td", {}, h("div", { class: "ci" },
        ciBar({ value: slot.share, low: slot.share_low, high: slot.share_high, max: 1, reference: 0.5,
          colour: choice.audience === "male" ? "var(--male)" : "var(--female)",
          label: `share ${fmtPct(slot.share)}, 95% interval ${fmtPct(slot.share_low)} to ${fmtPct(slot.share_high)}` }),
        h("div", {}, h("div", { class: "v", dataset: { value: slot.share } }, fmtPct(slot.share)),
          h("div", { class: "range" }, `${fmtPct(slot.share_low)}–${fmtPct(slot.share_high)}`))));
    rows.push(h("tr", { class: i < 3 && estimated ? "top slot" : "slot",
      dataset: { rank: slot.rank, zone: slot.zone_id, how: slot.hour_of_week, estimate: estimated ? null : "none" } },
      estimated ? h("td", { class: "rank" }, String(slot.rank))
        : h("td", { class: "rank unranked", title: UNRANKED_HELP, "aria-label": "no rank: no estimate" }, "–"),
      h("td", {}, h("div", { class: "slot-name" }, slot.zone_name, " ", h("span", { class: "kind" }, kindLabel(slot.zone_kind))),
        h("div", { class: "slot-when" }, slot.label.replace("-", "–"))),
      h("td", {}, audienceCell),
      shareCell,
      h("td", { class: "faint based" }, `${slot.weeks_observed} wk · ${fmtInt(slot.people)} people`,
        withShare ? h("div", {}, `${fmtInt(slot.classified)} classified`) : null,
        slot.bands_withheld ? h("div", { class: "bands-withheld", title: "People of the audience's gender whose age bands were " +
          "withheld (a band of theirs below k): they may be in the audience but are not counted" }, `${fmtInt(slot.bands_withheld)} with age bands withheld`) : null,
        slot.age_unknown ? h("div", { class: "age-unknown", title: "People of the audience's gender whose age is unknown (their " +
          "camera box estimated no age, or could not decide it): they may be in the audience but are not counted" },
        `${fmtInt(slot.age_unknown)} of unknown age`) : null,
        slot.hours_partly_observed ? h("div", { class: "partly-observed-note", title: PARTLY_OBSERVED_HELP,
          dataset: { partlyObserved: slot.hours_partly_observed } }, `${plural(slot.hours_partly_observed, "hour")} partly observed`) : null,
        withShare ? h("div", { class: "raw-share", title: "Classify and count: the share of the classified people read as " +
          `${noun}, before correcting for the classifier's errors` }, `raw ${slot.share_raw === null ? "—" : fmtPct(slot.share_raw)}`) : null),
      h("td", {}, button)), explanation);
  });
  return tableBox(h("table", { id: "ranking-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Slot"),
      h("th", {}, `Expected ${noun} per week`, h("div", { class: "faint th-sub" }, "estimate · 95% interval")),
      withShare ? h("th", {}, `Share of ${noun}`, h("div", { class: "faint th-sub", title: "Corrected for the classifier's known errors, with a 95% interval that " +
        "holds sampling and the uncertainty of its measured error rates" }, "corrected · 95% interval")) : null,
      h("th", {}, "Based on"), h("th", {}, h("span", { class: "sr-only" }, "Explanation")))),
    h("tbody", {}, rows)), "Ranked slots");
}

async function load() {
  const params = pageParams();
  const ranking = document.getElementById("ranking");
  if (firstLoad) {
    // The page's frame at once, with spinners where the answers go, instead of one spinner over a blank page.
    reveal();
    loading(ranking, "Ranking slots…");
    loading(document.getElementById("slotmap"));
  }
  const sites = await api("/sites");
  if (!sites.length) {
    empty(ranking, "No data yet", "Slots appear once camera boxes have reported for a few days.");
    empty(document.getElementById("slotmap"), "No data yet");
    document.getElementById("how").replaceChildren(h("h2", { id: "how-title" }, "How this ranking works"),
      h("p", {}, "Nothing to rank yet: no camera box has reported. Once one has, each slot (a zone at an hour of the " +
        "week) is ranked by how many people of the chosen audience pass it."));
    return;
  }
  // No site asked: the first. A site asked that the server does not have: said so, never another site's slots.
  const askedSite = params.get("site");
  const site = askedSite ? sites.find((one) => one.site_id === askedSite) : sites[0];
  if (!site) {
    lastMap = null;
    document.getElementById("subtitle").textContent = "Pick a site to rank its slots.";
    showMissingSite(askedSite, sites,
      [document.getElementById("headline"), document.getElementById("slotmap").closest("section"), ranking.closest(".grid")],
      (value) => { setParams({ site: value, kind: null }); limit = PAGE_SIZE; runPage(); });
    return;
  }
  clearMissingSite();
  const zones = await api(`/sites/${encodeURIComponent(site.site_id)}/zones`);
  const kinds = [...new Set(zones.map((z) => z.kind))].sort();
  const audience = AUDIENCES.some((a) => a.value === params.get("audience")) ? params.get("audience") : "all";
  const choice = {
    audience,
    hours: hoursWindow(params),
    days: DAYS.some((d) => d.value === params.get("days")) ? params.get("days") : "",
    kind: kinds.includes(params.get("kind")) ? params.get("kind") : "",
    sort: audience !== "all" && params.get("sort") === "share" ? "share" : "audience",
    // Any age the address bar gives goes to the API, which knows what it takes (a band, a list, a range on band
    // edges) and refuses what it does not, an audience under 18 above all: dropped here, "age=18-34" ranked
    // everyone as "All ages" without a word.
    age: (params.get("age") || "").trim(),
  };
  const range = resolveRange(params, site.timezone, "28d", RANGES);
  setParams({ site: site.site_id, audience });
  fill(document.getElementById("crumbs"), h("a", { href: "/dashboard/" }, "Overview"), " / ", site.name);
  document.getElementById("subtitle").textContent =
    `Where and when an ad reaches the most ${nounOf(choice)}. ${fmtDay(range.from)} – ${fmtDay(range.to)}, hours in ${site.timezone} (site time).`;
  renderControls(sites, site, kinds, choice, range, () => runPage());
  if (firstLoad) loading(ranking, "Ranking slots…");
  const query = { start: range.start, end: range.end, audience, hours: choice.hours.text, days: choice.days,
    zone_kind: choice.kind, sort: choice.sort, age: choice.age || null };
  const path = `/sites/${encodeURIComponent(site.site_id)}/insights/ad-placement`;
  let result;
  let everySlot;
  try {
    [result, everySlot] = await Promise.all([api(path, { ...query, limit }), api(path, { ...query, limit: MAP_LIMIT })]);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 422) throw error;
    firstLoad = false;
    refused(error.message, range);
    return;
  }
  firstLoad = false;
  reveal();
  // The panel leaves out the paragraphs that do not apply as null: replaceChildren would print them as "null".
  document.getElementById("how").replaceChildren(...explainPanel(result, choice).filter((node) => node !== null));
  const mapBox = document.getElementById("slotmap");
  document.getElementById("map-title").textContent = `When the ${nounOf(choice)} are there`;
  lastMap = everySlot.slots.length ? [everySlot.slots, nounOf(choice)] : null;
  if (lastMap) slotMap(mapBox, lastMap[0], 10, lastMap[1]);
  else empty(mapBox, "Nothing to map for this choice");
  document.getElementById("map-note").textContent = `Local hours of the week, ${site.timezone}`;
  headline(result, choice);
  const note = document.getElementById("rank-note");
  note.textContent = `${result.slots.length} shown · ${result.suppressed_slots} left out for privacy (k = ${result.k})`;
  note.dataset.suppressed = String(result.suppressed_slots);
  if (!result.slots.length) {
    const hidden = result.suppressed_slots;
    empty(ranking, "No slot to rank",
      hidden === 1 ? `The one matching slot has a count below ${result.k} and is hidden for privacy. Widen the hours, days or range.`
        : hidden ? `All ${fmtInt(hidden)} matching slots have counts below ${result.k} and are hidden for privacy. Widen the hours, days or range.`
        : "No counts match this choice. Widen the hours, days or range, or check that the zones' camera boxes report.");
    return;
  }
  // Slots without an estimate rank last: where the first has none, no slot has one. Said above the table, with what
  // to try, rather than a list of "—".
  const parts = [result.slots[0].expected_audience === null ? noEstimateNote(choice, result.slots) : null,
    rankingTable(result, choice)];
  if (result.slots.length === limit) {
    const more = h("button", { type: "button", class: "btn", id: "show-more", style: "margin-top:.8rem" }, `Show ${PAGE_SIZE} more`);
    more.addEventListener("click", () => { limit += PAGE_SIZE; runPage(); });
    parts.push(more);
  }
  fill(ranking, parts);
}

/** A choice the API refuses (an audience under 18, an age it cannot read): its reason where the ranking goes, and
 * nothing of an earlier answer left beside it; the controls stay to change the choice. */
function refused(message, range) {
  reveal();
  lastMap = null;
  document.getElementById("subtitle").textContent =
    `Where and when an ad reaches the most people of the audience you choose. ${fmtDay(range.from)} – ${fmtDay(range.to)}.`;
  document.getElementById("headline").replaceChildren();
  document.getElementById("rank-note").textContent = "";
  document.getElementById("map-title").textContent = "When the audience is there";
  empty(document.getElementById("slotmap"), "Nothing to map for this choice");
  document.getElementById("how").replaceChildren(h("h2", { id: "how-title" }, "How this ranking works"),
    h("p", {}, "Nothing was ranked: the server refused this choice, for the reason given beside."));
  document.getElementById("ranking").replaceChildren(h("div", { class: "state empty", role: "alert", dataset: { state: "refused" } },
    h("div", { class: "title" }, "No ranking for this choice"), h("div", { id: "refusal" }, message)));
}

const runPage = startPage("ads", load);

let resizeTimer;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (lastMap) slotMap(document.getElementById("slotmap"), lastMap[0], 10, lastMap[1]);
  }, 150);
});
