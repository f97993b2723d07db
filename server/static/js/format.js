// Numbers, suppressed counts and dates in a site's own time zone (the API reports it with every answer).

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 0 });

export const fmtInt = (value) => integer.format(value);
export const fmtMean = (value) => (value >= 100 ? integer.format(value) : oneDecimal.format(value));
export const fmtPct = (value) => percent.format(value);

/** The word for a count: `pluralNoun(1, "zone")` is "zone", `pluralNoun(3, "zone")` "zones"; an irregular
 * plural as the third argument (`pluralNoun(n, "slot was", "slots were")`). */
export const pluralNoun = (count, singular, many = `${singular}s`) => (count === 1 ? singular : many);

/** A count with its word: `plural(1, "zone")` is "1 zone", `plural(1204, "zone")` "1,204 zones". */
export const plural = (count, singular, many) => `${fmtInt(count)} ${pluralNoun(count, singular, many)}`;

export const SUPPRESSED_HELP = (k) =>
  `Withheld for privacy: every zone-hour behind it had fewer than ${k} people, or a gender split with a ` +
  `part below ${k}. It is not zero.`;

export const LOWER_BOUND_HELP = (k) =>
  `At least this many: zone-hours with fewer than ${k} people are withheld for privacy and not counted here.`;

/** An element showing a count; a withheld count becomes a hatched "<k" chip, never 0, and a sum that leaves
 * withheld zone-hours out reads "≥ n". */
/** Whether a figure's people are a lower bound: cells withheld (or unobserved) left out of it, or hours a camera
 * watched only part of in it (hours_partly_observed, which the API keeps apart from people_lower_bound). */
export const atLeast = (counts) => Boolean(counts.people_lower_bound) || (counts.hours_partly_observed ?? 0) > 0;

export function countNode(value, k, { suppressed = value === null, lowerBound = false } = {}) {
  if (value === null || value === undefined) {
    const chip = document.createElement("span");
    chip.className = "supp";
    chip.dataset.suppressed = "true";
    chip.textContent = `<${k}`;
    chip.title = SUPPRESSED_HELP(k);
    chip.setAttribute("aria-label", `suppressed, fewer than ${k} or hidden`);
    return chip;
  }
  const span = document.createElement("span");
  span.className = "num";
  span.dataset.value = String(value);
  if (suppressed) span.dataset.suppressed = "false";
  span.textContent = lowerBound ? `≥ ${fmtInt(value)}` : fmtInt(value);
  if (lowerBound) {
    span.dataset.lowerBound = "true";
    span.title = LOWER_BOUND_HELP(k);
  }
  return span;
}

export const UNCLASSIFIED_HELP = "Nobody here was classified as female or male (a counts-only site, or every " +
  "person undecided): there is no gender figure here, and none is hidden.";

/** Whether an answer's people were counted but none was classified: female and male are null while its split is
 * shown (``unknown`` is a number). A withheld split has ``unknown`` null too. */
export const unclassified = (counts) => counts.female === null && counts.unknown !== null && counts.unknown !== undefined;

/** Whether an answer's people are released but their gender split is withheld whole (a part of it was below k):
 * female, male and unknown are all null beside a number of people. Its parts are not each below k (34 people are not
 * three counts below 5), so they read "withheld", never "<k". */
export const splitWithheld = (counts) => typeof counts.people === "number" && counts.people > 0 &&
  counts.female === null && counts.male === null && (counts.unknown === null || counts.unknown === undefined);

export const SPLIT_WITHHELD_HELP = (k) =>
  `Withheld for privacy: in the hours counted here, a part of this gender split was below ${k}, so no part of it is ` +
  `shown. It is not zero, ` +
  `and not necessarily below ${k}.`;

/** A hatched "withheld" chip: a part of a withheld gender split beside a released count of people. */
export function withheldNode(k) {
  const chip = document.createElement("span");
  chip.className = "supp";
  chip.dataset.suppressed = "true";
  chip.dataset.splitWithheld = "true";
  chip.textContent = "withheld";
  chip.title = SPLIT_WITHHELD_HELP(k);
  chip.setAttribute("aria-label", "withheld for privacy");
  return chip;
}

/** A gender count (``key`` "female", "male" or "unknown") of an API answer: "–" where nobody was classified (female
 * and male), a "withheld" chip where the split of released people is withheld, a "<k" chip where the count itself
 * is, else the number. */
export function genderCountNode(counts, key, k) {
  if (splitWithheld(counts)) return withheldNode(k);
  if (key === "unknown" || !unclassified(counts)) return countNode(counts[key], k);
  const span = document.createElement("span");
  span.className = "num none";
  span.dataset.unclassified = "true";
  span.textContent = "–";
  span.title = UNCLASSIFIED_HELP;
  span.setAttribute("aria-label", "not classified");
  return span;
}

export const OCCUPANCY_UNKNOWN_HELP = (occupancy) => occupancy.unobserved_cells > 0
  ? `Not known: ${plural(occupancy.unobserved_cells, "entrance hour")} since the closing time ` +
    `${pluralNoun(occupancy.unobserved_cells, "was", "were")} not observed (camera or agent down), so people in ` +
    "and out then are missing. It is not zero."
  : "Not known: every entrance count since the closing time was withheld for privacy (fewer than k people). " +
    "It is not zero.";

/** Whether occupancy's running sum left people out: entrance hours withheld, or watched only in part by a camera
 * (either may hide people in or out, so the figure is no bound either way). */
const occupancyUncertain = (occupancy) => occupancy.withheld_cells > 0 || (occupancy.hours_partly_observed ?? 0) > 0;

export const OCCUPANCY_UNCERTAIN_HELP = (occupancy) => {
  const reasons = [
    occupancy.withheld_cells > 0 ? `${plural(occupancy.withheld_cells, "entrance hour")} withheld for privacy` : "",
    (occupancy.hours_partly_observed ?? 0) > 0
      ? `${plural(occupancy.hours_partly_observed, "entrance hour")} a camera watched only in part (off for part of the hour)` : "",
  ].filter(Boolean);
  return `In − out of the released counts, with ${reasons.join(" and ")} since the closing time: people in or out ` +
    "then are missing, so the true figure may be higher or lower.";
};

/** Occupancy of a visitors answer ({people, withheld_cells, unobserved_cells, hours_partly_observed}): "–" where
 * the API says it is unknown (people null), never a 0; "≈ n" where withheld or partly observed entrance hours make
 * it uncertain. */
export function occupancyNode(occupancy) {
  const span = document.createElement("span");
  if (occupancy.people === null) {
    span.className = "num none";
    span.dataset.unknown = "true";
    span.textContent = "–";
    span.title = OCCUPANCY_UNKNOWN_HELP(occupancy);
    span.setAttribute("aria-label", "not known");
    return span;
  }
  span.className = "num";
  span.dataset.value = String(occupancy.people);
  span.textContent = occupancyUncertain(occupancy) ? `≈ ${fmtInt(occupancy.people)}` : fmtInt(occupancy.people);
  if (occupancyUncertain(occupancy)) span.title = OCCUPANCY_UNCERTAIN_HELP(occupancy);
  return span;
}

/** A mean (``fmtMean``) that leaves withheld zone-hours out reads "≥ n", as countNode's sums do. */
export function meanNode(value, k, lowerBound = false) {
  if (value === null || value === undefined) return countNode(null, k);
  const span = document.createElement("span");
  span.className = "num";
  span.textContent = lowerBound ? `≥ ${fmtMean(value)}` : fmtMean(value);
  if (lowerBound) {
    span.dataset.lowerBound = "true";
    span.title = LOWER_BOUND_HELP(k);
  }
  return span;
}

// ---- corrected shares (issue #14) ------------------------------------------------------------------------

export const CORRECTED_HELP = "Corrected for the classifier's known errors: estimated from its female, male and " +
  "undecided counts with the error rates measured for the model that made them; the 95 % interval holds both " +
  "sampling and the uncertainty of those rates.";

export const MISSING_HELP = {
  no_classified_people: "no classified people here (or their split was withheld for privacy)",
  unknown_rates: "a classifier model without measured error rates decided some of these people",
  decisions_do_not_fit: "the classifier's decisions here do not fit its measured error rates (a camera unlike its test clips)",
};

/** The corrected share of women (``which`` "female") or men ("male") of an API answer with
 * female_share_corrected, as "52% (95% interval 47%–57%)"; the raw classify-and-count share in its tooltip
 * and a data-raw attribute. Null: "—" with the reason as its tooltip. ``noun`` names what the counts are: "people"
 * for one zone, "passes" for a sum over several (zones overlap: one person in three zones is three passes). */
export function correctedShareNode(counts, which = "female", noun = "people") {
  const span = document.createElement("span");
  span.className = "corrected-share";
  const raw = which === "female" ? counts.female_share : counts.male_share;
  const rawText = raw === null || raw === undefined ? "none classified" : fmtPct(raw);
  span.dataset.raw = raw === null || raw === undefined ? "" : String(raw);
  if (counts.female_share_corrected === null || counts.female_share_corrected === undefined) {
    span.textContent = "—";
    span.classList.add("faint");
    span.dataset.missing = counts.female_share_corrected_missing || "";
    span.title = `No corrected share: ${MISSING_HELP[counts.female_share_corrected_missing] || "nothing to correct"}. ` +
      `Raw share of the classified: ${rawText}.`;
    return span;
  }
  const female = which === "female";
  const value = female ? counts.female_share_corrected : 1 - counts.female_share_corrected;
  const low = female ? counts.female_share_low : 1 - counts.female_share_high;
  const high = female ? counts.female_share_high : 1 - counts.female_share_low;
  span.dataset.value = String(value);
  span.dataset.low = String(low);
  span.dataset.high = String(high);
  const interval = document.createElement("span");
  interval.className = "interval";
  interval.textContent = ` (95% interval ${fmtPct(low)}–${fmtPct(high)})`;
  span.append(fmtPct(value), interval);
  const withheld = counts.unsplit > 0
    ? ` The split of ${fmtInt(counts.unsplit)} of them is withheld for privacy (a part was too small to show in ` +
      "their hour); they count through how likely such a split is."
    : "";
  // Over several zones one person makes several passes: the server widened the interval by how many (API.md).
  const perPerson = counts.passes_per_person > 1
    ? ` One person passes ${fmtMean(counts.passes_per_person)} of these zones on average (their cameras' distinct ` +
      "visitors), so the interval is widened to count people, not passes."
    : "";
  span.dataset.passesPerPerson = counts.passes_per_person > 1 ? String(counts.passes_per_person) : "";
  span.title = `${CORRECTED_HELP} Over ${fmtInt(counts.people_corrected)} ${noun}.${withheld}${perPerson} ` +
    `Raw classify-and-count: ${rawText} of the ${noun} decided female or male.`;
  // People left out: hours counted without gender, or decided by a bundle whose rates are unknown or whose hours all
  // had their split withheld, and late people of an hour whose split readers saw withheld before they came. Withheld
  // splits elsewhere are in the estimate (through how likely such a split is).
  if (typeof counts.people === "number" && counts.people_corrected < counts.people) {
    const coverage = document.createElement("span");
    coverage.className = "coverage";
    coverage.dataset.peopleCorrected = String(counts.people_corrected);
    coverage.textContent = ` · from ${fmtInt(counts.people_corrected)} of ${fmtInt(counts.people)} ${noun}`;
    coverage.title = `${fmtInt(counts.people - counts.people_corrected)} ${noun} are not in this share: their hours ` +
      "were counted without gender, or decided by a model whose error rates are unknown or whose hours all had " +
      "their split withheld for privacy, or they arrived late for an hour whose split was already withheld.";
    span.append(coverage);
  }
  return span;
}

// ---- time zones ----------------------------------------------------------------------------------------

const formatters = new Map();
function formatter(tz) {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
      minute: "2-digit", second: "2-digit", weekday: "short",
    });
    formatters.set(tz, f);
  }
  return f;
}

/** Wall-clock parts of an instant (ms) in a time zone. */
export function zonedParts(ms, tz) {
  const out = {};
  for (const part of formatter(tz).formatToParts(new Date(ms))) {
    if (part.type !== "literal") out[part.type] = part.type === "weekday" ? part.value : Number(part.value);
  }
  return out;
}

function offsetMs(ms, tz) {
  const p = zonedParts(ms, tz);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** UTC instant (ms) of a wall-clock time in a time zone (DST-aware). */
export function zonedToUtc(year, month, day, hour, tz) {
  const guess = Date.UTC(year, month - 1, day, hour);
  const first = guess - offsetMs(guess, tz);
  const second = guess - offsetMs(first, tz);
  return second;
}

/** "YYYY-MM-DD" of an instant in a time zone. */
export function localDate(ms, tz) {
  const p = zonedParts(ms, tz);
  return `${p.year}-${String(p.month).padStart(2, "0")}-${String(p.day).padStart(2, "0")}`;
}

/** UTC instant (ms) of local midnight starting a "YYYY-MM-DD" day in a time zone. */
export function midnightUtc(isoDate, tz) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return zonedToUtc(y, m, d, 0, tz);
}

/** "YYYY-MM-DD" shifted by whole days (calendar arithmetic, no time zone involved). */
export function addDays(isoDate, days) {
  const [y, m, d] = isoDate.split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + days));
  return t.toISOString().slice(0, 10);
}

export function isoUtc(ms) {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

const shortDate = new Map();
/** "Mon 16 Nov, 14:05" in the site's time zone. */
export function fmtDateTime(isoOrMs, tz) {
  const key = `dt|${tz}`;
  if (!shortDate.has(key)) {
    shortDate.set(key, new Intl.DateTimeFormat(undefined, {
      timeZone: tz, weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }));
  }
  return shortDate.get(key).format(new Date(isoOrMs));
}

export function fmtDay(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { timeZone: "UTC", day: "numeric", month: "short", year: "numeric" })
    .format(new Date(Date.UTC(y, m - 1, d)));
}

export function fmtAgo(seconds) {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${plural(Math.round(seconds / 86400), "day")} ago`;
}

export const KIND_LABELS = {
  entrance: "Entrance", corridor: "Corridor", food_court: "Food court", ad_slot: "Ad slot", shop_front: "Shop front",
  exit: "Exit", other: "Other", unknown: "Unclassified",
};
/** A zone kind in words; none (null) reads "Unclassified", never "null". */
export const kindLabel = (kind) => KIND_LABELS[kind] || kind || KIND_LABELS.unknown;
