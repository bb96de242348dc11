// The gene box: ranked suggestions from the server as the user types (prefix or
// substring, any case), arrow keys to move, Enter to colour by the highlighted gene.
// Suggestions remember the text they answer: Enter on text typed since (still inside
// the debounce, or while its search runs) asks again and takes the best match of what is
// in the box, never a suggestion left from a shorter prefix.

const DEBOUNCE_MS = 120;

export class GeneSearch {
  /** search(q) -> Promise<{genes, total}>; onChoose(name) colours by that gene. */
  constructor(input, list, search, onChoose) {
    this.input = input;
    this.list = list;
    this.search = search;
    this.onChoose = onChoose;
    this.items = [];
    this.itemsFor = null;
    this.active = -1;
    this.seq = 0;
    this.timer = null;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("aria-expanded", "false");
    input.addEventListener("input", () => this.schedule());
    input.addEventListener("focus", () => { if (input.value.trim()) this.schedule(); });
    input.addEventListener("keydown", (e) => this.key(e));
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), DEBOUNCE_MS);
  }

  async refresh() {
    const q = this.input.value.trim();
    const seq = ++this.seq;
    if (!q) { this.close(); return; }
    let result;
    try {
      result = await this.search(q);
    } catch (err) {
      if (seq === this.seq) this.render([], 0, err.message);
      return;
    }
    if (seq === this.seq) this.render(result.genes || [], result.total || 0, "", q);
  }

  render(genes, total, error, q = null) {
    this.items = genes.map((g) => g.name);
    this.itemsFor = q;
    this.active = genes.length ? 0 : -1;
    this.list.replaceChildren();
    genes.forEach((g, i) => {
      const li = document.createElement("li");
      li.setAttribute("role", "option");
      li.id = `${this.list.id}-${i}`;
      li.textContent = g.name;
      li.onmousedown = (e) => { e.preventDefault(); this.choose(g.name); };
      this.list.append(li);
    });
    const note = error || (genes.length === 0 ? "No matching gene" : total > genes.length ? `${genes.length} of ${total} matches` : "");
    if (note) {
      const li = document.createElement("li");
      li.className = "note";
      li.textContent = note;
      this.list.append(li);
    }
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.highlight();
  }

  highlight() {
    [...this.list.querySelectorAll("[role=option]")].forEach((li, i) => {
      li.classList.toggle("active", i === this.active);
      if (i === this.active) {
        li.scrollIntoView({ block: "nearest" });
        this.input.setAttribute("aria-activedescendant", li.id);
      }
    });
  }

  key(e) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (!this.items.length) return;
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.items.length) % this.items.length;
      this.highlight();
    } else if (e.key === "Enter") {
      e.preventDefault();
      clearTimeout(this.timer);
      const q = this.input.value.trim();
      if (!q) return;
      const current = this.itemsFor === q && !this.list.hidden;
      if (current && this.active >= 0 && this.items[this.active]) this.choose(this.items[this.active]);
      else {
        this.refresh().then(() => {
          if (this.itemsFor === q && this.input.value.trim() === q && this.items.length) this.choose(this.items[0]);
        });
      }
    } else if (e.key === "Escape") {
      this.close();
      this.input.blur();
    }
  }

  choose(name) {
    this.input.value = name;
    this.close();
    this.onChoose(name);
  }

  close() {
    this.seq++;
    this.itemsFor = null;
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }
}
