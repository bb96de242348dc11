// The viewer's model: which dataset, embedding, colouring and colour scale are shown and
// which cells are selected; loading from the API, handing typed arrays to the renderer,
// and keeping the URL and the automation status (loading / ready / error) in step with
// what is on screen.

import * as api from "./api.js";
import { categoryColor, colormapLut, COLORMAPS } from "./colors.js";
import { CLIPS, resolveScale } from "./color-scale.js";
import { formatNumber } from "./legend.js";
import { categoryAnchors } from "./labels.js";
import { selectInPolygon } from "./lasso.js";
import { boundingBox, categoryFlags, combine, invert, rangeFlags } from "./selection.js";
import { SpatialGrid } from "./spatial-grid.js";
import { setViewerState } from "./status.js";
import { writeUrlState } from "./url-state.js";

const MAX_AUTO_CATEGORIES = 256;
const GENE_SET_METHODS = ["mean", "score"];

/** Colourings drawn with a colour map (numbers) rather than category colours. */
export const isContinuous = (c) => c.type === "continuous" || c.type === "gene" || c.type === "geneset";

/** Expression colourings, where an exact zero means "not detected" (a gene set's score can be anything). */
const isExpression = (c) => c.type === "gene" || (c.type === "geneset" && c.method === "mean");

const DEFAULT_SCALE = { vmin: null, vmax: null, clip: null, log: false };

/** The column to colour by when the URL names none: the first categorical one. */
function autoColor(ds) {
  const col = (ds.obs || []).find((c) => (c.kind === "categorical" || c.kind === "boolean") && c.n_categories >= 2
    && c.n_categories <= MAX_AUTO_CATEGORIES);
  return col ? col.key : null;
}

function pickEmbedding(ds, wanted) {
  const keys = (ds.embeddings || []).map((e) => e.key);
  if (wanted && keys.includes(wanted)) return wanted;
  if (ds.default_embedding && keys.includes(ds.default_embedding)) return ds.default_embedding;
  return keys[0] || null;
}

/** Gene names from pasted or typed text: commas, spaces, tabs, new lines or semicolons apart. */
export const parseGeneList = (text) => [...new Set(String(text || "").split(/[\s,;]+/).map((g) => g.trim()).filter(Boolean))];

function scaleFromState(state) {
  const number = (v) => (v === null || v === "" || !Number.isFinite(Number(v)) ? null : Number(v));
  return {
    vmin: number(state.vmin),
    vmax: number(state.vmax),
    clip: state.clip && CLIPS[state.clip] ? state.clip : null,
    log: state.log === "1",
  };
}

export class Viewer {
  /** ui: { progress, onChange(viewer), onSelection(viewer), onDataset(viewer), onError(title, message), toast(text) } */
  constructor(renderer, ui) {
    this.renderer = renderer;
    this.ui = ui;
    this.ds = null;
    this.datasets = null;
    this.grid = null;
    this.embedding = null;
    this.coloring = { type: "none" };
    this.colormap = "viridis";
    this.scaleSettings = { ...DEFAULT_SCALE };
    this.scale = null;
    this.zerosGrey = true;
    this.missingShown = true;
    this.source = null;
    this.selection = null;
    this.kept = [];
    this.onlySelection = false;
    this.labelsOn = false;
    this.anchorCache = null;
    this.generation = 0;
  }

  begin() {
    setViewerState("loading");
    return ++this.generation;
  }

  async finish(generation) {
    this.syncUrl();
    this.ui.onChange(this);
    await this.renderer.drawn();
    if (generation === this.generation) setViewerState("ready");
  }

  fail(generation, title, err) {
    if (generation !== this.generation) return;
    this.ui.onError(title, err && err.message ? err.message : String(err));
  }

  /** First load: dataset, embedding and colouring from the URL state, fetched in parallel. */
  async open(state) {
    const generation = this.begin();
    try {
      let id = state.dataset;
      if (!id) {
        const all = await this.ui.progress.track("Loading the dataset list…", () => api.listDatasets());
        if (!all.length) throw new api.ApiError("This server has no dataset open; open an .h5ad file in Cellucid Desktop first.");
        id = all[0].id;
        this.datasets = all;
      }
      const listed = this.datasets ? Promise.resolve(this.datasets) : api.listDatasets().catch(() => []);
      const ds = await this.ui.progress.track("Loading dataset…", () => api.getDataset(id));
      this.ds = ds;
      const key = pickEmbedding(ds, state.embedding);
      if (!key) throw new api.ApiError(`Dataset "${ds.name}" has no 2D or 3D embedding (obsm) to draw.`);
      if (state.embedding && state.embedding !== key) this.ui.toast(`Embedding "${state.embedding}" is not in this dataset; showing "${key}".`);
      const sources = (ds.expression_sources || []).map((s) => s.id);
      this.source = state.source && sources.includes(state.source) ? state.source : ds.default_source || sources[0] || null;
      if (state.cmap && COLORMAPS[state.cmap]) this.setColormap(state.cmap, false);
      this.labelsOn = state.labels === "1";
      let coloring;
      if (state.geneset) {
        const method = GENE_SET_METHODS.includes(state.setmethod) ? state.setmethod : "mean";
        coloring = this.loadGeneSet(parseGeneList(state.geneset), method, this.source, state.setname);
      } else if (state.gene) coloring = this.loadGene(state.gene, this.source);
      else if (state.color === "") coloring = Promise.resolve({ type: "none" });
      else {
        const obsKey = state.color !== null ? state.color : autoColor(ds);
        coloring = obsKey === null ? Promise.resolve({ type: "none" }) : this.loadObs(obsKey);
      }
      // a stale link (column or gene no longer there) still opens the plot, uncoloured
      coloring = coloring.catch((err) => {
        if (err.status !== 404) throw err;
        this.ui.toast(err.message);
        return { type: "none" };
      });
      const [embedding, loaded] = await Promise.all([this.loadEmbedding(key), coloring]);
      this.showEmbedding(embedding);
      this.scaleSettings = scaleFromState(state);
      this.showColoring(loaded, true);
      this.datasets = await listed;
      this.ui.onDataset(this);
      await this.finish(generation);
    } catch (err) {
      const title = this.ds ? "Could not show the dataset" : "Could not open the dataset";
      this.fail(generation, title, err);
    }
  }

  /** The dataset document again (after saving a selection column: it lists the new column). */
  async reloadDataset() {
    this.ds = await api.getDataset(this.ds.id);
    this.ui.onDataset(this);
    this.ui.onChange(this);
  }

  loadEmbedding(key) {
    return this.ui.progress.track(`Loading ${key} (${this.ds.n_cells.toLocaleString()} cells)…`,
      (update) => api.getEmbedding(this.ds, key, (a, b) => update(a / b))).then((data) => ({ key, ...data }));
  }

  showEmbedding(embedding) {
    this.embedding = embedding;
    this.grid = null;  // built on the first hover
    this.anchorCache = null;
    this.renderer.setPositions(embedding.positions, embedding.dims);
    this.renderer.setSelection(this.selection && this.selection.flags, this.onlySelection ? 2 : 1);
    if (this.onlySelection) this.fitToSelection();
  }

  async loadObs(key) {
    const { meta, values } = await this.ui.progress.track(`Loading ${key}…`,
      (update) => api.getObsColumn(this.ds, key, (a, b) => update(a / b)));
    if (meta.dtype === "float32") return { type: "continuous", key, meta, values, min: meta.min, max: meta.max, nMissing: meta.n_missing || 0 };
    const categories = meta.categories || (meta.kind === "boolean" ? ["False", "True"] : []);
    return {
      type: "categorical", key, meta, values, categories,
      counts: meta.counts || null,
      colors: categories.map((_, i) => categoryColor(i)),
      shown: categories.map(() => true),
      nMissing: meta.n_missing || 0,
    };
  }

  async loadGene(name, source) {
    const gene = await this.ui.progress.track(`Loading expression of ${name}…`,
      (update) => api.getGene(this.ds, name, source, (a, b) => update(a / b)));
    return { type: "gene", key: name, source, values: gene.values, min: gene.min, max: gene.max, nMissing: 0 };
  }

  async loadGeneSet(genes, method, source, name) {
    if (!genes.length) throw new api.ApiError("The gene set is empty; type or paste gene names first.");
    const set = await this.ui.progress.track(`Computing the ${method === "score" ? "module score" : "mean"} of ${genes.length} genes…`,
      () => api.getGeneSet(this.ds, genes, method, source));
    if (set.missing.length) this.ui.toast(`Not in this dataset: ${set.missing.join(", ")}; using ${set.used.length} of ${genes.length} genes.`);
    const label = name || (genes.length <= 3 ? genes.join(", ") : `${genes.slice(0, 3).join(", ")} +${genes.length - 3}`);
    return { type: "geneset", key: label, name: name || null, genes, used: set.used, missing: set.missing, method, source,
      values: set.values, min: set.min, max: set.max, nMissing: 0 };
  }

  /** keepScale: the scale settings already set (from the URL) apply to this colouring. */
  showColoring(coloring, keepScale = false) {
    this.coloring = coloring;
    this.anchorCache = null;
    if (!keepScale) this.scaleSettings = { ...DEFAULT_SCALE };
    this.missingShown = true;
    this.renderer.setStyle({ missingVisible: true });
    if (coloring.type === "categorical") {
      this.renderer.setCategorical(coloring.values);
      this.renderer.setCategoryColors(coloring.colors, coloring.shown);
    } else if (isContinuous(coloring)) {
      const min = Number.isFinite(coloring.min) ? coloring.min : 0;
      const max = Number.isFinite(coloring.max) ? coloring.max : 1;
      this.renderer.setContinuous(coloring.values, min, max);
      this.applyScale();
    } else {
      this.renderer.setPlain();
    }
  }

  async run(title, job) {
    const generation = this.begin();
    try {
      await job(generation);
      if (generation === this.generation) await this.finish(generation);
    } catch (err) {
      this.fail(generation, title, err);
    }
  }

  setEmbedding(key) {
    return this.run("Could not load the embedding", async (generation) => {
      const embedding = await this.loadEmbedding(key);
      if (generation === this.generation) this.showEmbedding(embedding);
    });
  }

  /** Colour by an obs column; null for a single colour. */
  colorByObs(key) {
    return this.run("Could not load the column", async (generation) => {
      const coloring = key === null ? { type: "none" } : await this.loadObs(key);
      if (generation === this.generation) this.showColoring(coloring);
    });
  }

  colorByGene(name, source = this.source) {
    return this.run("Could not load the gene", async (generation) => {
      const coloring = await this.loadGene(name, source);
      if (generation === this.generation) {
        this.source = source;
        this.showColoring(coloring);
      }
    });
  }

  /** Colour by several genes at once: their mean, or scanpy's module score. */
  colorByGeneSet(genes, method = "mean", name = null, source = this.source) {
    return this.run("Could not compute the gene set", async (generation) => {
      const coloring = await this.loadGeneSet(genes, method, source, name);
      if (generation === this.generation) {
        this.source = source;
        this.showColoring(coloring);
      }
    });
  }

  setSource(source) {
    this.source = source;
    const c = this.coloring;
    if (c.type === "gene") return this.colorByGene(c.key, source);
    if (c.type === "geneset") return this.colorByGeneSet(c.genes, c.method, c.name, source);
    this.syncUrl();
    return Promise.resolve();
  }

  // --- colour scale ------------------------------------------------------------------------

  applyScale() {
    const c = this.coloring;
    if (!isContinuous(c)) { this.scale = null; return; }
    this.scale = resolveScale(c, this.scaleSettings);
    this.renderer.setScale(this.scale, this.zerosShown());
  }

  zerosShown() {
    return this.zerosGrey && isExpression(this.coloring);
  }

  /** Change part of the scale ({vmin, vmax, clip, log}); the plot, bar and URL follow. */
  setScale(changes) {
    Object.assign(this.scaleSettings, changes);
    this.applyScale();
    this.changed();
  }

  setZerosGrey(on) {
    this.zerosGrey = on;
    this.applyScale();
    this.changed();
  }

  setColormap(name, notify = true) {
    this.colormap = COLORMAPS[name] ? name : "viridis";
    this.renderer.setColormap(this.colormap);
    if (notify) this.changed();
  }

  /** A view setting changed (not the data): URL and controls follow, the frame is redrawn. */
  changed() {
    this.syncUrl();
    this.ui.onChange(this);
  }

  // --- category visibility -------------------------------------------------------------

  updateCategories() {
    const c = this.coloring;
    this.renderer.setCategoryColors(c.colors, c.shown);
    this.ui.legend.updateShown(c.shown, this.missingShown);
    this.ui.onCategories?.(this);
  }

  toggleCategory(i) {
    this.coloring.shown[i] = !this.coloring.shown[i];
    this.updateCategories();
  }

  isolateCategory(i) {
    const shown = this.coloring.shown;
    const alone = shown[i] && shown.every((s, j) => s === (j === i));
    shown.fill(alone);
    shown[i] = true;
    this.missingShown = alone;
    this.renderer.setStyle({ missingVisible: alone });
    this.updateCategories();
  }

  setAllCategories(show) {
    this.coloring.shown.fill(show);
    this.missingShown = show;
    this.renderer.setStyle({ missingVisible: show });
    this.updateCategories();
  }

  toggleMissing() {
    this.missingShown = !this.missingShown;
    this.renderer.setStyle({ missingVisible: this.missingShown });
    if (this.coloring.type === "categorical") this.updateCategories();
    else this.ui.legend.updateShown([], this.missingShown);
  }

  // --- labels ----------------------------------------------------------------------------

  setLabels(on) {
    this.labelsOn = on;
    this.changed();
  }

  /** The category labels to draw ({names, anchors, shown}), or null when off (unless
   * `force`: a figure may have them without the screen) or not categorical. */
  labels(force = false) {
    const c = this.coloring;
    if (!(this.labelsOn || force) || c.type !== "categorical" || !this.embedding) return null;
    if (!this.anchorCache) {
      const { positions, dims } = this.embedding;
      this.anchorCache = categoryAnchors(positions, dims, c.values, c.categories.length);
    }
    return { names: c.categories.map(String), anchors: this.anchorCache, shown: c.shown };
  }

  // --- selection -----------------------------------------------------------------------

  isVisible() {
    const c = this.coloring;
    const missing = this.missingShown;
    const sel = this.onlySelection && this.selection ? this.selection.flags : null;
    if (c.type === "categorical") {
      const shown = c.shown;
      const codes = c.values;
      return (i) => (codes[i] === 65535 ? missing : shown[codes[i]]) && (!sel || sel[i] === 1);
    }
    if (isContinuous(c)) {
      const v = c.values;
      return (i) => (v[i] === v[i] || missing) && (!sel || sel[i] === 1);
    }
    return sel ? (i) => sel[i] === 1 : () => true;
  }

  /** Combine new flags with the selection (mode: replace, add, subtract) and show it. */
  select(flags, mode = "replace") {
    const next = combine(this.selection, flags, mode);
    this.setSelection(next.count ? next : null);
  }

  setSelection(selection) {
    this.selection = selection;
    if (!selection && this.onlySelection) {  // nothing left to show only: back to every cell
      this.onlySelection = false;
      this.renderer.camera.reset();
    }
    this.renderer.setSelection(selection && selection.flags, this.onlySelection ? 2 : 1);
    if (this.onlySelection) this.fitToSelection();
    this.ui.onSelection(this);
  }

  lassoSelect(polygon, mode = "replace") {
    const canvas = this.renderer.canvas;
    const screen = this.renderer.projectAll();
    const { flags } = selectInPolygon(polygon, screen, canvas.clientWidth, canvas.clientHeight, this.isVisible());
    this.select(flags, mode);
  }

  /** Select the cells of categories `codes` of the current categorical colouring. */
  selectCategories(codes, mode = "replace") {
    if (this.coloring.type !== "categorical") return;
    this.select(categoryFlags(this.coloring.values, codes), mode);
  }

  /** Select cells whose `values` fall within bounds ({lo, hi, loOpen, hiOpen}). */
  selectRange(values, bounds, mode = "replace") {
    this.select(rangeFlags(values, bounds), mode);
  }

  invertSelection() {
    const next = invert(this.selection, this.ds.n_cells);
    this.setSelection(next.count ? next : null);
  }

  clearSelection() {
    this.setSelection(null);
  }

  setOnlySelection(only) {
    this.onlySelection = Boolean(only && this.selection);
    if (this.selection) this.renderer.setSelection(this.selection.flags, this.onlySelection ? 2 : 1);
    if (this.onlySelection) this.fitToSelection();
    else this.renderer.camera.reset();
    this.renderer.requestRender();
    this.ui.onSelection(this);
  }

  /** Frame the selected cells (the view "shows only the selection"). */
  fitToSelection() {
    const { positions, dims } = this.embedding;
    const box = boundingBox(positions, dims, this.selection.flags);
    if (!box) return;
    const { center, scale } = this.renderer.norm;
    const norm = (v, d) => (v - center[d]) * scale;
    const canvas = this.renderer.canvas;
    this.renderer.camera.fit({ lo: box.lo.map(norm), hi: box.hi.map(norm) }, canvas.clientWidth || 1, canvas.clientHeight || 1);
    this.renderer.requestRender();
  }

  /** Keep the current selection under a name (a copy: later selections do not change it). */
  keepSelection(name) {
    if (!this.selection) return null;
    const label = String(name || "").trim() || `Selection ${this.kept.length + 1}`;
    const entry = { name: label, flags: this.selection.flags, count: this.selection.count };
    const same = this.kept.findIndex((k) => k.name === label);
    if (same >= 0) this.kept[same] = entry; else this.kept.push(entry);
    this.ui.onSelection(this);
    return entry;
  }

  useKept(index, mode = "replace") {
    const entry = this.kept[index];
    if (entry) this.select(entry.flags, mode);
  }

  forgetKept(index) {
    this.kept.splice(index, 1);
    this.ui.onSelection(this);
  }

  // --- reporting -----------------------------------------------------------------------

  /** The visible cell under CSS pixel (x, y): a grid lookup in 2D, the GPU id pass in 3D. */
  pick(x, y) {
    const r = this.renderer;
    if (!this.embedding) return -1;
    if (r.dims === 3) return r.pickAt(x, y);
    if (!this.grid) this.grid = new SpatialGrid(r.positions, r.dims, r.norm);
    const { clientWidth: w, clientHeight: h } = r.canvas;
    const [nx, ny] = r.camera.unproject(x, y, w, h);
    const radius = Math.max(4, r.style.pointSize) / r.camera.pixelsPerUnit(w, h);
    return this.grid.nearest(nx, ny, radius, this.isVisible());
  }

  /** [key, value text] of the current colouring at cell `index`, or null without colouring. */
  describe(index) {
    const c = this.coloring;
    if (c.type === "categorical") {
      const code = c.values[index];
      return [c.key, code === 65535 ? "missing" : String(c.categories[code])];
    }
    if (isContinuous(c)) {
      const v = c.values[index];
      return [c.key, Number.isNaN(v) ? "missing" : formatNumber(v)];
    }
    return null;
  }

  /** What figure export needs to draw the legend (see figure.js). */
  legendModel() {
    const c = this.coloring;
    if (c.type === "categorical") return { type: "categorical", coloring: c, missingShown: this.missingShown };
    if (!isContinuous(c) || !this.scale) return null;
    const style = this.renderer.style;
    const css = (rgb) => `rgb(${rgb.map((v) => Math.round(v * 255)).join(", ")})`;
    return {
      type: "continuous",
      title: this.colorTitle() + (this.scale.log ? " (log scale)" : ""),
      scale: this.scale,
      lut: colormapLut(this.colormap),
      zero: this.zerosShown() ? css(style.zero) : null,
      missing: c.nMissing > 0 && this.missingShown ? css(style.missing) : null,
    };
  }

  /** A short title for what colours the cells. */
  colorTitle() {
    const c = this.coloring;
    if (c.type === "gene") return `${c.key}${c.source ? ` (${c.source})` : ""}`;
    if (c.type === "geneset") return `${c.key}: ${c.method === "score" ? "module score" : "mean"}`;
    return c.type === "none" ? "" : c.key;
  }

  syncUrl() {
    if (!this.ds) return;
    const c = this.coloring;
    const expression = c.type === "gene" || c.type === "geneset";
    const sourceInUrl = expression || this.source !== (this.ds.default_source || null);
    const s = this.scaleSettings;
    const continuous = isContinuous(c);
    writeUrlState({
      dataset: this.ds.id,
      embedding: this.embedding ? this.embedding.key : null,
      color: expression ? null : c.type === "none" ? "" : c.key,
      gene: c.type === "gene" ? c.key : null,
      geneset: c.type === "geneset" ? c.genes.join(",") : null,
      setmethod: c.type === "geneset" ? c.method : null,
      setname: c.type === "geneset" ? c.name : null,
      source: sourceInUrl ? this.source : null,
      cmap: this.colormap !== "viridis" ? this.colormap : null,
      log: continuous && this.scale && this.scale.log ? "1" : null,
      clip: continuous && s.clip ? s.clip : null,
      vmin: continuous && Number.isFinite(s.vmin) ? String(s.vmin) : null,
      vmax: continuous && Number.isFinite(s.vmax) ? String(s.vmax) : null,
      labels: this.labelsOn ? "1" : null,
    });
  }
}
