// Differential expression in the side panel: a group (the selection, a kept selection or
// a category) against the rest of the cells or another group, with the test, source and
// number of genes; the server runs it as a background job (progress, cancel), and the
// answer is a ranked table: click a gene to colour by it, download it as CSV.

import * as api from "./api.js";
import { el, formatNumber } from "./legend.js";
import { safeName, saveBlob } from "./save.js";
import { rowsOf } from "./selection.js";

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();
const POLL_MS = 250;
const FIELDS = ["score", "logfoldchange", "pvalue", "pvalue_adj"];

const option = (value, text, disabled = false) => {
  const o = el("option", "", text);
  o.value = value;
  o.disabled = disabled;
  return o;
};

const number = (v) => (v === null || v === undefined ? "" : formatNumber(v));  // null: not finite
const pvalue = (p) => (p === null || p === undefined || Number.isNaN(p) ? "" : p === 0 ? "0" : p < 1e-3 ? p.toExponential(1) : p.toPrecision(2));

/** One group picker (group or reference): a kind, and for categories a column and a value. */
class GroupPick {
  constructor(box, withRest) {
    this.kind = box.querySelector(".group-kind");
    this.column = box.querySelector(".group-column");
    this.value = box.querySelector(".group-value");
    this.withRest = withRest;
    this.kind.onchange = () => this.showCategoryPickers();
    this.column.onchange = () => this.fillValues();
  }

  fill(viewer) {
    const previous = this.kind.value;
    const sel = viewer.selection;
    const options = [];
    if (this.withRest) options.push(option("rest", "Rest of the cells"));
    options.push(option("selection", sel ? `Current selection (${fmt.format(sel.count)})` : "Current selection (none)", !sel));
    viewer.kept.forEach((k, i) => options.push(option(`kept:${i}`, `${k.name} (${fmt.format(k.count)})`)));
    options.push(option("category", "A category…"));
    this.kind.replaceChildren(...options);
    const usable = [...this.kind.options].filter((o) => !o.disabled).map((o) => o.value);
    this.kind.value = usable.includes(previous) ? previous : usable[0];
    const columns = (viewer.ds.obs || []).filter((c) => c.kind === "categorical" || c.kind === "boolean");
    const col = this.column.value;
    this.column.replaceChildren(...columns.map((c) => option(c.key, c.key)));
    const coloured = viewer.coloring.type === "categorical" ? viewer.coloring.key : null;
    if (columns.some((c) => c.key === col)) this.column.value = col;
    else if (coloured && columns.some((c) => c.key === coloured)) this.column.value = coloured;
    this.viewer = viewer;
    this.showCategoryPickers();
  }

  showCategoryPickers() {
    const category = this.kind.value === "category";
    this.column.hidden = !category;
    this.value.hidden = !category;
    if (category) this.fillValues();
  }

  async fillValues() {
    const key = this.column.value;
    if (!key) return;
    const meta = await api.getObsMeta(this.viewer.ds, key).catch(() => null);
    if (!meta || this.column.value !== key) return;
    const previous = this.value.value;
    const categories = meta.categories || ["False", "True"];
    this.value.replaceChildren(...categories.map((c, i) => option(String(c), `${c}${meta.counts ? ` (${fmt.format(meta.counts[i])})` : ""}`)));
    if (categories.map(String).includes(previous)) this.value.value = previous;
  }

  /** The contract's group: {"cells": [...]} or {"obs", "value"}, "rest", plus a label. */
  body(viewer) {
    const kind = this.kind.value;
    if (kind === "rest") return { group: "rest", label: "rest of the cells" };
    if (kind === "selection") {
      if (!viewer.selection) throw new Error("There is no selection; select cells first or pick another group.");
      return { group: { cells: Array.from(rowsOf(viewer.selection)) }, label: "current selection" };
    }
    if (kind.startsWith("kept:")) {
      const k = viewer.kept[Number(kind.slice(5))];
      return { group: { cells: Array.from(rowsOf(k)) }, label: k.name };
    }
    if (!this.column.value || !this.value.value) throw new Error("Pick a column and one of its categories.");
    return { group: { obs: this.column.value, value: this.value.value }, label: `${this.column.value} = ${this.value.value}` };
  }
}

export class DiffexpPanel {
  /** ui: { toast, showError, onPlot(genes, groupby) } */
  constructor(viewer, ui) {
    this.viewer = viewer;
    this.ui = ui;
    this.group = new GroupPick(document.querySelector('#diffexp [data-role="group"]'), false);
    this.reference = new GroupPick(document.querySelector('#diffexp [data-role="reference"]'), true);
    this.job = null;
    this.result = null;
    this.labels = null;
    $("de-run").onclick = () => this.run();
    $("de-cancel").onclick = () => this.cancel();
    $("de-csv").onclick = () => this.downloadCsv();
    $("de-plot").onclick = () => this.plotTop();
  }

  /** Violins of the top genes, grouped by the compared column (or the one coloured). */
  plotTop() {
    if (!this.result) return;
    const genes = this.result.genes.slice(0, 6).map((g) => g.name);
    const column = this.group.kind.value === "category" ? this.group.column.value : null;
    this.ui.onPlot(genes, column || (this.viewer.coloring.type === "categorical" ? this.viewer.coloring.key : null));
  }

  /** Refill the pickers (the selection, kept selections or dataset changed). */
  refresh() {
    const v = this.viewer;
    if (!v.ds) return;
    this.group.fill(v);
    this.reference.fill(v);
    const sources = v.ds.expression_sources || [];
    const source = $("de-source");
    const previous = source.value;
    source.replaceChildren(...sources.map((s) => option(s.id, s.label || s.id)));
    source.value = sources.some((s) => s.id === previous) ? previous : v.source || (sources[0] && sources[0].id) || "";
    $("de-run").disabled = sources.length === 0 || Boolean(this.job);
    if (!sources.length) this.setError("This dataset has no expression matrix to compare.");
  }

  setError(text) {
    $("de-error").textContent = text;
    $("de-error").hidden = !text;
  }

  setRunning(running) {
    $("de-run").disabled = running;
    $("de-cancel").hidden = !running;
    $("de-progress").hidden = !running;
    document.documentElement.dataset.diffexpState = running ? "running" : this.result ? "done" : "idle";
  }

  progress(fraction, message) {
    $("de-progress").querySelector(".progress-bar > span").style.width = `${Math.round((fraction || 0) * 100)}%`;
    $("de-progress").querySelector(".de-progress-text").textContent = message || "Comparing…";
  }

  async run() {
    const v = this.viewer;
    this.setError("");
    let group;
    let reference;
    try {
      group = this.group.body(v);
      reference = this.reference.body(v);
    } catch (err) {
      this.setError(err.message);
      return;
    }
    const n = Math.max(1, Math.min(5000, Math.round(Number($("de-n").value) || 100)));
    const body = { group: group.group, reference: reference.group, method: $("de-method").value, n, source: $("de-source").value };
    this.labels = { group: group.label, reference: reference.label };
    this.result = null;
    this.setRunning(true);
    this.progress(0, "Starting…");
    try {
      this.job = await api.startDiffexp(v.ds, body);
      const done = await this.poll(this.job);
      if (done.state === "done") this.show(done.result);
      else if (done.state === "cancelled") this.setError("Cancelled.");
      else this.setError(done.error || "The comparison failed; see the log.");
    } catch (err) {
      this.setError(err.message || String(err));
    } finally {
      this.job = null;
      this.setRunning(false);
    }
  }

  async poll(job) {
    for (;;) {
      const status = await api.getJob(job);
      if (status.state !== "running") return status;
      this.progress(status.progress, status.message);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  async cancel() {
    if (!this.job) return;
    $("de-cancel").disabled = true;
    try {
      await api.cancelJob(this.job);
    } catch (err) {
      this.setError(err.message);
    } finally {
      $("de-cancel").disabled = false;
    }
  }

  show(result) {
    this.result = result;
    const method = result.method === "wilcoxon" ? "Wilcoxon rank-sum" : "Welch t-test";
    $("de-summary").textContent = `${this.labels.group} (${fmt.format(result.n_group)} cells) vs ${this.labels.reference} `
      + `(${fmt.format(result.n_reference)}) · ${method} on ${result.source} · best first; click a gene to colour by it.`;
    const rows = result.genes.map((g, i) => {
      const tr = el("tr");
      tr.tabIndex = 0;
      tr.dataset.gene = g.name;
      tr.append(el("td", "num", String(i + 1)), el("td", "gene", g.name), el("td", "num", number(g.score)),
        el("td", "num", number(g.logfoldchange)), el("td", "num", pvalue(g.pvalue_adj)));
      const pick = () => this.viewer.colorByGene(g.name, result.source);
      tr.onclick = pick;
      tr.onkeydown = (e) => { if (e.key === "Enter") pick(); };
      return tr;
    });
    $("de-table").querySelector("tbody").replaceChildren(...rows);
    $("de-table").hidden = false;
    $("de-csv").hidden = false;
    $("de-plot").hidden = false;
  }

  /** The table as CSV: rank, gene, score, log2 fold change, p-value, adjusted p-value, (extras). */
  async downloadCsv() {
    const r = this.result;
    if (!r) return;
    const quote = (s) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    // the contract's fields, then any the server adds (group means, detected shares)
    const extra = Object.keys(r.genes[0] || {}).filter((k) => !["name", ...FIELDS].includes(k));
    const cell = (v) => (v === null || v === undefined ? "" : typeof v === "string" ? quote(v) : String(v));
    const lines = [["rank", "gene", ...FIELDS, ...extra].join(","),
      ...r.genes.map((g, i) => [i + 1, quote(g.name), ...[...FIELDS, ...extra].map((k) => cell(g[k]))].join(","))];
    const blob = new Blob([`${lines.join("\n")}\n`], { type: "text/csv" });
    const name = safeName(this.viewer.ds.id, "diffexp", this.labels.group, "vs", this.labels.reference) + ".csv";
    try {
      this.ui.toast(await saveBlob(blob, name, `${r.genes.length} genes`));
    } catch (err) {
      this.ui.showError("Could not save the table", err.message || String(err));
    }
  }
}
