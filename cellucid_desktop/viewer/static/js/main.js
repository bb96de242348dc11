// Boot: check WebGL2, build the renderer and the viewer model, wire the sidebar,
// the plot interactions and the keyboard, then open what the URL asks for.

import * as api from "./api.js";
import { exportPng } from "./export-png.js";
import { GeneIndexStatus } from "./gene-index.js";
import { GeneSearch } from "./gene-search.js";
import { attachInteraction } from "./interaction.js";
import { Lasso } from "./lasso.js";
import { Legend } from "./legend.js";
import { PointRenderer, WebGLMissingError } from "./renderer.js";
import { Progress, hideError, setViewerState, showError } from "./status.js";
import { readUrlState } from "./url-state.js";
import { Viewer } from "./viewer.js";
import { attachWebAppButton } from "./webapp-button.js";

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();

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

function fillDatasetControls(viewer, geneIndex) {
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
  const groups = { categorical: "Categories", boolean: "Yes / no", string: "Text", continuous: "Numbers" };
  for (const [kind, label] of Object.entries(groups)) {
    const cols = (ds.obs || []).filter((c) => c.kind === kind);
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
  const n = ds.n_cells;
  $("size-input").value = String(defaultPointSize(n));
  $("opacity-input").value = n > 300000 ? "0.7" : "0.85";
  applyStyle(viewer);
  geneIndex.show(ds.gene_index);
}

function applyStyle(viewer) {
  const size = Number($("size-input").value);
  const opacity = Number($("opacity-input").value);
  $("size-value").textContent = String(size);
  $("opacity-value").textContent = opacity.toFixed(2);
  viewer.renderer.setStyle({ pointSize: size, opacity });
}

function applyTheme(renderer) {
  renderer.setStyle({ background: cssColor("--plot-bg"), plain: cssColor("--plot-plain") });
}

function showColoring(viewer, legend) {
  const c = viewer.coloring;
  $("embedding-select").value = viewer.embedding ? viewer.embedding.key : "";
  $("color-select").value = c.type === "categorical" || c.type === "continuous" ? c.key : "";
  $("source-select").value = viewer.source || "";
  if (c.type !== "gene" && document.activeElement !== $("gene-input")) $("gene-input").value = "";
  if (c.type === "gene") $("gene-input").value = c.key;
  const title = $("legend-title");
  if (c.type === "categorical") {
    title.textContent = c.key;
    legend.showCategorical(c.categories, c.counts, c.colors, c.shown, c.nMissing, viewer.missingShown);
  } else if (c.type === "continuous" || c.type === "gene") {
    title.textContent = c.type === "gene" ? `${c.key} expression${c.source ? ` (${c.source})` : ""}` : c.key;
    legend.showContinuous(c.min, c.max, viewer.colormap, c.nMissing);
  } else {
    title.textContent = "";
    legend.clear();
  }
}

function showSelection(viewer) {
  const sel = viewer.selection;
  $("selection").hidden = !sel;
  if (sel) $("selection-count").textContent = `${fmt.format(sel.count)} cells selected`;
  $("only-selection").checked = viewer.onlySelection;
}

function showTooltip(viewer, hover) {
  const tip = $("tooltip");
  const index = hover && viewer.ds ? viewer.pick(hover.x, hover.y) : -1;
  if (index < 0) { tip.hidden = true; return; }
  const [head, key, value] = viewer.describe(index);
  tip.replaceChildren();
  const b = document.createElement("b");
  b.textContent = head;
  tip.append(b);
  if (key !== null) tip.append(document.createTextNode(` · ${key}: ${value}`));
  tip.style.left = `${hover.x + 14}px`;
  tip.style.top = `${hover.y + 14}px`;
  tip.hidden = false;
}

function setLasso(lasso, on) {
  lasso.setActive(on);
  $("lasso-button").setAttribute("aria-pressed", String(on));
  $("mode-hint").hidden = !on;
}

function bindKeys(viewer, lasso) {
  const help = $("help");
  document.addEventListener("keydown", (e) => {
    const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
    if (e.key === "Escape") {
      if (!help.hidden) help.hidden = true;
      else if (lasso.active) setLasso(lasso, false);
      $("tooltip").hidden = true;
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const size = $("size-input");
    const actions = {
      r: () => { viewer.renderer.camera.reset(); viewer.renderer.requestRender(); },
      l: () => setLasso(lasso, !lasso.active),
      c: () => viewer.clearSelection(),
      s: () => viewer.selection && viewer.setOnlySelection(!viewer.onlySelection),
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
  let viewer;
  const legend = new Legend($("legend"), {
    onToggle: (i) => viewer.toggleCategory(i),
    onIsolate: (i) => viewer.isolateCategory(i),
    onSetAll: (show) => viewer.setAllCategories(show),
    onToggleMissing: () => viewer.toggleMissing(),
    onColormap: (name) => viewer.setColormap(name),
  });
  const geneIndex = new GeneIndexStatus($("gene-index"), () => api.getGeneIndex(viewer.ds));
  viewer = new Viewer(renderer, {
    progress,
    legend,
    toast,
    onDataset: (v) => fillDatasetControls(v, geneIndex),
    onChange: (v) => {
      showColoring(v, legend);
      if (v.coloring.type === "gene") geneIndex.refresh();  // a gene read may start a build
    },
    onSelection: showSelection,
    onError: (title, message) => showError(errorPanel, title, message),
  });
  window.cellucidViewer = viewer;

  new ResizeObserver(() => renderer.resize()).observe($("stage"));
  renderer.resize();
  attachInteraction($("plot"), renderer, (hover) => showTooltip(viewer, hover));
  const lasso = new Lasso($("lasso-overlay"), (polygon) => viewer.lassoSelect(polygon));
  bindKeys(viewer, lasso);

  $("dataset-select").onchange = (e) => { window.location.search = `?dataset=${encodeURIComponent(e.target.value)}`; };
  $("embedding-select").onchange = (e) => viewer.setEmbedding(e.target.value);
  $("color-select").onchange = (e) => viewer.colorByObs(e.target.value === "" ? null : e.target.value);
  $("source-select").onchange = (e) => viewer.setSource(e.target.value);
  $("size-input").oninput = () => applyStyle(viewer);
  $("opacity-input").oninput = () => applyStyle(viewer);
  $("reset-button").onclick = () => { renderer.camera.reset(); renderer.requestRender(); };
  $("lasso-button").onclick = () => setLasso(lasso, !lasso.active);
  $("clear-selection").onclick = () => viewer.clearSelection();
  $("only-selection").onchange = (e) => viewer.setOnlySelection(e.target.checked);
  $("error-retry").onclick = () => window.location.reload();
  $("error-close").onclick = () => hideError(errorPanel);
  attachWebAppButton($("webapp-section"), $("webapp-button"), toast);
  for (const button of document.querySelectorAll("button.export")) {
    button.onclick = async () => {
      const scale = Number(button.dataset.scale);
      const name = `${viewer.ds ? viewer.ds.id : "cellucid"}-${viewer.embedding ? viewer.embedding.key : "plot"}@${scale}x.png`;
      try {
        toast(await exportPng(renderer, scale, name));
      } catch (err) {
        showError(errorPanel, "Export failed", err.message || String(err));
      }
    };
  }
  new GeneSearch($("gene-input"), $("gene-list"),
    (q) => api.searchGenes(viewer.ds, q, viewer.source).finally(() => geneIndex.refresh()),
    (name) => viewer.colorByGene(name));

  viewer.open(readUrlState());
}

boot();
