// Boot: check WebGL2, build the renderer and the viewer model, wire the sidebar, the
// analysis panel, the plot interactions and the keyboard, then open what the URL asks for.

import * as api from "./api.js";
import { DiffexpPanel } from "./diffexp-panel.js";
import { FigureControls } from "./figure-controls.js";
import { GeneIndexStatus } from "./gene-index.js";
import { GeneSearch } from "./gene-search.js";
import { GeneSets } from "./gene-sets.js";
import { attachInteraction } from "./interaction.js";
import { LabelOverlay } from "./labels.js";
import { Lasso } from "./lasso.js";
import { Legend } from "./legend.js";
import { PlotsPanel } from "./plots-panel.js";
import { PointRenderer, WebGLMissingError } from "./renderer.js";
import { countsByCategory } from "./selection.js";
import { SelectionPanel } from "./selection-panel.js";
import { Progress, hideError, setViewerState, showError } from "./status.js";
import { Tooltip } from "./tooltip.js";
import { readUrlState } from "./url-state.js";
import { Viewer, isContinuous } from "./viewer.js";
import { attachWebAppButton } from "./webapp-button.js";

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();
const SHOWN = "__shown__";  // the colour list's entry for a gene or gene set being shown

function cssColor(name) {
  const probe = document.createElement("div");
  probe.style.color = getComputedStyle(document.documentElement).getPropertyValue(name);
  document.body.append(probe);
  const rgb = getComputedStyle(probe).color.match(/\d+(\.\d+)?/g).slice(0, 3).map((v) => Number(v) / 255);
  probe.remove();
  return rgb;
}

function defaultPointSize(n) {
  return Math.max(1, Math.min(8, Math.round((64 / Math.pow(Math.max(n, 1), 0.3)) * 2) / 2));
}

let toastTimer = null;
function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
}

function option(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  return o;
}

/** Lists that depend on the dataset document (also after a selection column is saved). */
function fillDatasetControls(viewer) {
  const ds = viewer.ds;
  $("dataset-info").textContent = `${ds.name} · ${fmt.format(ds.n_cells)} cells · ${fmt.format(ds.n_genes)} genes`;
  document.title = `${ds.name} · Cellucid`;
  const dsSelect = $("dataset-select");
  if (viewer.datasets && viewer.datasets.length > 1) {
    dsSelect.replaceChildren(...viewer.datasets.map((d) => option(d.id, d.name)));
    dsSelect.value = ds.id;
    dsSelect.hidden = false;
  }
  $("embedding-select").replaceChildren(...ds.embeddings.map((e) => option(e.key, `${e.key} (${e.dims}D)`)));
  const colorSelect = $("color-select");
  colorSelect.replaceChildren(option("", "None (single colour)"));
  const obs = ds.obs || [];
  const groups = [
    ["Saved selections", (c) => c.annotation],
    ["Categories", (c) => !c.annotation && c.kind === "categorical"],
    ["Yes / no", (c) => c.kind === "boolean"],
    ["Text", (c) => c.kind === "string"],
    ["Numbers", (c) => c.kind === "continuous"],
  ];
  for (const [label, test] of groups) {
    const cols = obs.filter(test);
    if (!cols.length) continue;
    const group = document.createElement("optgroup");
    group.label = label;
    group.append(...cols.map((c) => option(c.key, c.n_categories ? `${c.key} (${c.n_categories})` : c.key)));
    colorSelect.append(group);
  }
  const sources = ds.expression_sources || [];
  $("source-select").replaceChildren(...sources.map((s) => option(s.id, s.label || s.id)));
  $("source-select").disabled = sources.length < 2;
  $("gene-input").disabled = sources.length === 0;
  if (!sources.length) $("gene-input").placeholder = "No expression matrix";
  $("source-select").value = viewer.source || "";
}

function applyStyle(viewer) {
  const size = Number($("size-input").value);
  const opacity = Number($("opacity-input").value);
  $("size-value").textContent = String(size);
  $("opacity-value").textContent = opacity.toFixed(2);
  viewer.renderer.setStyle({ pointSize: size, opacity });
}

function applyTheme(renderer) {
  renderer.setStyle({ background: cssColor("--plot-bg"), plain: cssColor("--plot-plain"), zero: cssColor("--plot-zero") });
}

/** "Colour by" names what is shown: a column, or the gene / gene set (never "None" then). */
function showColorChoice(viewer) {
  const c = viewer.coloring;
  const select = $("color-select");
  select.querySelector(`option[value="${SHOWN}"]`)?.parentElement.remove();
  if (c.type === "gene" || c.type === "geneset") {
    const group = document.createElement("optgroup");
    group.label = c.type === "gene" ? "Gene" : "Gene set";
    group.append(option(SHOWN, c.type === "gene" ? c.key : `${c.key} (${c.method === "score" ? "score" : "mean"})`));
    select.append(group);
    select.value = SHOWN;
  } else {
    select.value = c.type === "categorical" || c.type === "continuous" ? c.key : "";
  }
}

function showColoring(viewer, legend) {
  const c = viewer.coloring;
  $("embedding-select").value = viewer.embedding ? viewer.embedding.key : "";
  showColorChoice(viewer);
  $("source-select").value = viewer.source || "";
  if (c.type !== "gene" && document.activeElement !== $("gene-input")) $("gene-input").value = "";
  if (c.type === "gene") $("gene-input").value = c.key;
  $("legend-title").textContent = viewer.colorTitle();
  if (c.type === "categorical") {
    legend.showCategorical(c.categories, c.counts, c.colors, c.shown, c.nMissing, viewer.missingShown);
    showSelectedCounts(viewer, legend);
  } else if (isContinuous(c) && viewer.scale) {
    legend.showContinuous({
      colormap: viewer.colormap, scale: viewer.scale, settings: viewer.scaleSettings, nMissing: c.nMissing,
      expression: c.type === "gene" || (c.type === "geneset" && c.method === "mean"), zerosGrey: viewer.zerosGrey,
    });
  } else {
    legend.clear();
  }
  $("labels-toggle").checked = viewer.labelsOn;
  $("labels-toggle").disabled = c.type !== "categorical";
}

function showSelectedCounts(viewer, legend) {
  const c = viewer.coloring;
  if (c.type !== "categorical") return;
  legend.updateSelected(viewer.selection ? countsByCategory(viewer.selection.flags, c.values, c.categories.length) : null);
}

function setLasso(lasso, on) {
  lasso.setActive(on);
  $("lasso-button").setAttribute("aria-pressed", String(on));
  $("mode-hint").hidden = !on;
}

/** The analysis panel (differential expression / plots): open on a tab, or close. */
function showPanel(tab) {
  const panel = $("panel");
  panel.hidden = tab === null;
  for (const name of ["diffexp", "plots"]) {
    $(`tab-${name}`).setAttribute("aria-selected", String(name === tab));
    $(name).hidden = name !== tab;
  }
  $("diffexp-button").setAttribute("aria-pressed", String(tab === "diffexp"));
  $("plots-button").setAttribute("aria-pressed", String(tab === "plots"));
}

const panelTab = () => ($("panel").hidden ? null : $("plots").hidden ? "diffexp" : "plots");

function bindKeys(viewer, lasso, parts) {
  const help = $("help");
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement;
    if (e.key === "Escape") {
      if (!help.hidden) help.hidden = true;
      else if (typing) t.blur();  // leave the field: the shortcuts work again
      else if (lasso.active) setLasso(lasso, false);
      else if (panelTab()) showPanel(null);
      $("tooltip").hidden = true;
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const size = $("size-input");
    const toggleTab = (tab) => { showPanel(panelTab() === tab ? null : tab); parts.refreshPanels(); };
    const actions = {
      r: () => { viewer.renderer.camera.reset(); viewer.renderer.requestRender(); },
      l: () => setLasso(lasso, !lasso.active),
      c: () => viewer.clearSelection(),
      i: () => viewer.ds && viewer.invertSelection(),
      s: () => viewer.selection && viewer.setOnlySelection(!viewer.onlySelection),
      k: () => parts.selection.keep(),
      d: () => toggleTab("diffexp"),
      p: () => toggleTab("plots"),
      t: () => viewer.coloring.type === "categorical" && viewer.setLabels(!viewer.labelsOn),
      e: () => parts.figure.export("png"),
      g: () => $("gene-input").focus(),
      "?": () => { help.hidden = !help.hidden; },
      "[": () => { size.stepDown(); applyStyle(viewer); },
      "]": () => { size.stepUp(); applyStyle(viewer); },
    };
    const action = actions[e.key.toLowerCase()];
    if (action) { e.preventDefault(); action(); }
  });
  $("help-button").onclick = () => { help.hidden = false; };
  $("help-close").onclick = () => { help.hidden = true; };
  help.onclick = (e) => { if (e.target === help) help.hidden = true; };
}

function boot() {
  setViewerState("loading");
  const progress = new Progress($("progress"));
  const errorPanel = $("error");
  let renderer;
  try {
    renderer = new PointRenderer($("plot"));
  } catch (err) {
    if (err instanceof WebGLMissingError) {
      showError(errorPanel, "WebGL2 is not available",
        "This viewer draws cells with WebGL2, which this window does not offer; open the same address in a browser with WebGL2 (a recent Chrome, Edge, Firefox or Safari).");
    } else {
      showError(errorPanel, "The plot could not start", `${err.message}; try a browser with WebGL2 and report this if it persists.`);
    }
    $("error-close").hidden = true;
    return;
  }
  $("plot").addEventListener("webglcontextlost", (e) => {
    e.preventDefault();
    showError(errorPanel, "The plot stopped",
      "The graphics context was lost (a driver reset or too little GPU memory); press Reload to draw it again.");
  });
  applyTheme(renderer);
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => applyTheme(renderer));
  const ui = { toast, showError: (title, message) => showError(errorPanel, title, message) };
  let viewer;
  const parts = {};
  const legend = new Legend($("legend"), {
    onToggle: (i) => viewer.toggleCategory(i),
    onIsolate: (i) => viewer.isolateCategory(i),
    onSetAll: (show) => viewer.setAllCategories(show),
    onToggleMissing: () => viewer.toggleMissing(),
    onSelect: (i, event) => viewer.selectCategories([i], parts.selection.modeFor(event)),
    onColormap: (name) => viewer.setColormap(name),
    onScale: (changes) => viewer.setScale(changes),
    onZeros: (on) => viewer.setZerosGrey(on),
  });
  const geneIndex = new GeneIndexStatus($("gene-index"), () => api.getGeneIndex(viewer.ds));
  const labels = new LabelOverlay($("plot-labels"), renderer);
  let firstDataset = true;
  parts.refreshPanels = () => {
    if (!viewer.ds) return;
    if (panelTab() === "diffexp") parts.diffexp.refresh();
    if (panelTab() === "plots") parts.plots.refresh();
  };
  viewer = new Viewer(renderer, {
    progress,
    legend,
    toast,
    onDataset: (v) => {
      fillDatasetControls(v);
      if (firstDataset) {
        firstDataset = false;
        $("size-input").value = String(defaultPointSize(v.ds.n_cells));
        $("opacity-input").value = v.ds.n_cells > 300000 ? "0.7" : "0.85";
        applyStyle(v);
        geneIndex.show(v.ds.gene_index);
      }
      parts.selection.datasetChanged();
      parts.tooltip.datasetChanged();
      parts.refreshPanels();
    },
    onChange: (v) => {
      showColoring(v, legend);
      labels.set(v.labels());
      parts.geneSets.showColoring(v.coloring);
      parts.figure.refresh();
      if (v.coloring.type === "gene" || v.coloring.type === "geneset") geneIndex.refresh();  // a gene read may start a build
    },
    onCategories: (v) => labels.set(v.labels()),
    onSelection: (v) => {
      parts.selection.update();
      showSelectedCounts(v, legend);
      parts.refreshPanels();
    },
    onError: (title, message) => showError(errorPanel, title, message),
  });
  window.cellucidViewer = viewer;
  parts.selection = new SelectionPanel(viewer, ui);
  parts.diffexp = new DiffexpPanel(viewer, { ...ui, onPlot: (genes, groupby) => {
    showPanel("plots");
    parts.plots.refresh();
    parts.plots.show(genes, groupby);
  } });
  parts.plots = new PlotsPanel(viewer, ui);
  parts.geneSets = new GeneSets(viewer, ui);
  parts.figure = new FigureControls(viewer, ui);
  parts.tooltip = new Tooltip($("tooltip"), $("tooltip-columns"), viewer);
  window.cellucidPanels = parts;

  new ResizeObserver(() => renderer.resize()).observe($("stage"));
  renderer.resize();
  attachInteraction($("plot"), renderer, (hover) => {
    if (!hover || !viewer.ds) { parts.tooltip.hide(); return; }
    parts.tooltip.show(viewer.pick(hover.x, hover.y), hover.x, hover.y);
  });
  const lasso = new Lasso($("lasso-overlay"), (polygon, mods) => viewer.lassoSelect(polygon, parts.selection.modeFor(mods)));
  bindKeys(viewer, lasso, parts);

  $("dataset-select").onchange = (e) => { window.location.search = `?dataset=${encodeURIComponent(e.target.value)}`; };
  $("embedding-select").onchange = (e) => viewer.setEmbedding(e.target.value);
  $("color-select").onchange = (e) => { if (e.target.value !== SHOWN) viewer.colorByObs(e.target.value === "" ? null : e.target.value); };
  $("source-select").onchange = (e) => viewer.setSource(e.target.value);
  $("size-input").oninput = () => applyStyle(viewer);
  $("opacity-input").oninput = () => applyStyle(viewer);
  $("labels-toggle").onchange = (e) => viewer.setLabels(e.target.checked);
  $("reset-button").onclick = () => { renderer.camera.reset(); renderer.requestRender(); };
  $("lasso-button").onclick = () => setLasso(lasso, !lasso.active);
  $("diffexp-button").onclick = () => { showPanel(panelTab() === "diffexp" ? null : "diffexp"); parts.refreshPanels(); };
  $("plots-button").onclick = () => { showPanel(panelTab() === "plots" ? null : "plots"); parts.refreshPanels(); };
  $("tab-diffexp").onclick = () => { showPanel("diffexp"); parts.refreshPanels(); };
  $("tab-plots").onclick = () => { showPanel("plots"); parts.refreshPanels(); };
  $("panel-close").onclick = () => showPanel(null);
  $("error-retry").onclick = () => window.location.reload();
  $("error-close").onclick = () => hideError(errorPanel);
  attachWebAppButton($("webapp-section"), $("webapp-button"), toast);
  new GeneSearch($("gene-input"), $("gene-list"),
    (q) => api.searchGenes(viewer.ds, q, viewer.source).finally(() => geneIndex.refresh()),
    (name) => viewer.colorByGene(name));

  viewer.open(readUrlState());
}

boot();
