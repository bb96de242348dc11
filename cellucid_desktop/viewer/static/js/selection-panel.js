// The sidebar's selection controls: how new selections combine (new / add / remove),
// the count with invert, clear, keep and show-only, the kept (named) selections, select
// by value (a condition or a brushed histogram), and what leaves the viewer: a barcodes
// CSV, kept selections saved as a categorical column next to the data, and a copy of
// the dataset with those columns.

import * as api from "./api.js";
import { HistogramBrush } from "./histogram.js";
import { el, formatNumber } from "./legend.js";
import { QueryError, formatQuery, parseQuery } from "./range-query.js";
import { download, safeName, saveBlob } from "./save.js";
import { modeOf, rowsOf } from "./selection.js";

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();

/**
 * An inline "name it" field under `anchor`; resolves to the trimmed text, or null when
 * cancelled (Esc, Cancel, or focus leaving it empty).
 */
function askName(anchor, placeholder, value = "") {
  document.querySelectorAll(".ask-name").forEach((f) => f.remove());
  return new Promise((resolve) => {
    const form = el("form", "ask-name button-row");
    const input = el("input");
    input.type = "text";
    input.placeholder = placeholder;
    input.value = value;
    input.setAttribute("aria-label", placeholder);
    const ok = el("button", "", "OK");
    ok.type = "submit";
    const cancel = el("button", "", "Cancel");
    cancel.type = "button";
    form.append(input, ok, cancel);
    const done = (answer) => { form.remove(); resolve(answer); };
    form.onsubmit = (e) => { e.preventDefault(); done(input.value.trim() || null); };
    cancel.onclick = () => done(null);
    input.onkeydown = (e) => { if (e.key === "Escape") { e.stopPropagation(); done(null); } };
    anchor.after(form);
    input.focus();
    input.select();
  });
}

export class SelectionPanel {
  /** ui: { toast(text), showError(title, message) } */
  constructor(viewer, ui) {
    this.viewer = viewer;
    this.ui = ui;
    this.mode = "replace";
    this.rangeValues = null;
    this.rangeName = null;
    this.columnCache = new Map();
    for (const button of document.querySelectorAll("#selection-section .mode")) {
      button.onclick = () => this.setMode(button.dataset.mode);
    }
    $("invert-selection").onclick = () => viewer.invertSelection();
    $("select-all").onclick = () => viewer.invertSelection();
    $("clear-selection").onclick = () => viewer.clearSelection();
    $("only-selection").onchange = (e) => viewer.setOnlySelection(e.target.checked);
    $("keep-selection").onclick = () => this.keep();
    $("save-column").onclick = () => this.saveColumn();
    $("export-csv").onclick = () => this.exportCsv();
    $("save-copy").onclick = () => this.saveCopy();
    this.histogram = new HistogramBrush($("range-histogram"), (lo, hi, mods) => this.brushed(lo, hi, mods));
    $("range-column").onchange = () => this.showColumn($("range-column").value);
    $("range-form").onsubmit = (e) => { e.preventDefault(); this.query($("range-query").value, this.mode); };
    $("range-select").addEventListener("toggle", () => { if ($("range-select").open) this.showColumn($("range-column").value); });
  }

  setMode(mode) {
    this.mode = mode;
    for (const button of document.querySelectorAll("#selection-section .mode")) {
      button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
    }
  }

  /** The mode for an action: Shift adds, Alt removes, else the chosen mode. */
  modeFor(event) {
    return modeOf(event, this.mode);
  }

  // --- dataset -----------------------------------------------------------------------

  /** A dataset (re)loaded: numeric columns for select-by-value, the saved selection columns. */
  datasetChanged() {
    const ds = this.viewer.ds;
    const numeric = (ds.obs || []).filter((c) => c.kind === "continuous");
    const select = $("range-column");
    const current = select.value;
    select.replaceChildren(...numeric.map((c) => { const o = el("option", "", c.key); o.value = `obs:${c.key}`; return o; }));
    const gene = el("option", "", "The gene or gene set shown");
    gene.value = "shown";
    select.append(gene);
    if ([...select.options].some((o) => o.value === current)) select.value = current;
    this.refreshSaved();
  }

  // --- the current selection -------------------------------------------------------------

  /** The selection changed: count, buttons, histogram overlay. */
  update() {
    const v = this.viewer;
    const sel = v.selection;
    $("selection").hidden = !sel;
    $("select-all").hidden = Boolean(sel);
    if (sel) {
      const share = v.ds ? ` (${((100 * sel.count) / v.ds.n_cells).toFixed(sel.count / v.ds.n_cells < 0.001 ? 3 : 1)}%)` : "";
      $("selection-count").textContent = `${fmt.format(sel.count)} cells selected${share}`;
    }
    $("only-selection").checked = v.onlySelection;
    this.showKept();
    if (this.rangeValues && $("range-select").open) this.histogram.show(this.rangeValues, sel && sel.flags);
  }

  async keep() {
    if (!this.viewer.selection) { this.ui.toast("Select cells first (lasso, legend or by value), then keep them."); return; }
    const name = await askName($("keep-selection"), "Name of this selection", `Selection ${this.viewer.kept.length + 1}`);
    if (name) this.viewer.keepSelection(name);
  }

  showKept() {
    const kept = this.viewer.kept;
    $("kept").hidden = kept.length === 0;
    $("kept-list").replaceChildren(...kept.map((k, i) => {
      const li = el("li", "kept-row");
      const name = el("button", "link kept-name", k.name);
      name.title = `Select these ${fmt.format(k.count)} cells (Shift adds, Alt removes)`;
      name.onclick = (e) => this.viewer.useKept(i, this.modeFor(e));
      const forget = el("button", "link kept-forget", "×");
      forget.setAttribute("aria-label", `Forget ${k.name}`);
      forget.onclick = () => this.viewer.forgetKept(i);
      li.append(name, el("span", "legend-count", fmt.format(k.count)), forget);
      return li;
    }));
  }

  // --- select by value ---------------------------------------------------------------------

  /** Values of a select-by-value choice ("obs:KEY", "shown" or a gene name) and its name. */
  async valuesOf(choice) {
    const v = this.viewer;
    if (choice === "shown") {
      const c = v.coloring;
      if (c.type !== "gene" && c.type !== "geneset" && c.type !== "continuous") {
        throw new QueryError("Colour by a gene, a gene set or a numeric column first, or pick a column here.");
      }
      return { name: c.key, values: c.values };
    }
    if (choice.startsWith("obs:")) {
      const key = choice.slice(4);
      if (!this.columnCache.has(key)) this.columnCache.set(key, api.getObsColumn(v.ds, key).then((col) => col.values));
      return { name: key, values: await this.columnCache.get(key) };
    }
    const gene = await api.getGene(v.ds, choice, v.source);
    return { name: choice, values: gene.values };
  }

  async showColumn(choice) {
    if (!choice || !this.viewer.ds) return;
    this.setError("");
    try {
      const { name, values } = await this.valuesOf(choice);
      this.rangeName = name;
      this.rangeValues = values;
      this.histogram.show(values, this.viewer.selection && this.viewer.selection.flags);
      this.histogram.setRange(null);
      const h = this.histogram.hist;
      $("range-min").textContent = h ? formatNumber(h.min) : "";
      $("range-max").textContent = h ? formatNumber(h.max) : "";
      $("range-query").placeholder = h ? `${name} < ${formatNumber((h.min + h.max) / 2)}` : name;
    } catch (err) {
      this.setError(err.message);
    }
  }

  brushed(lo, hi, mods) {
    if (!this.rangeValues) return;
    const bounds = { name: this.rangeName, lo, hi };
    $("range-query").value = formatQuery(bounds, formatNumber);
    this.viewer.selectRange(this.rangeValues, bounds, this.modeFor(mods));
  }

  /** Run a typed condition: the name is an obs column first, else a gene. For automation,
   * documentElement.dataset.rangeState is running, then done or failed. */
  async query(text, mode) {
    const root = document.documentElement;
    root.dataset.rangeState = "running";
    this.setError("");
    try {
      const bounds = parseQuery(text);
      const obs = (this.viewer.ds.obs || []).find((c) => c.key === bounds.name);
      if (obs && obs.kind !== "continuous") throw new QueryError(`“${bounds.name}” is not numeric; use its legend rows to select categories.`);
      const choice = obs ? `obs:${obs.key}` : bounds.name;
      const { values } = await this.valuesOf(choice).catch((err) => {
        throw err.status === 404 ? new QueryError(`No numeric column or gene named “${bounds.name}”.`) : err;
      });
      this.rangeName = bounds.name;
      this.rangeValues = values;
      if (obs) $("range-column").value = choice;
      this.viewer.selectRange(values, bounds, mode);
      this.histogram.show(values, this.viewer.selection && this.viewer.selection.flags);
      this.histogram.setRange([bounds.lo ?? -Infinity, bounds.hi ?? Infinity]);
      root.dataset.rangeState = "done";
    } catch (err) {
      this.setError(err.message);
      root.dataset.rangeState = "failed";
    }
  }

  setError(text) {
    $("range-error").textContent = text;
    $("range-error").hidden = !text;
  }

  // --- leaving the viewer ----------------------------------------------------------------

  async exportCsv() {
    const v = this.viewer;
    if (!v.selection) { this.ui.toast("Select cells first; the CSV lists the selected cells' barcodes."); return; }
    const c = v.coloring;
    const columns = c.type === "categorical" || c.type === "continuous" ? [c.key] : [];
    try {
      const blob = await v.ui.progress.track("Preparing the barcodes…", () => api.getCellsCsv(v.ds, rowsOf(v.selection), columns));
      this.ui.toast(await saveBlob(blob, safeName(v.ds.id, "selection", `${v.selection.count}cells.csv`),
        `${fmt.format(v.selection.count)} barcodes`));
    } catch (err) {
      this.ui.showError("Could not export the barcodes", err.message || String(err));
    }
  }

  /** The kept selections as one categorical column (label per kept selection). */
  async saveColumn() {
    const v = this.viewer;
    if (!v.kept.length) { this.ui.toast("Keep at least one selection first (K)."); return; }
    const key = await askName($("save-column"), "Column name", "selections");
    if (!key) return;
    const categories = {};
    for (const k of v.kept) categories[k.name] = Array.from(rowsOf(k));
    try {
      await v.ui.progress.track(`Saving column ${key}…`, () => api.saveAnnotation(v.ds, key, categories));
      await v.reloadDataset();
      this.ui.toast(`Saved column “${key}” (${v.kept.length} labels); it is listed under Colour by on every open.`);
      await v.colorByObs(key);
    } catch (err) {
      this.ui.showError("Could not save the selections", err.message || String(err));
    }
  }

  async refreshSaved() {
    const v = this.viewer;
    let columns = [];
    try {
      const listing = await api.listAnnotations(v.ds);
      columns = listing.columns || [];
      if (listing.message) this.ui.toast(listing.message);  // a damaged sidecar was set aside
    } catch (err) {
      if (err.status !== 404) this.ui.toast(err.message);  // 404: a server without saved selections
    }
    $("saved-columns").hidden = columns.length === 0;
    $("saved-list").replaceChildren(...columns.map((col) => {
      const li = el("li", "kept-row");
      const name = el("button", "link kept-name", col.key);
      name.title = `Colour by ${col.key}: ${col.categories.join(", ")}`;
      name.onclick = () => v.colorByObs(col.key);
      const total = (col.counts || []).reduce((a, b) => a + b, 0);
      const remove = el("button", "link kept-forget", "×");
      remove.setAttribute("aria-label", `Delete saved column ${col.key}`);
      remove.onclick = () => this.deleteSaved(col.key);
      li.append(name, el("span", "legend-count", `${col.categories.length} labels · ${fmt.format(total)}`), remove);
      return li;
    }));
  }

  async deleteSaved(key) {
    const v = this.viewer;
    try {
      await api.deleteAnnotation(v.ds, key);
      if (v.coloring.key === key && v.coloring.type === "categorical") await v.colorByObs(null);
      await v.reloadDataset();
      this.ui.toast(`Deleted saved column “${key}”.`);
    } catch (err) {
      this.ui.showError("Could not delete the column", err.message || String(err));
    }
  }

  /** A new .h5ad with the saved columns: the app's save dialog, or a browser download. */
  async saveCopy() {
    const v = this.viewer;
    const bridge = window.pywebview && window.pywebview.api && window.pywebview.api.save_dataset_copy;
    if (!bridge) {
      download(api.exportH5adUrl(v.ds), safeName(v.ds.id, "with-selections.h5ad"));
      this.ui.toast("Downloading a copy of the dataset with the saved selection columns…");
      return;
    }
    try {
      const result = await v.ui.progress.track("Writing a copy of the dataset…", () => window.pywebview.api.save_dataset_copy());
      if (result && result.saved) this.ui.toast(`Saved a copy with the selection columns to ${result.path}`);
      else if (result && result.error) this.ui.showError("Could not save a copy", result.error);
    } catch (err) {
      this.ui.showError("Could not save a copy", err.message || String(err));
    }
  }
}
