// The viewer's model: which dataset, embedding and colouring are shown, loading them
// from the API, handing typed arrays to the renderer, and keeping the URL and the
// automation status (loading / ready / error) in step with what is on screen.

import * as api from "./api.js";
import { categoryColor } from "./colors.js";
import { formatNumber } from "./legend.js";
import { selectInPolygon } from "./lasso.js";
import { SpatialGrid } from "./spatial-grid.js";
import { setViewerState } from "./status.js";
import { writeUrlState } from "./url-state.js";

const MAX_AUTO_CATEGORIES = 256;

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

export class Viewer {
  /** ui: { progress, legend, onChange(viewer), onSelection(viewer), onError(title, message), toast(text) } */
  constructor(renderer, ui) {
    this.renderer = renderer;
    this.ui = ui;
    this.ds = null;
    this.datasets = null;
    this.grid = null;
    this.embedding = null;
    this.coloring = { type: "none" };
    this.colormap = "viridis";
    this.source = null;
    this.selection = null;
    this.onlySelection = false;
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
      let coloring;
      if (state.gene) coloring = this.loadGene(state.gene, this.source);
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
      this.showColoring(loaded);
      this.datasets = await listed;
      this.ui.onDataset(this);
      await this.finish(generation);
    } catch (err) {
      const title = this.ds ? "Could not show the dataset" : "Could not open the dataset";
      this.fail(generation, title, err);
    }
  }

  loadEmbedding(key) {
    return this.ui.progress.track(`Loading ${key} (${this.ds.n_cells.toLocaleString()} cells)…`,
      (update) => api.getEmbedding(this.ds, key, (a, b) => update(a / b))).then((data) => ({ key, ...data }));
  }

  showEmbedding(embedding) {
    this.embedding = embedding;
    this.grid = null;  // built on the first hover
    this.renderer.setPositions(embedding.positions, embedding.dims);
    this.renderer.setSelection(this.selection && this.selection.flags, this.onlySelection ? 2 : 1);
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

  showColoring(coloring) {
    this.coloring = coloring;
    this.missingShown = true;
    this.renderer.setStyle({ missingVisible: true });
    if (coloring.type === "categorical") {
      this.renderer.setCategorical(coloring.values);
      this.renderer.setCategoryColors(coloring.colors, coloring.shown);
    } else if (coloring.type === "continuous" || coloring.type === "gene") {
      const min = Number.isFinite(coloring.min) ? coloring.min : 0;
      const max = Number.isFinite(coloring.max) ? coloring.max : 1;
      this.renderer.setContinuous(coloring.values, min, max);
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

  setSource(source) {
    this.source = source;
    if (this.coloring.type === "gene") return this.colorByGene(this.coloring.key, source);
    this.syncUrl();
    return Promise.resolve();
  }

  // --- category visibility -------------------------------------------------------------

  updateCategories() {
    const c = this.coloring;
    this.renderer.setCategoryColors(c.colors, c.shown);
    this.ui.legend.updateShown(c.shown, this.missingShown);
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

  setColormap(name) {
    this.colormap = name;
    this.renderer.setColormap(name);
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
    if (c.type === "continuous" || c.type === "gene") {
      const v = c.values;
      return (i) => (v[i] === v[i] || missing) && (!sel || sel[i] === 1);
    }
    return sel ? (i) => sel[i] === 1 : () => true;
  }

  lassoSelect(polygon) {
    const canvas = this.renderer.canvas;
    const screen = this.renderer.projectAll();
    this.selection = selectInPolygon(polygon, screen, canvas.clientWidth, canvas.clientHeight, this.isVisible());
    this.renderer.setSelection(this.selection.flags, this.onlySelection ? 2 : 1);
    this.ui.onSelection(this);
  }

  setOnlySelection(only) {
    this.onlySelection = only;
    if (this.selection) this.renderer.setSelection(this.selection.flags, only ? 2 : 1);
    this.ui.onSelection(this);
  }

  clearSelection() {
    this.selection = null;
    this.onlySelection = false;
    this.renderer.setSelection(null, 0);
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

  describe(index) {
    const c = this.coloring;
    const head = `Cell ${index.toLocaleString()}`;
    if (c.type === "categorical") {
      const code = c.values[index];
      return [head, c.key, code === 65535 ? "missing" : String(c.categories[code])];
    }
    if (c.type === "continuous" || c.type === "gene") {
      const v = c.values[index];
      return [head, c.key, Number.isNaN(v) ? "missing" : formatNumber(v)];
    }
    return [head, null, null];
  }

  syncUrl() {
    if (!this.ds) return;
    const c = this.coloring;
    const sourceInUrl = c.type === "gene" || this.source !== (this.ds.default_source || null);
    writeUrlState({
      dataset: this.ds.id,
      embedding: this.embedding ? this.embedding.key : null,
      color: c.type === "gene" ? null : c.type === "none" ? "" : c.key,
      gene: c.type === "gene" ? c.key : null,
      source: sourceInUrl ? this.source : null,
    });
  }
}
