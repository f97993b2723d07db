// Scales and ticks shared by the charts.

export function linear(domain0, domain1, range0, range1) {
  const span = domain1 - domain0 || 1;
  const f = (v) => range0 + ((v - domain0) / span) * (range1 - range0);
  f.invert = (px) => domain0 + ((px - range0) / (range1 - range0)) * span;
  return f;
}

/** Round tick values covering [0, max]: whole-number steps of 1, 2 or 5 × 10^n (counts are whole). */
export function niceTicks(max, count = 5) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw));
  const ticks = [];
  for (let v = 0; v < max + step; v += step) ticks.push(v);
  return ticks;
}

export function compact(value) {
  if (value >= 1e6) return `${(value / 1e6).toFixed(value >= 1e7 ? 0 : 1)}M`;
  if (value >= 1e4) return `${Math.round(value / 1e3)}k`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return String(value);
}

/** Sequential colour ramp (light teal to deep teal), t in [0, 1]. */
const RAMP = [[236, 246, 246], [178, 224, 222], [102, 189, 188], [28, 140, 148], [9, 83, 96], [5, 48, 62]];
export function rampColour(t) {
  const x = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const c = RAMP[i].map((v, j) => Math.round(v + (RAMP[i + 1][j] - v) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}
export const RAMP_CSS = `linear-gradient(90deg, ${[0, 0.2, 0.4, 0.6, 0.8, 1].map(rampColour).join(", ")})`;
