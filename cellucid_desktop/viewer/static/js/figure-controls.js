// The sidebar's "Export figure" section: title, legend, category labels, resolution,
// and PNG / SVG buttons (E saves a PNG with the current choices).

import { renderFigure } from "./figure.js";
import { safeName, saveBlob } from "./save.js";

const $ = (id) => document.getElementById(id);

export class FigureControls {
  constructor(viewer, ui) {
    this.viewer = viewer;
    this.ui = ui;
    $("figure-png").onclick = () => this.export("png");
    $("figure-svg").onclick = () => this.export("svg");
  }

  /** The default title follows what is shown until the user types one. */
  refresh() {
    const v = this.viewer;
    if (!v.ds) return;
    const parts = [v.ds.name, v.colorTitle()].filter(Boolean);
    $("figure-title").placeholder = parts.join(" · ");
    $("figure-labels").disabled = v.coloring.type !== "categorical";
    if (v.coloring.type !== "categorical") $("figure-labels").checked = false;
    else if (v.labelsOn) $("figure-labels").checked = true;
  }

  options() {
    const v = this.viewer;
    const title = $("figure-title").value.trim() || $("figure-title").placeholder;
    const labels = $("figure-labels").checked ? v.labels(true) : null;
    return { title, legend: $("figure-legend").checked, labels, scale: Number($("figure-scale").value) || 2 };
  }

  async export(format) {
    const v = this.viewer;
    if (!v.ds || !v.embedding) return;
    const root = document.documentElement;
    root.dataset.figureState = "rendering";
    try {
      const options = this.options();
      const view = { renderer: v.renderer, legend: options.legend ? v.legendModel() : null };
      const figure = await v.ui.progress.track(`Rendering the ${format.toUpperCase()} figure…`, () => renderFigure(view, options, format));
      const dpi = Math.round(96 * options.scale);
      const name = `${safeName(v.ds.id, v.embedding.key, v.colorTitle())}.${format}`;
      const what = format === "svg" ? `SVG figure (points at ${dpi} dpi)` : `${figure.width}×${figure.height} image (${dpi} dpi)`;
      this.ui.toast(await saveBlob(figure.blob, name, what));
      root.dataset.figureState = "done";
    } catch (err) {
      root.dataset.figureState = "failed";
      this.ui.showError("Export failed", err.message || String(err));
    }
  }
}
