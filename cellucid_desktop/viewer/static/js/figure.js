// Figures that stand alone: the plot as drawn, a title, the legend (category swatches or
// the colour bar with its scale) and optional category labels, laid out once as a vector
// scene (drawing.js) and written as PNG (with its resolution recorded, for print) or SVG
// (vector text and legend around the cells, which stay an embedded image: a million
// vector circles would make a file no editor opens).

import { colormapAt, rgbToCss, MISSING_RGB } from "./colors.js";
import { valueAt } from "./color-scale.js";
import { Scene, fitText, textWidth } from "./drawing.js";
import { formatNumber } from "./legend.js";
import { visibleLabels } from "./labels.js";
import { canvasPng } from "./png.js";

export const CSS_DPI = 96;

const MARGIN = 16;
const ROW = 18;
const SWATCH = 10;
const LEGEND_MAX = 260;
const TEXT = 12;

/** The page's current value of a CSS colour variable (figures use the theme's colours). */
export function themeColor(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** A canvas holding the plot at `scale` output pixels per CSS pixel. */
async function plotImage(renderer, scale) {
  const dpr = window.devicePixelRatio || 1;
  const image = await renderer.renderImage(scale / dpr);
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext("2d").putImageData(new ImageData(image.pixels, image.width, image.height), 0, 0);
  return canvas;
}

/** Legend rows for a categorical colouring: the shown categories (and missing). */
function categoricalRows(c, missingShown) {
  const rows = [];
  c.categories.forEach((name, i) => {
    if (c.shown[i] && (!c.counts || c.counts[i] > 0)) rows.push({ color: rgbToCss(c.colors[i]), name: String(name) });
  });
  if (c.nMissing > 0 && missingShown) rows.push({ color: rgbToCss(MISSING_RGB), name: "missing" });
  return rows;
}

function legendCategorical(scene, x, y, height, c, missingShown, ink) {
  const rows = categoricalRows(c, missingShown);
  scene.text(x, y, fitText(c.key, TEXT + 1, LEGEND_MAX, "bold"), { size: TEXT + 1, weight: "bold", fill: ink, baseline: "hanging" });
  const perColumn = Math.max(1, Math.floor((height - ROW * 1.5) / ROW));
  const columns = Math.ceil(rows.length / perColumn);
  const widest = Math.min(LEGEND_MAX, Math.max(40, ...rows.map((r) => textWidth(r.name, TEXT))));
  const colWidth = SWATCH + 6 + widest + 14;
  rows.forEach((r, k) => {
    const cx = x + Math.floor(k / perColumn) * colWidth;
    const cy = y + ROW * 1.5 + (k % perColumn) * ROW;
    scene.circle(cx + SWATCH / 2, cy + SWATCH / 2, SWATCH / 2, r.color);
    scene.text(cx + SWATCH + 6, cy + SWATCH / 2, fitText(r.name, TEXT, widest), { size: TEXT, fill: ink, baseline: "middle" });
  });
  return Math.max(textWidth(c.key, TEXT + 1, "bold"), columns * colWidth);
}

function legendContinuous(scene, x, y, height, legend, ink) {
  const { title, scale, lut, zero, missing } = legend;
  scene.text(x, y, fitText(title, TEXT + 1, LEGEND_MAX, "bold"), { size: TEXT + 1, weight: "bold", fill: ink, baseline: "hanging" });
  const barTop = y + ROW * 1.5;
  const barH = Math.max(60, Math.min(220, height - ROW * 4));
  const stops = [];
  for (let k = 0; k <= 64; k++) stops.push([k / 64, rgbToCss(colormapAt(lut, k / 64))]);
  scene.gradient(x, barTop, 14, barH, stops, true);
  let widest = 0;
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    const ty = barTop + barH * (1 - t);
    let label = formatNumber(valueAt(scale, t));
    if (t === 0 && scale.clipped[0]) label = `≤ ${label}`;
    if (t === 1 && scale.clipped[1]) label = `≥ ${label}`;
    scene.line(x + 14, ty, x + 18, ty, ink, 1);
    scene.text(x + 21, ty, label, { size: TEXT - 1, fill: ink, baseline: "middle" });
    widest = Math.max(widest, textWidth(label, TEXT - 1));
  }
  let rowY = barTop + barH + 10;
  for (const [color, text] of [zero && [zero, "0 (not detected)"], missing && [missing, "missing"]].filter(Boolean)) {
    scene.circle(x + SWATCH / 2, rowY + SWATCH / 2, SWATCH / 2, color);
    scene.text(x + SWATCH + 6, rowY + SWATCH / 2, text, { size: TEXT, fill: ink, baseline: "middle" });
    widest = Math.max(widest, textWidth(text, TEXT) - 8);
    rowY += ROW;
  }
  return Math.max(textWidth(title, TEXT + 1, "bold"), 21 + widest);
}

/**
 * The figure as a scene in CSS pixels, and the plot image it embeds.
 * options: { title, legend, labels (the overlay's {names, anchors, shown} or null), scale }
 */
async function buildFigure(view, options) {
  const { renderer } = view;
  const ink = themeColor("--text", "#1f2430");
  const paper = themeColor("--plot-bg", "#ffffff");
  const W = renderer.canvas.clientWidth;
  const H = renderer.canvas.clientHeight;
  const titleH = options.title ? 30 : 0;
  // measure the legend on a throw-away scene, then lay out for real
  const legendWidth = options.legend && view.legend ? drawLegend(new Scene(0, 0), 0, 0, H, view, ink) : 0;
  const width = MARGIN + W + (legendWidth ? MARGIN + Math.ceil(legendWidth) : 0) + MARGIN;
  const height = MARGIN + titleH + H + MARGIN;
  const scene = new Scene(width, height, paper);
  if (options.title) scene.text(MARGIN, MARGIN, options.title, { size: 17, weight: "bold", fill: ink, baseline: "hanging" });
  const top = MARGIN + titleH;
  const image = await plotImage(renderer, options.scale);
  scene.image(MARGIN, top, W, H, image);
  for (const { text, x, y } of visibleLabels(renderer, options.labels)) {
    scene.text(MARGIN + x, top + y, text, { size: TEXT + 1, weight: "bold", fill: ink, anchor: "middle", baseline: "middle", halo: paper });
  }
  if (legendWidth) drawLegend(scene, MARGIN + W + MARGIN, top, H, view, ink);
  return scene;
}

function drawLegend(scene, x, y, height, view, ink) {
  const l = view.legend;
  return l.type === "categorical"
    ? legendCategorical(scene, x, y, height, l.coloring, l.missingShown, ink)
    : legendContinuous(scene, x, y, height, l, ink);
}

/** The figure as a file: { blob, width, height } for format "png" or "svg" at `scale`. */
export async function renderFigure(view, options, format) {
  const scene = await buildFigure(view, options);
  if (format === "svg") {
    return { blob: new Blob([await scene.toSvg()], { type: "image/svg+xml" }), width: scene.width, height: scene.height };
  }
  const canvas = scene.toCanvas(options.scale);
  return { blob: await canvasPng(canvas, CSS_DPI * options.scale), width: canvas.width, height: canvas.height };
}
