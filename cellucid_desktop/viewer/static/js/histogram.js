// A histogram of one numeric column or gene, drawn in a small canvas, with a brush: drag
// across it to pick a value range (the "select by value" of the sidebar). Counts are
// one pass over the values; the bars use a log height so rare values stay visible next
// to the zeros of a gene.

import { finiteRange } from "./color-scale.js";

const BINS = 60;

/** { min, max, counts, selected } over the finite values; `flags` (optional) marks a selection. */
function histogram(values, flags = null, bins = BINS) {
  const { min, max, n } = finiteRange(values);
  const counts = new Uint32Array(bins);
  const selected = flags ? new Uint32Array(bins) : null;
  if (!n) return { min: NaN, max: NaN, counts, selected };
  const scale = max > min ? bins / (max - min) : 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= min && v <= max)) continue;  // NaN, infinities
    const b = Math.min(bins - 1, Math.floor((v - min) * scale));
    counts[b]++;
    if (selected && flags[i]) selected[b]++;
  }
  return { min, max, counts, selected };
}

function cssVar(element, name, fallback) {
  return getComputedStyle(element).getPropertyValue(name).trim() || fallback;
}

export class HistogramBrush {
  /** onBrush(lo, hi) when a drag ends; labels: element for the "lo – hi" text. */
  constructor(canvas, onBrush) {
    this.canvas = canvas;
    this.onBrush = onBrush;
    this.hist = null;
    this.range = null;
    this.drag = null;
    canvas.addEventListener("pointerdown", (e) => {
      if (!this.hist || e.button !== 0) return;
      canvas.setPointerCapture(e.pointerId);
      this.drag = { x0: this.valueAtEvent(e), mods: { shiftKey: e.shiftKey, altKey: e.altKey } };
      this.range = [this.drag.x0, this.drag.x0];
      this.draw();
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!this.drag) return;
      const v = this.valueAtEvent(e);
      this.range = [Math.min(this.drag.x0, v), Math.max(this.drag.x0, v)];
      this.draw();
    });
    const end = () => {
      if (!this.drag) return;
      const mods = this.drag.mods;
      this.drag = null;
      if (this.range && this.range[1] > this.range[0]) this.onBrush(this.range[0], this.range[1], mods);
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", () => { this.drag = null; });
  }

  valueAtEvent(e) {
    const r = this.canvas.getBoundingClientRect();
    const t = Math.max(0, Math.min(1, (e.clientX - r.left) / Math.max(1, r.width)));
    return this.hist.min + t * (this.hist.max - this.hist.min);
  }

  show(values, flags) {
    this.hist = histogram(values, flags);
    if (!(this.hist.max >= this.hist.min)) this.hist = null;
    this.draw();
  }

  /** Mark [lo, hi] (clipped to the data range) as the brushed range; null clears it. */
  setRange(range) {
    this.range = range;
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr));
    const h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    if (!this.hist) return;
    const { counts, selected, min, max } = this.hist;
    const top = Math.log1p(Math.max(...counts));
    const barW = w / counts.length;
    const height = (n) => (top > 0 ? (Math.log1p(n) / top) * (h - 2) : 0);
    ctx.fillStyle = cssVar(c, "--muted", "#888");
    counts.forEach((n, b) => { const y = height(n); ctx.fillRect(b * barW, h - y, Math.max(1, barW - 1), y); });
    if (selected) {
      ctx.fillStyle = cssVar(c, "--accent", "#3b6fd8");
      selected.forEach((n, b) => { const y = height(n); ctx.fillRect(b * barW, h - y, Math.max(1, barW - 1), y); });
    }
    if (this.range && max > min) {
      const x0 = ((Math.max(min, this.range[0]) - min) / (max - min)) * w;
      const x1 = ((Math.min(max, this.range[1]) - min) / (max - min)) * w;
      ctx.fillStyle = cssVar(c, "--brush", "rgba(59, 111, 216, 0.25)");
      ctx.fillRect(x0, 0, Math.max(1, x1 - x0), h);
    }
  }
}
