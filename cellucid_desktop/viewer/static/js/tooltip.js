// The hover tooltip: at once the cell's row and the value it is coloured by, then (one
// request per cell, remembered) its barcode and the columns chosen under "Tooltip
// columns" (kept per dataset in this browser's storage).

import * as api from "./api.js";
import { el } from "./legend.js";

const CACHE = 256;

export class Tooltip {
  constructor(box, checklist, viewer) {
    this.box = box;
    this.checklist = checklist;
    this.viewer = viewer;
    this.cache = new Map();
    this.index = -1;
    this.columns = [];
    this.unsupported = false;
  }

  storeKey() {
    return `cellucid.tooltipColumns.${this.viewer.ds.id}`;
  }

  /** A dataset (re)loaded: the checklist of its obs columns, the chosen ones ticked. */
  datasetChanged() {
    const keys = (this.viewer.ds.obs || []).map((c) => c.key);
    try {
      const saved = JSON.parse(localStorage.getItem(this.storeKey()) || "[]");
      this.columns = Array.isArray(saved) ? saved.filter((k) => keys.includes(k)) : [];
    } catch (err) {
      this.columns = this.columns.filter((k) => keys.includes(k));
    }
    this.checklist.replaceChildren(...keys.map((key) => {
      const box = el("input");
      box.type = "checkbox";
      box.value = key;
      box.checked = this.columns.includes(key);
      box.onchange = () => this.choose(key, box.checked);
      const label = el("label", "inline");
      label.append(box, ` ${key}`);
      return label;
    }));
    if (!keys.length) this.checklist.append(el("div", "muted", "This dataset has no obs columns."));
    this.cache.clear();
  }

  choose(key, on) {
    this.columns = on ? [...this.columns.filter((k) => k !== key), key] : this.columns.filter((k) => k !== key);
    try { localStorage.setItem(this.storeKey(), JSON.stringify(this.columns)); } catch (err) { /* kept for this page only */ }
    this.cache.clear();
  }

  hide() {
    this.box.hidden = true;
    this.index = -1;
  }

  /** Show cell `index` at CSS pixel (x, y) of the stage; -1 hides. */
  show(index, x, y) {
    if (index < 0) { this.hide(); return; }
    this.box.style.left = `${x + 14}px`;
    this.box.style.top = `${y + 14}px`;
    if (index === this.index && !this.box.hidden) return;
    this.index = index;
    this.render(index, this.cache.get(this.cacheKey(index)) || null);
    this.box.hidden = false;
    if (!this.unsupported && !this.cache.has(this.cacheKey(index))) this.fetch(index);
  }

  cacheKey(index) {
    return `${index}:${this.columns.join(",")}`;
  }

  async fetch(index) {
    const key = this.cacheKey(index);
    let cell;
    try {
      cell = await api.getCell(this.viewer.ds, index, this.columns);
    } catch (err) {
      if (err.status === 404 && /no route/i.test(err.message)) this.unsupported = true;  // an older server
      return;
    }
    this.cache.set(key, cell);
    if (this.cache.size > CACHE) this.cache.delete(this.cache.keys().next().value);
    if (this.index === index && !this.box.hidden) this.render(index, cell);
  }

  render(index, cell) {
    const head = el("div", "tooltip-head");
    head.append(el("b", "", cell && cell.name !== undefined ? String(cell.name) : `Cell ${index.toLocaleString()}`));
    if (cell && cell.name !== undefined) head.append(el("span", "muted", ` · row ${index.toLocaleString()}`));
    const lines = [head];
    const described = this.viewer.describe(index);
    const shown = new Set();
    if (described) {
      lines.push(el("div", "", `${described[0]}: ${described[1]}`));
      shown.add(described[0]);
    }
    if (cell && cell.obs) {
      for (const key of this.columns) {
        if (shown.has(key) || !(key in cell.obs)) continue;
        const value = cell.obs[key];
        lines.push(el("div", "", `${key}: ${value === null ? "missing" : typeof value === "number" ? Number(value.toPrecision(6)) : value}`));
      }
    }
    this.box.replaceChildren(...lines);
  }
}
