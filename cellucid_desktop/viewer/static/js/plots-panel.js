// The "Plots by group" tab: genes (typed, pasted, or handed over from the table of a
// comparison), a categorical column, violin or dot plot, optionally only the selected
// cells; drawn in the page and saved as PNG or SVG.

import * as api from "./api.js";
import { CSS_DPI, themeColor } from "./figure.js";
import { canvasPng } from "./png.js";
import { MAX_GROUPS, dotScene, groupColors, groupStats, violinScene } from "./plots.js";
import { safeName, saveBlob } from "./save.js";
import { parseGeneList } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const MAX_GENES = 40;
const CACHED_GENES = 12;  // 4 MB each at a million cells
const EXPORT_SCALE = 3.125;  // 300 dpi

export class PlotsPanel {
  constructor(viewer, ui) {
    this.viewer = viewer;
    this.ui = ui;
    this.scene = null;
    this.geneCache = new Map();
    $("plot-draw").onclick = () => this.draw();
    $("plot-png").onclick = () => this.save("png");
    $("plot-svg").onclick = () => this.save("svg");
  }

  /** Refill the group-by list; default genes: the gene or gene set shown. */
  refresh() {
    const v = this.viewer;
    if (!v.ds) return;
    const select = $("plot-groupby");
    const previous = select.value;
    const columns = (v.ds.obs || []).filter((c) => c.kind === "categorical" || c.kind === "boolean");
    select.replaceChildren(...columns.map((c) => { const o = document.createElement("option"); o.value = c.key; o.textContent = c.key; return o; }));
    const coloured = v.coloring.type === "categorical" ? v.coloring.key : null;
    select.value = columns.some((c) => c.key === previous) ? previous : coloured || (columns[0] && columns[0].key) || "";
    $("plot-selected").disabled = !v.selection;
    if (!v.selection) $("plot-selected").checked = false;
    if (!$("plot-genes").value.trim()) {
      const c = v.coloring;
      if (c.type === "gene") $("plot-genes").value = c.key;
      else if (c.type === "geneset") $("plot-genes").value = c.used.join(", ");
    }
  }

  /** Plot these genes (e.g. the top of a comparison) by `groupby` when given. */
  show(genes, groupby = null) {
    $("plot-genes").value = genes.join(", ");
    if (groupby && [...$("plot-groupby").options].some((o) => o.value === groupby)) $("plot-groupby").value = groupby;
    return this.draw();
  }

  setStatus(text, error = false) {
    $("plot-error").textContent = error ? text : "";
    $("plot-error").hidden = !error;
    $("plot-status").textContent = error ? "" : text;
  }

  /** A gene's vector, the last few kept (redrawing or switching plot kind refetches nothing). */
  gene(name) {
    const v = this.viewer;
    const key = `${v.source}\u0000${name}`;
    const cached = this.geneCache.get(key);
    this.geneCache.delete(key);
    const vector = cached || api.getGene(v.ds, name, v.source).catch((err) => { this.geneCache.delete(key); throw err; });
    this.geneCache.set(key, vector);  // most recent last
    while (this.geneCache.size > CACHED_GENES) this.geneCache.delete(this.geneCache.keys().next().value);
    return vector;
  }

  async draw() {
    const v = this.viewer;
    const root = document.documentElement;
    const genes = parseGeneList($("plot-genes").value);
    const groupby = $("plot-groupby").value;
    if (!genes.length) { this.setStatus("Type or paste one or more gene names.", true); return; }
    if (genes.length > MAX_GENES) { this.setStatus(`At most ${MAX_GENES} genes at once.`, true); return; }
    if (!groupby) { this.setStatus("This dataset has no categorical column to group by.", true); return; }
    root.dataset.plotState = "drawing";
    this.setStatus(`Loading ${genes.length} gene${genes.length > 1 ? "s" : ""}…`);
    try {
      const [column, ...vectors] = await Promise.all([api.getObsColumn(v.ds, groupby), ...genes.map((g) => this.gene(g))]);
      const categories = column.meta.categories || ["False", "True"];
      if (categories.length > MAX_GROUPS) {
        throw new Error(`“${groupby}” has ${categories.length} categories; plots take at most ${MAX_GROUPS}.`);
      }
      const only = $("plot-selected").checked && v.selection ? v.selection.flags : null;
      const stats = [];
      for (const g of vectors) {  // one gene per task: the page keeps answering
        stats.push(groupStats(g.values, column.values, categories.length, only));
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      const kind = $("plot-kind").value;
      const data = {
        genes, stats, groups: categories.map(String), colors: groupColors(categories.length),
        title: `${kind === "dot" ? "Dot plot" : "Violins"} by ${groupby}${only ? " (selected cells)" : ""}${v.source ? ` · ${v.source}` : ""}`,
      };
      const ink = themeColor("--text", "#1f2430");
      const paper = themeColor("--panel", "#ffffff");
      const fit = Math.max(320, $("plots").clientWidth);
      this.scene = kind === "dot" ? dotScene(data, ink, paper) : violinScene(data, ink, paper, fit);
      this.name = safeName(v.ds.id, kind, groupby, genes.slice(0, 4).join("-"));
      this.paint();
      $("plot-png").disabled = false;
      $("plot-svg").disabled = false;
      this.setStatus("");
      root.dataset.plotState = "done";
    } catch (err) {
      this.setStatus(err.message || String(err), true);
      root.dataset.plotState = "failed";
    }
  }

  paint() {
    const dpr = window.devicePixelRatio || 1;
    const canvas = $("group-plot");
    const drawn = this.scene.toCanvas(dpr);
    canvas.width = drawn.width;
    canvas.height = drawn.height;
    canvas.style.width = `${this.scene.width}px`;
    canvas.style.height = `${this.scene.height}px`;
    canvas.getContext("2d").drawImage(drawn, 0, 0);
  }

  async save(format) {
    if (!this.scene) return;
    try {
      const blob = format === "svg"
        ? new Blob([await this.scene.toSvg()], { type: "image/svg+xml" })
        : await canvasPng(this.scene.toCanvas(EXPORT_SCALE), CSS_DPI * EXPORT_SCALE);
      this.ui.toast(await saveBlob(blob, `${this.name}.${format}`, format === "svg" ? "SVG plot" : "300 dpi plot"));
    } catch (err) {
      this.ui.showError("Could not save the plot", err.message || String(err));
    }
  }
}
