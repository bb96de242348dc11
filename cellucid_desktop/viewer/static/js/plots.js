// Violin and dot plots of genes by a categorical column, computed from the per-cell
// vectors the viewer already loads (one pass per gene) and laid out as a vector scene
// (drawing.js) for the page, PNG and SVG.
//
// Violins: a kernel density per group (a Gaussian-smoothed 128-bin histogram, Scott's
// bandwidth), each scaled to the same width (scanpy's scale="width"), with the median
// and quartiles. Dots: size = share of the group's cells where the gene is detected
// (> 0), colour = the group's mean expression scaled per gene to 0..1 (scanpy's
// dotplot with standard_scale="var").

import { finiteRange } from "./color-scale.js";
import { colormapAt, colormapLut, categoryColor, rgbToCss } from "./colors.js";
import { Scene, fitText, textWidth } from "./drawing.js";
import { formatNumber } from "./legend.js";

const BINS = 128;
export const MAX_GROUPS = 80;

/** Per-group statistics of one gene: density, quartiles, mean, share detected. */
export function groupStats(values, codes, nGroups, flags = null) {
  let { min, max, n: finite } = finiteRange(values);
  if (!finite) { min = 0; max = 0; }
  const span = max > min ? max - min : 1;
  const toBin = BINS / span;
  const hist = new Float64Array(nGroups * BINS);
  const n = new Float64Array(nGroups);
  const sum = new Float64Array(nGroups);
  const sq = new Float64Array(nGroups);
  const detected = new Float64Array(nGroups);
  for (let i = 0; i < values.length; i++) {
    const g = codes[i];
    const v = values[i];
    if (g >= nGroups || !(v >= min && v <= max) || (flags && !flags[i])) continue;
    n[g]++;
    sum[g] += v;
    sq[g] += v * v;
    if (v > 0) detected[g]++;
    hist[g * BINS + Math.min(BINS - 1, ((v - min) * toBin) | 0)]++;
  }
  const groups = [];
  for (let g = 0; g < nGroups; g++) {
    const counts = hist.subarray(g * BINS, (g + 1) * BINS);
    const mean = n[g] ? sum[g] / n[g] : NaN;
    const sd = n[g] > 1 ? Math.sqrt(Math.max(0, (sq[g] - n[g] * mean * mean) / (n[g] - 1))) : 0;
    groups.push({
      n: n[g], mean, detected: n[g] ? detected[g] / n[g] : 0,
      density: smooth(counts, (1.06 * sd * Math.pow(Math.max(n[g], 1), -0.2)) / (span / BINS)),
      quartiles: [0.25, 0.5, 0.75].map((q) => quantile(counts, n[g], q, min, span)),
    });
  }
  return { min, max, groups };
}

/** Gaussian smoothing of histogram counts with a bandwidth of `h` bins (at least one). */
function smooth(counts, h) {
  const width = Math.max(1, h);
  const reach = Math.ceil(width * 3);
  const kernel = [];
  for (let k = -reach; k <= reach; k++) kernel.push(Math.exp(-0.5 * (k / width) ** 2));
  const out = new Float64Array(counts.length);
  for (let b = 0; b < counts.length; b++) {
    if (!counts[b]) continue;
    for (let k = -reach; k <= reach; k++) {
      const t = b + k;
      if (t >= 0 && t < counts.length) out[t] += counts[b] * kernel[k + reach];
    }
  }
  return out;
}

function quantile(counts, n, q, min, span) {
  if (!n) return NaN;
  const target = q * n;
  let seen = 0;
  for (let b = 0; b < counts.length; b++) {
    if (seen + counts[b] >= target && counts[b] > 0) {
      return min + ((b + (target - seen) / counts[b]) / counts.length) * span;
    }
    seen += counts[b];
  }
  return min + span;
}

/** Groups drawn: those with cells (in the selection, when only the selection is plotted). */
function usedGroups(stats, names) {
  return names.map((name, g) => ({ g, name })).filter(({ g }) => stats.some((s) => s.groups[g].n > 0));
}

const AXIS = 11;

/**
 * A violin per gene (rows) and group (columns).
 * data: { genes: [name], stats: [groupStats], groups: [names], colors: [rgb], title };
 * columns narrow (down to 18 px) to fit `fitWidth`.
 */
export function violinScene(data, ink, paper, fitWidth = 700) {
  const used = usedGroups(data.stats, data.groups);
  const rowH = 84;
  const nameW = Math.min(140, Math.max(...data.genes.map((g) => textWidth(g, 12, "bold"))));
  const left = 8 + nameW + 44;
  const col = Math.max(18, Math.min(48, (fitWidth - left - 16) / Math.max(1, used.length)));
  const labelH = Math.min(140, Math.max(...used.map((u) => textWidth(u.name, AXIS)), 20) * 0.72 + 14);
  const top = data.title ? 34 : 12;
  const width = left + used.length * col + 16;
  const height = top + data.genes.length * rowH + labelH + 8;
  const scene = new Scene(width, height, paper);
  if (data.title) scene.text(12, 12, data.title, { size: 15, weight: "bold", fill: ink, baseline: "hanging" });
  data.genes.forEach((gene, r) => {
    const s = data.stats[r];
    const y0 = top + r * rowH + 6;
    const h = rowH - 14;
    const span = s.max > s.min ? s.max - s.min : 1;
    const yOf = (v) => y0 + h - ((v - s.min) / span) * h;
    scene.text(8, y0 + h / 2, fitText(gene, 12, nameW, "bold"), { size: 12, weight: "bold", fill: ink, baseline: "middle" });
    scene.line(left - 4, y0, left - 4, y0 + h, ink, 1);
    for (const [v, base] of [[s.max, "hanging"], [s.min, "bottom"]]) {
      scene.text(left - 7, yOf(v), formatNumber(v), { size: 9, fill: ink, anchor: "end", baseline: base });
    }
    used.forEach(({ g }, k) => {
      const st = s.groups[g];
      if (!st.n) return;
      const cx = left + k * col + col / 2;
      const peak = Math.max(...st.density) || 1;
      const half = (col / 2 - 2) / peak;
      const right = [];
      const leftSide = [];
      st.density.forEach((d, b) => {
        const y = y0 + h - ((b + 0.5) / BINS) * h;
        right.push([cx + d * half, y]);
        leftSide.push([cx - d * half, y]);
      });
      scene.path([...right, ...leftSide.reverse()], { fill: rgbToCss(data.colors[g]), stroke: ink, width: 0.4 });
      const [q1, med, q3] = st.quartiles;
      if (Number.isFinite(q1)) scene.line(cx, yOf(q1), cx, yOf(q3), ink, 2);
      if (Number.isFinite(med)) scene.circle(cx, yOf(med), 1.8, paper, { stroke: ink, strokeWidth: 0.8 });
    });
  });
  const baseY = top + data.genes.length * rowH;
  used.forEach(({ name }, k) => {
    const cx = left + k * col + col / 2;
    scene.text(cx, baseY + 4, fitText(name, AXIS, 180), { size: AXIS, fill: ink, anchor: "end", baseline: "hanging", rotate: -45 });
  });
  return scene;
}

/** A dot per group (rows) and gene (columns), with size and colour legends. */
export function dotScene(data, ink, paper) {
  const used = usedGroups(data.stats, data.groups);
  const cell = 24;
  const maxR = 10;
  const left = Math.min(220, Math.max(60, ...used.map((u) => textWidth(u.name, AXIS) + 16)));
  const headH = Math.min(120, Math.max(...data.genes.map((g) => textWidth(g, AXIS)), 20) * 0.72 + 16);
  const top = (data.title ? 34 : 12) + headH;
  const legendX = left + data.genes.length * cell + 24;
  const width = legendX + 150;
  const height = Math.max(top + used.length * cell + 12, top + 200);
  const scene = new Scene(width, height, paper);
  if (data.title) scene.text(12, 12, data.title, { size: 15, weight: "bold", fill: ink, baseline: "hanging" });
  const lut = colormapLut("reds");
  data.genes.forEach((gene, c) => {
    const cx = left + c * cell + cell / 2;
    scene.text(cx, top - 6, fitText(gene, AXIS, 150), { size: AXIS, fill: ink, anchor: "start", rotate: -45 });
    const s = data.stats[c];
    const means = used.map(({ g }) => s.groups[g].mean).filter(Number.isFinite);
    const lo = Math.min(...means);
    const hi = Math.max(...means);
    used.forEach(({ g }, r) => {
      const st = s.groups[g];
      if (!st.n) return;
      const t = hi > lo ? (st.mean - lo) / (hi - lo) : 0.5;
      const radius = Math.sqrt(st.detected) * maxR;
      if (radius > 0.3) scene.circle(cx, top + r * cell + cell / 2, radius, rgbToCss(colormapAt(lut, t)), { stroke: ink, strokeWidth: 0.3 });
    });
  });
  used.forEach(({ name }, r) => {
    scene.text(left - 8, top + r * cell + cell / 2, fitText(name, AXIS, left - 12), { size: AXIS, fill: ink, anchor: "end", baseline: "middle" });
  });
  // legends: detected share (dot size) and scaled mean (colour)
  scene.text(legendX, top, "Detected in group", { size: 11, weight: "bold", fill: ink, baseline: "hanging" });
  [0.25, 0.5, 0.75, 1].forEach((f, k) => {
    const y = top + 26 + k * 22;
    scene.circle(legendX + maxR, y, Math.sqrt(f) * maxR, "#888888");
    scene.text(legendX + 2 * maxR + 8, y, `${Math.round(f * 100)}%`, { size: 10, fill: ink, baseline: "middle" });
  });
  const barY = top + 26 + 4 * 22 + 6;
  scene.text(legendX, barY, "Mean (scaled per gene)", { size: 11, weight: "bold", fill: ink, baseline: "hanging" });
  const stops = [];
  for (let k = 0; k <= 32; k++) stops.push([k / 32, rgbToCss(colormapAt(lut, k / 32))]);
  scene.gradient(legendX, barY + 18, 110, 10, stops);
  scene.text(legendX, barY + 32, "0", { size: 10, fill: ink, baseline: "hanging" });
  scene.text(legendX + 110, barY + 32, "1", { size: 10, fill: ink, anchor: "end", baseline: "hanging" });
  return scene;
}

/** Category colours as the legend assigns them. */
export const groupColors = (n) => Array.from({ length: n }, (_, i) => categoryColor(i));
