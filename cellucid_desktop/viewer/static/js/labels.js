// Category labels on the plot: one anchor per category (the member cell nearest to the
// category's mean position, so a label never floats in the gap of a curved cluster),
// projected through the camera after every frame into an overlay, and handed to figure
// export so the saved picture has the same labels.

/** Anchor positions (raw coordinates, `dims` each) per category code; null where a category has no cell. */
export function categoryAnchors(positions, dims, codes, nCategories) {
  const sums = new Float64Array(nCategories * dims);
  const counts = new Uint32Array(nCategories);
  const n = codes.length;
  for (let i = 0; i < n; i++) {
    const c = codes[i];
    if (c >= nCategories) continue;
    let ok = true;
    for (let d = 0; d < dims; d++) ok = ok && Number.isFinite(positions[i * dims + d]);
    if (!ok) continue;
    counts[c]++;
    for (let d = 0; d < dims; d++) sums[c * dims + d] += positions[i * dims + d];
  }
  const best = new Float64Array(nCategories).fill(Infinity);
  const nearest = new Int32Array(nCategories).fill(-1);
  for (let i = 0; i < n; i++) {
    const c = codes[i];
    if (c >= nCategories || !counts[c]) continue;
    let dist = 0;
    for (let d = 0; d < dims; d++) {
      const delta = positions[i * dims + d] - sums[c * dims + d] / counts[c];
      dist += delta * delta;
    }
    if (dist < best[c]) { best[c] = dist; nearest[c] = i; }
  }
  return Array.from(nearest, (i) => (i < 0 ? null : Array.from(positions.subarray(i * dims, i * dims + dims))));
}

/** The labels to draw now: [{ text, x, y }] for shown categories whose anchor is on screen. */
export function visibleLabels(renderer, labels) {
  if (!labels) return [];
  const out = [];
  labels.anchors.forEach((anchor, i) => {
    if (!anchor || !labels.shown[i]) return;
    const p = renderer.projectPoint(anchor);
    if (p) out.push({ text: labels.names[i], x: p[0], y: p[1] });
  });
  return out;
}

/** The on-screen overlay: a positioned span per label, refreshed after each frame. */
export class LabelOverlay {
  constructor(container, renderer) {
    this.container = container;
    this.renderer = renderer;
    this.labels = null;
    renderer.onDraw(() => this.update());
  }

  /** labels: { names, anchors, shown } or null to remove them. */
  set(labels) {
    this.labels = labels;
    this.update();
  }

  update() {
    const shown = visibleLabels(this.renderer, this.labels);
    this.container.hidden = shown.length === 0;
    const spans = shown.map(({ text, x, y }) => {
      const span = document.createElement("span");
      span.className = "plot-label";
      span.textContent = text;
      span.style.transform = `translate(${x.toFixed(1)}px, ${y.toFixed(1)}px) translate(-50%, -50%)`;
      return span;
    });
    this.container.replaceChildren(...spans);
  }
}
