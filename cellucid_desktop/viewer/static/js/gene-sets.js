// Gene sets: several genes (typed or pasted, any separator) coloured at once as their mean
// or as scanpy's module score, computed by the server; named sets are kept in this
// browser's storage (for every dataset: a marker list is biology, not one file) and a
// shown set is in the URL, so a bookmark brings it back.

import { el } from "./legend.js";
import { parseGeneList } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const STORE = "cellucid.geneSets";

function load() {
  try {
    const sets = JSON.parse(localStorage.getItem(STORE) || "[]");
    return Array.isArray(sets) ? sets.filter((s) => s && typeof s.name === "string" && Array.isArray(s.genes)) : [];
  } catch (err) {
    return [];  // storage off (private window) or damaged: start with none
  }
}

function store(sets) {
  try {
    localStorage.setItem(STORE, JSON.stringify(sets));
    return true;
  } catch (err) {
    return false;
  }
}

export class GeneSets {
  constructor(viewer, ui) {
    this.viewer = viewer;
    this.ui = ui;
    this.sets = load();
    this.shown = null;
    $("geneset-apply").onclick = () => this.apply();
    $("geneset-keep").onclick = () => this.keep();
    $("geneset-genes").onkeydown = (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.apply(); } };
    this.render();
  }

  current() {
    return { genes: parseGeneList($("geneset-genes").value), name: $("geneset-name").value.trim() || null, method: $("geneset-method").value };
  }

  apply() {
    const { genes, name, method } = this.current();
    if (!genes.length) { this.ui.toast("Type or paste gene names first (any separator)."); return null; }
    return this.viewer.colorByGeneSet(genes, method, name);
  }

  keep() {
    const { genes, name, method } = this.current();
    if (!genes.length) { this.ui.toast("Type or paste gene names first (any separator)."); return; }
    const label = name || `Set ${this.sets.length + 1}`;
    this.sets = [...this.sets.filter((s) => s.name !== label), { name: label, genes, method }];
    $("geneset-name").value = label;
    if (!store(this.sets)) this.ui.toast("This window cannot store data; the set is kept until it closes.");
    this.render();
  }

  /** Show a set coloured from elsewhere (the URL, the kept list) in the form, once. */
  showColoring(coloring) {
    if (coloring.type !== "geneset" || coloring === this.shown) return;
    this.shown = coloring;
    $("geneset-genes").value = coloring.genes.join(", ");
    $("geneset-name").value = coloring.name || "";
    $("geneset-method").value = coloring.method;
    $("gene-sets").open = true;
  }

  render() {
    $("geneset-list").replaceChildren(...this.sets.map((s, i) => {
      const li = el("li", "kept-row");
      const name = el("button", "link kept-name", s.name);
      name.title = `${s.method === "score" ? "Module score" : "Mean"} of ${s.genes.join(", ")}`;
      name.onclick = () => {
        $("geneset-genes").value = s.genes.join(", ");
        $("geneset-name").value = s.name;
        $("geneset-method").value = s.method;
        this.viewer.colorByGeneSet(s.genes, s.method, s.name);
      };
      const forget = el("button", "link kept-forget", "×");
      forget.setAttribute("aria-label", `Forget gene set ${s.name}`);
      forget.onclick = () => { this.sets.splice(i, 1); store(this.sets); this.render(); };
      li.append(name, el("span", "legend-count", `${s.genes.length} genes`), forget);
      return li;
    }));
  }
}
