// Free-hand lasso over the plot. The polygon is rasterised once with a 2D canvas;
// each projected point then costs one mask lookup, so 1M points select in ~tens of ms.
// The modifier keys held when the drag starts say how it combines with the selection.

const SVG_NS = "http://www.w3.org/2000/svg";

export class Lasso {
  /** onFinish(points, event) receives the polygon as [[x, y], ...] in CSS pixels and the
   * pointerdown event's modifiers ({shiftKey, altKey}). */
  constructor(overlay, onFinish) {
    this.overlay = overlay;
    this.onFinish = onFinish;
    this.path = document.createElementNS(SVG_NS, "path");
    this.path.setAttribute("class", "lasso-path");
    overlay.append(this.path);
    this.points = null;
    overlay.addEventListener("pointerdown", (e) => this.start(e));
    overlay.addEventListener("pointermove", (e) => this.move(e));
    overlay.addEventListener("pointerup", () => this.finish());
    overlay.addEventListener("pointercancel", () => this.cancel());
  }

  // An <svg> has no `hidden` property (only HTML elements do): use the attribute.
  get active() { return !this.overlay.hasAttribute("hidden"); }

  setActive(on) {
    this.overlay.toggleAttribute("hidden", !on);
    if (!on) this.cancel();
  }

  local(e) {
    const r = this.overlay.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  start(e) {
    if (e.button !== 0) return;
    this.overlay.setPointerCapture(e.pointerId);
    this.points = [this.local(e)];
    this.mods = { shiftKey: e.shiftKey, altKey: e.altKey };
    this.draw();
  }

  move(e) {
    if (!this.points) return;
    const p = this.local(e);
    const last = this.points[this.points.length - 1];
    if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= 2) {
      this.points.push(p);
      this.draw();
    }
  }

  draw() {
    const d = this.points.map((p, i) => `${i ? "L" : "M"}${p[0].toFixed(1)},${p[1].toFixed(1)}`).join("");
    this.path.setAttribute("d", `${d}Z`);
  }

  finish() {
    const points = this.points;
    this.cancel();
    if (points && points.length >= 3) this.onFinish(points, this.mods);
  }

  cancel() {
    this.points = null;
    this.path.setAttribute("d", "");
  }
}

/**
 * Flags (1 = inside) for every point whose projected position falls in the polygon
 * and for which visible(i) holds. screen = [x0, y0, x1, y1, ...] in CSS pixels.
 */
export function selectInPolygon(polygon, screen, width, height, visible) {
  const w = Math.max(1, Math.ceil(width));
  const h = Math.max(1, Math.ceil(height));
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.beginPath();
  polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.closePath();
  ctx.fill();
  const mask = ctx.getImageData(0, 0, w, h).data;
  const n = screen.length / 2;
  const flags = new Uint8Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const x = Math.floor(screen[2 * i]);
    const y = Math.floor(screen[2 * i + 1]);
    if (!(x >= 0 && x < w && y >= 0 && y < h)) continue;
    if (mask[(y * w + x) * 4 + 3] > 127 && visible(i)) {
      flags[i] = 1;
      count++;
    }
  }
  return { flags, count };
}
