// A small vector scene (rectangles, circles, lines, paths, text, images, gradients) that
// is drawn either onto a 2D canvas (the page, PNG files) or written out as SVG, so every
// figure and plot is laid out once and looks the same in both formats.

import { dataUrl, encodePng } from "./png.js";

const FONT = "'DejaVu Sans', Arial, Helvetica, sans-serif";

const measurer = document.createElement("canvas").getContext("2d");

/** Width in pixels of `text` at font `size` (and weight). */
export function textWidth(text, size, weight = "normal") {
  measurer.font = `${weight} ${size}px ${FONT}`;
  return measurer.measureText(String(text)).width;
}

/** Shorten `text` with an ellipsis to fit `width` pixels. */
export function fitText(text, size, width, weight = "normal") {
  const s = String(text);
  if (textWidth(s, size, weight) <= width) return s;
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (textWidth(`${s.slice(0, mid)}…`, size, weight) <= width) lo = mid; else hi = mid - 1;
  }
  return `${s.slice(0, lo)}…`;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const num = (v) => (Math.round(v * 100) / 100).toString();

const BASELINES = { middle: "central", hanging: "hanging", alphabetic: "alphabetic", bottom: "text-after-edge" };

export class Scene {
  constructor(width, height, background = null) {
    this.width = width;
    this.height = height;
    this.background = background;
    this.items = [];
  }

  rect(x, y, w, h, fill, extra = {}) { this.items.push({ kind: "rect", x, y, w, h, fill, ...extra }); return this; }

  circle(cx, cy, r, fill, extra = {}) { this.items.push({ kind: "circle", cx, cy, r, fill, ...extra }); return this; }

  line(x1, y1, x2, y2, stroke, width = 1) { this.items.push({ kind: "line", x1, y1, x2, y2, stroke, width }); return this; }

  /** points: [[x, y], ...]; closed paths are filled with `fill`. */
  path(points, { fill = "none", stroke = "none", width = 1, closed = true } = {}) {
    this.items.push({ kind: "path", points, fill, stroke, width, closed });
    return this;
  }

  /** anchor: start | middle | end; baseline: alphabetic | middle | hanging; halo: outline colour. */
  text(x, y, text, { size = 12, fill = "#000", weight = "normal", anchor = "start", baseline = "alphabetic", halo = null, rotate = 0 } = {}) {
    this.items.push({ kind: "text", x, y, text: String(text), size, fill, weight, anchor, baseline, halo, rotate });
    return this;
  }

  /** source: a canvas (drawn as is; written to SVG as an embedded PNG). */
  image(x, y, w, h, source) { this.items.push({ kind: "image", x, y, w, h, source }); return this; }

  /** A rectangle filled with colour stops [[t, css], ...]; vertical runs bottom (t=0) to top. */
  gradient(x, y, w, h, stops, vertical = false) { this.items.push({ kind: "gradient", x, y, w, h, stops, vertical }); return this; }

  /** Draw onto a 2D context at `scale` device pixels per scene unit. */
  draw(ctx, scale = 1) {
    ctx.save();
    ctx.scale(scale, scale);
    if (this.background) { ctx.fillStyle = this.background; ctx.fillRect(0, 0, this.width, this.height); }
    for (const it of this.items) drawItem(ctx, it);
    ctx.restore();
  }

  /** A canvas of the scene at `scale` (PNG export and the in-page plots). */
  toCanvas(scale = 1) {
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(this.width * scale));
    canvas.height = Math.max(1, Math.round(this.height * scale));
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;  // point images stay crisp when scaled
    this.draw(ctx, scale);
    return canvas;
  }

  /** The scene as SVG text; images are embedded as PNG (encoded off the page's thread). */
  async toSvg() {
    const defs = [];
    const images = new Map();
    for (const it of this.items) {
      if (it.kind === "image" && !images.has(it.source)) images.set(it.source, await dataUrl(await encodePng(it.source)));
    }
    const body = this.items.map((it, i) => svgItem(it, i, defs, images)).join("\n");
    const bg = this.background ? `<rect width="100%" height="100%" fill="${esc(this.background)}"/>\n` : "";
    return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" `
      + `width="${num(this.width)}" height="${num(this.height)}" viewBox="0 0 ${num(this.width)} ${num(this.height)}" `
      + `font-family="${esc(FONT)}">\n${defs.length ? `<defs>${defs.join("")}</defs>\n` : ""}${bg}${body}\n</svg>\n`;
  }
}

function drawItem(ctx, it) {
  switch (it.kind) {
    case "rect":
      if (it.fill) { ctx.fillStyle = it.fill; ctx.fillRect(it.x, it.y, it.w, it.h); }
      if (it.stroke) { ctx.strokeStyle = it.stroke; ctx.lineWidth = it.strokeWidth || 1; ctx.strokeRect(it.x, it.y, it.w, it.h); }
      break;
    case "circle":
      ctx.beginPath();
      ctx.arc(it.cx, it.cy, it.r, 0, Math.PI * 2);
      if (it.fill) { ctx.fillStyle = it.fill; ctx.fill(); }
      if (it.stroke) { ctx.strokeStyle = it.stroke; ctx.lineWidth = it.strokeWidth || 1; ctx.stroke(); }
      break;
    case "line":
      ctx.beginPath();
      ctx.moveTo(it.x1, it.y1);
      ctx.lineTo(it.x2, it.y2);
      ctx.strokeStyle = it.stroke;
      ctx.lineWidth = it.width;
      ctx.stroke();
      break;
    case "path":
      ctx.beginPath();
      it.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (it.closed) ctx.closePath();
      if (it.fill !== "none") { ctx.fillStyle = it.fill; ctx.fill(); }
      if (it.stroke !== "none") { ctx.strokeStyle = it.stroke; ctx.lineWidth = it.width; ctx.stroke(); }
      break;
    case "text": {
      ctx.save();
      ctx.translate(it.x, it.y);
      if (it.rotate) ctx.rotate((it.rotate * Math.PI) / 180);
      ctx.font = `${it.weight} ${it.size}px ${FONT}`;
      ctx.textAlign = it.anchor === "middle" ? "center" : it.anchor === "end" ? "right" : "left";
      ctx.textBaseline = it.baseline === "hanging" ? "top" : it.baseline;
      if (it.halo) {
        ctx.strokeStyle = it.halo;
        ctx.lineWidth = Math.max(2, it.size / 4);
        ctx.lineJoin = "round";
        ctx.strokeText(it.text, 0, 0);
      }
      ctx.fillStyle = it.fill;
      ctx.fillText(it.text, 0, 0);
      ctx.restore();
      break;
    }
    case "image":
      ctx.drawImage(it.source, it.x, it.y, it.w, it.h);
      break;
    case "gradient": {
      const g = it.vertical ? ctx.createLinearGradient(0, it.y + it.h, 0, it.y) : ctx.createLinearGradient(it.x, 0, it.x + it.w, 0);
      for (const [t, css] of it.stops) g.addColorStop(t, css);
      ctx.fillStyle = g;
      ctx.fillRect(it.x, it.y, it.w, it.h);
      break;
    }
    default:
      throw new Error(`unknown scene item ${it.kind}`);
  }
}

function svgItem(it, i, defs, images) {
  switch (it.kind) {
    case "rect": {
      const stroke = it.stroke ? ` stroke="${esc(it.stroke)}" stroke-width="${num(it.strokeWidth || 1)}"` : "";
      return `<rect x="${num(it.x)}" y="${num(it.y)}" width="${num(it.w)}" height="${num(it.h)}" fill="${esc(it.fill || "none")}"${stroke}/>`;
    }
    case "circle": {
      const stroke = it.stroke ? ` stroke="${esc(it.stroke)}" stroke-width="${num(it.strokeWidth || 1)}"` : "";
      return `<circle cx="${num(it.cx)}" cy="${num(it.cy)}" r="${num(it.r)}" fill="${esc(it.fill || "none")}"${stroke}/>`;
    }
    case "line":
      return `<line x1="${num(it.x1)}" y1="${num(it.y1)}" x2="${num(it.x2)}" y2="${num(it.y2)}" stroke="${esc(it.stroke)}" stroke-width="${num(it.width)}"/>`;
    case "path": {
      const d = it.points.map(([x, y], k) => `${k ? "L" : "M"}${num(x)},${num(y)}`).join("") + (it.closed ? "Z" : "");
      return `<path d="${d}" fill="${esc(it.fill)}" stroke="${esc(it.stroke)}" stroke-width="${num(it.width)}"/>`;
    }
    case "text": {
      const anchor = it.anchor === "start" ? "" : ` text-anchor="${it.anchor}"`;
      const base = it.baseline === "alphabetic" ? "" : ` dominant-baseline="${BASELINES[it.baseline]}"`;
      const rotate = it.rotate ? ` transform="rotate(${num(it.rotate)} ${num(it.x)} ${num(it.y)})"` : "";
      const halo = it.halo ? ` stroke="${esc(it.halo)}" stroke-width="${num(Math.max(2, it.size / 4))}" stroke-linejoin="round" paint-order="stroke"` : "";
      const weight = it.weight === "normal" ? "" : ` font-weight="${esc(it.weight)}"`;
      return `<text x="${num(it.x)}" y="${num(it.y)}" font-size="${num(it.size)}"${weight} fill="${esc(it.fill)}"${anchor}${base}${halo}${rotate}>${esc(it.text)}</text>`;
    }
    case "image":
      return `<image x="${num(it.x)}" y="${num(it.y)}" width="${num(it.w)}" height="${num(it.h)}" preserveAspectRatio="none" `
        + `style="image-rendering:pixelated" xlink:href="${images.get(it.source)}"/>`;
    case "gradient": {
      const id = `g${i}`;
      const dir = it.vertical ? 'x1="0" y1="1" x2="0" y2="0"' : 'x1="0" y1="0" x2="1" y2="0"';
      defs.push(`<linearGradient id="${id}" ${dir}>${it.stops.map(([t, css]) => `<stop offset="${num(t)}" stop-color="${esc(css)}"/>`).join("")}</linearGradient>`);
      return `<rect x="${num(it.x)}" y="${num(it.y)}" width="${num(it.w)}" height="${num(it.h)}" fill="url(#${id})"/>`;
    }
    default:
      throw new Error(`unknown scene item ${it.kind}`);
  }
}
