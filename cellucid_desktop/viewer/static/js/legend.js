// The legend under "Colour by". Categories: rows with swatch, full name (wrapped, never
// cut), count (and how many of them are selected); click hides or shows, double-click
// isolates, the row's Select button selects its cells. Numbers: the colour bar, drawn
// from the very lookup table the plot's shader uses, and the scale controls (colour map,
// percentile clip, min/max, log, zeros in grey).

import { COLORMAPS, colormapLut, rgbToCss, MISSING_RGB } from "./colors.js";
import { CLIPS, logAllowed } from "./color-scale.js";

const FILTER_FROM = 30;
const fmtCount = new Intl.NumberFormat();

export function formatNumber(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function labelled(text, control) {
  const label = el("label", "inline", text);
  label.append(control);
  return label;
}

function optionsOf(select, entries, value) {
  select.replaceChildren(...entries.map(([v, text]) => {
    const o = el("option", "", text);
    o.value = v;
    return o;
  }));
  select.value = value;
  return select;
}

export class Legend {
  /**
   * handlers: onToggle(i), onIsolate(i), onSetAll(shown), onToggleMissing(), onSelect(i, event),
   * onColormap(name), onScale(changes), onZeros(on)
   */
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
      const pick = el("button", "legend-select", "Select");
      pick.type = "button";
      pick.title = `Select the cells of ${name} (Shift adds to the selection, Alt removes)`;
      pick.onclick = (e) => { e.stopPropagation(); this.handlers.onSelect(i, e); };
      pick.ondblclick = (e) => e.stopPropagation();
      row.append(pick);
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
    row.title = `${name}\nClick to hide or show, double-click to show only this`;
    row.onkeydown = (e) => { if (e.target === row && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); row.click(); } };
    const swatch = el("span", "swatch");
    swatch.style.background = color;
    row.append(swatch, el("span", "legend-name", name));
    if (count !== null && count !== undefined) {
      const counter = el("span", "legend-count", fmtCount.format(count));
      counter.dataset.total = String(count);
      row.append(counter);
    }
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

  /** Selected cells per category (index = code, last = missing), or null: "selected / all". */
  updateSelected(selected) {
    const rows = this.missingRow ? [...this.rows, this.missingRow] : this.rows;
    rows.forEach((row, i) => {
      const count = row.querySelector(".legend-count");
      if (!count) return;
      const total = Number(count.dataset.total);
      const k = selected ? (row === this.missingRow ? selected[selected.length - 1] : selected[i]) : 0;
      count.textContent = selected ? `${fmtCount.format(k)} / ${fmtCount.format(total)}` : fmtCount.format(total);
      count.classList.toggle("has-selected", k > 0);
    });
  }

  /**
   * The colour bar and scale controls. view: { colormap, scale: {lo, hi, log, clipped},
   * settings: {clip, vmin, vmax, log}, min, max, nMissing, expression, zerosGrey, zeroCss }
   */
  showContinuous(view) {
    this.clear();
    const { scale, settings } = view;
    const bar = el("canvas", "colorbar");
    bar.width = 256;
    bar.height = 1;
    bar.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(colormapLut(view.colormap)), 256, 1), 0, 0);
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", `Colour bar, ${view.colormap}`);
    const labels = el("div", "colorbar-labels");
    labels.append(
      el("span", "cb-min", `${scale.clipped[0] ? "≤ " : ""}${formatNumber(scale.lo)}`),
      el("span", "cb-scale muted", scale.log ? "log scale" : ""),
      el("span", "cb-max", `${scale.clipped[1] ? "≥ " : ""}${formatNumber(scale.hi)}`));
    this.container.append(bar, labels);

    const cmap = optionsOf(el("select", "colormap-select"), Object.keys(COLORMAPS).map((n) => [n, n]), view.colormap);
    cmap.setAttribute("aria-label", "Colour map");
    cmap.onchange = () => this.handlers.onColormap(cmap.value);
    const clip = optionsOf(el("select", "clip-select"),
      [["", "min – max"], ...Object.entries(CLIPS).map(([k, [a, b]]) => [k, `${a}–${b}th percentile`])], settings.clip || "");
    clip.setAttribute("aria-label", "Colour range");
    clip.onchange = () => this.handlers.onScale({ clip: clip.value || null, vmin: null, vmax: null });
    const bound = (cls, key, value, hint) => {
      const input = el("input", cls);
      input.type = "number";
      input.step = "any";
      input.placeholder = formatNumber(hint);
      input.value = Number.isFinite(value) ? String(value) : "";
      input.setAttribute("aria-label", key === "vmin" ? "Colour range minimum" : "Colour range maximum");
      input.onchange = () => this.handlers.onScale({ [key]: input.value === "" ? null : Number(input.value) });
      return input;
    };
    const range = el("div", "scale-range");
    range.append(bound("vmin-input", "vmin", settings.vmin, scale.lo), el("span", "muted", "to"), bound("vmax-input", "vmax", settings.vmax, scale.hi));
    const log = el("input", "log-input");
    log.type = "checkbox";
    log.checked = scale.log;
    log.disabled = !logAllowed(scale.lo);
    log.onchange = () => this.handlers.onScale({ log: log.checked });
    const logLabel = labelled("", log);
    logLabel.append(" Log scale");
    if (log.disabled) logLabel.title = "A log scale needs values of 0 or more";
    const tools = el("div", "scale-tools");
    tools.append(labelled("Map ", cmap), labelled("Range ", clip), range, logLabel);
    if (view.expression) {
      const zeros = el("input", "zeros-input");
      zeros.type = "checkbox";
      zeros.checked = view.zerosGrey;
      zeros.onchange = () => this.handlers.onZeros(zeros.checked);
      const zerosLabel = labelled("", zeros);
      zerosLabel.append(" Zeros in grey");
      zerosLabel.title = "Cells where nothing was detected in a neutral colour that stands out on light and dark backgrounds";
      tools.append(zerosLabel);
    }
    this.container.append(tools);
    if (view.nMissing > 0) {
      const list = el("ul", "legend-list");
      list.append(this.addMissingRow(view.nMissing));
      this.container.append(list);
    }
  }
}
