// Continuous colour scales: which values the colour map spans (the data's range, a
// percentile clip, or limits the user typed), linear or log, and where a value falls on
// it. The shader and the colour bar's ticks use the same numbers (scaleUniforms,
// valueAt), so the bar always shows what the plot draws.

/** Percentile clips offered in the legend, as [low, high] percent. */
export const CLIPS = { "1-99": [1, 99], "2-98": [2, 98], "5-95": [5, 95] };

const COARSE = 4096;

/** { min, max, n } over the finite values (NaN = missing; infinities ignored). */
export function finiteRange(values) {
  let min = Infinity;
  let max = -Infinity;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === v && v !== Infinity && v !== -Infinity) {
      if (v < min) min = v;
      if (v > max) max = v;
      n++;
    }
  }
  return { min, max, n };
}
const FINE = 4096;

/**
 * Values at the percentiles `ps` (0..100) of the finite values: a coarse histogram, then
 * a fine one inside each wanted bin, so a million values cost three passes and no sort.
 * Each answer is a value present in the data (the smallest of its fine bin); the error is
 * at most the range / 16.7M, far below what a colour map can show.
 */
function percentiles(values, ps) {
  const { min, max, n } = finiteRange(values);
  if (!n) return ps.map(() => NaN);
  if (max === min) return ps.map(() => min);
  const scale = COARSE / (max - min);
  const coarse = new Float64Array(COARSE);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === v && v !== Infinity && v !== -Infinity) coarse[Math.min(COARSE - 1, Math.floor((v - min) * scale))]++;
  }
  // for each percentile: its coarse bin and the rank wanted inside it
  const wanted = ps.map((p) => {
    const rank = Math.min(n - 1, Math.max(0, Math.floor((Math.max(0, Math.min(100, p)) / 100) * (n - 1))));
    let seen = 0;
    let bin = 0;
    while (seen + coarse[bin] <= rank) seen += coarse[bin++];
    return { bin, rank: rank - seen };
  });
  // one fine histogram per wanted coarse bin; slot[coarse bin] = its index, or -1
  const bins = [...new Set(wanted.map((w) => w.bin))];
  const slot = new Int32Array(COARSE).fill(-1);
  bins.forEach((b, k) => { slot[b] = k; });
  const counts = new Float64Array(bins.length * FINE);
  const mins = new Float64Array(bins.length * FINE).fill(Infinity);
  const width = (max - min) / COARSE;
  const fineScale = FINE / width;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v === v && v !== Infinity && v !== -Infinity)) continue;
    const b = Math.min(COARSE - 1, Math.floor((v - min) * scale));
    const k = slot[b];
    if (k < 0) continue;
    const at = k * FINE + Math.min(FINE - 1, Math.max(0, Math.floor((v - min - b * width) * fineScale)));
    counts[at]++;
    if (v < mins[at]) mins[at] = v;
  }
  return wanted.map(({ bin, rank }) => {
    const base = slot[bin] * FINE;
    let seen = 0;
    for (let k = 0; k < FINE; k++) {
      seen += counts[base + k];
      if (seen > rank) return mins[base + k];
    }
    return max;
  });
}

/** Whether a log scale can show these values (it needs no negative value). */
export const logAllowed = (min) => Number.isFinite(min) && min >= 0;

/**
 * The scale of a continuous colouring: settings { vmin, vmax, clip, log } over data
 * { min, max, values }. Returns { lo, hi, log, clipped: [below, above] }.
 */
export function resolveScale(data, settings) {
  const min = Number.isFinite(data.min) ? data.min : 0;
  const max = Number.isFinite(data.max) ? data.max : 1;
  let lo = min;
  let hi = max;
  const clip = settings.clip ? CLIPS[settings.clip] : null;
  if (clip) [lo, hi] = percentiles(data.values, clip);
  if (Number.isFinite(settings.vmin)) lo = settings.vmin;
  if (Number.isFinite(settings.vmax)) hi = settings.vmax;
  if (!Number.isFinite(lo)) lo = min;
  if (!Number.isFinite(hi)) hi = max;
  if (hi < lo) [lo, hi] = [hi, lo];
  const log = Boolean(settings.log) && logAllowed(lo);
  return { lo, hi, log, clipped: [lo > min, hi < max] };
}

const forward = (v, log) => (log ? Math.log1p(Math.max(0, v)) : v);

/** The value at position t (0..1) of the colour map, as the shader maps it: colour-bar ticks. */
export function valueAt(scale, t) {
  const a = forward(scale.lo, scale.log);
  const b = forward(scale.hi, scale.log);
  const x = a + (b - a) * t;
  return scale.log ? Math.expm1(x) : x;
}

/** The range uniform and log flag the shader needs: its range is in transformed units. */
export const scaleUniforms = (scale) => ({
  range: [forward(scale.lo, scale.log), forward(scale.hi, scale.log)],
  log: scale.log,
});
