// The legend under "Colour by": category rows (swatch, name, count; click hides or
// shows, double-click isolates) or, for numbers, a colour bar with its range.

import { COLORMAPS, colormapCss, rgbToCss, MISSING_RGB } from "./colors.js";

const FILTER_FROM = 30;
const fmtCount = new Intl.NumberFormat();

export function formatNumber(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Legend {
  /** handlers: onToggle(i), onIsolate(i), onSetAll(shown), onToggleMissing(), onColormap(name) */
  constructor(container, handlers) {
    this.container = container;
    this.handlers = handlers;
    this.rows = [];
    this.missingRow = null;
  }

  clear() {
    this.container.replaceChildren();
    this.rows = [];
    this.missingRow = null;
  }

  showCategorical(categories, counts, colors, shown, nMissing, missingShown) {
    this.clear();
    const tools = el("div", "legend-tools");
    const all = el("button", "link", "Show all");
    const none = el("button", "link", "Hide all");
    all.onclick = () => this.handlers.onSetAll(true);
    none.onclick = () => this.handlers.onSetAll(false);
    tools.append(el("span", "muted", `${categories.length} categories`), all, none);
    this.container.append(tools);
    let filter = null;
    if (categories.length > FILTER_FROM) {
      filter = el("input", "legend-filter");
      filter.type = "search";
      filter.placeholder = "Filter categories";
      filter.setAttribute("aria-label", "Filter categories");
      this.container.append(filter);
    }
    const list = el("ul", "legend-list");
    list.setAttribute("role", "list");
    categories.forEach((name, i) => {
      const row = this.row(rgbToCss(colors[i]), String(name), counts ? counts[i] : null);
      row.dataset.index = String(i);
      row.onclick = () => this.handlers.onToggle(i);
      row.ondblclick = (e) => { e.preventDefault(); this.handlers.onIsolate(i); };
      list.append(row);
      this.rows.push(row);
    });
    if (nMissing > 0) list.append(this.addMissingRow(nMissing));
    this.container.append(list);
    if (filter) {
      filter.oninput = () => {
        const q = filter.value.trim().toLowerCase();
        this.rows.forEach((row, i) => { row.hidden = q !== "" && !String(categories[i]).toLowerCase().includes(q); });
      };
    }
    this.updateShown(shown, missingShown);
  }

  row(color, name, count) {
    const row = el("li", "legend-row");
    row.tabIndex = 0;
    row.title = "Click to hide or show, double-click to show only this";
    row.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); row.click(); } };
    const swatch = el("span", "swatch");
    swatch.style.background = color;
    row.append(swatch, el("span", "legend-name", name));
    if (count !== null && count !== undefined) row.append(el("span", "legend-count", fmtCount.format(count)));
    return row;
  }

  /** The "missing" row (click hides or shows cells without a value), kept as this.missingRow. */
  addMissingRow(nMissing) {
    this.missingRow = this.row(rgbToCss(MISSING_RGB), "missing", nMissing);
    this.missingRow.classList.add("missing");
    this.missingRow.onclick = () => this.handlers.onToggleMissing();
    return this.missingRow;
  }

  updateShown(shown, missingShown) {
    this.rows.forEach((row, i) => row.classList.toggle("off", !shown[i]));
    if (this.missingRow) this.missingRow.classList.toggle("off", !missingShown);
  }

  showContinuous(min, max, colormap, nMissing) {
    this.clear();
    const bar = el("div", "colorbar");
    bar.style.background = colormapCss(colormap);
    const labels = el("div", "colorbar-labels");
    labels.append(el("span", "cb-min", formatNumber(min)), el("span", "cb-max", formatNumber(max)));
    const select = el("select", "colormap-select");
    select.setAttribute("aria-label", "Colour map");
    for (const name of Object.keys(COLORMAPS)) {
      const option = el("option", "", name);
      option.value = name;
      option.selected = name === colormap;
      select.append(option);
    }
    select.onchange = () => this.handlers.onColormap(select.value);
    const line = el("label", "inline", "Colour map ");
    line.append(select);
    this.container.append(bar, labels, line);
    if (nMissing > 0) {
      const list = el("ul", "legend-list");
      list.append(this.addMissingRow(nMissing));
      this.container.append(list);
    }
  }
}
