// Page-level status for users (progress bar, error panel) and for automation
// (document.documentElement.dataset.viewerState = loading | ready | error).

const root = document.documentElement;
const SHOW_AFTER_MS = 500;

export function setViewerState(state, message = "") {
  root.dataset.viewerState = state;
  if (state === "error") root.dataset.viewerError = message;
  else delete root.dataset.viewerError;
}

/** Loading tasks; the overlay appears only if one of them runs longer than 0.5 s. */
export class Progress {
  constructor(element) {
    this.element = element;
    this.label = element.querySelector(".progress-label");
    this.bar = element.querySelector(".progress-bar > span");
    this.tasks = new Map();
    this.nextId = 1;
    this.timer = null;
  }

  start(text) {
    const id = this.nextId++;
    this.tasks.set(id, { text, fraction: null });
    this.render();
    if (!this.timer && this.element.hidden) {
      this.timer = setTimeout(() => { this.timer = null; this.element.hidden = this.tasks.size === 0; }, SHOW_AFTER_MS);
    }
    return {
      update: (fraction) => { const t = this.tasks.get(id); if (t) { t.fraction = fraction; this.render(); } },
      done: () => { this.tasks.delete(id); this.render(); },
    };
  }

  render() {
    if (this.tasks.size === 0) {
      clearTimeout(this.timer);
      this.timer = null;
      this.element.hidden = true;
      return;
    }
    const tasks = [...this.tasks.values()];
    const last = tasks[tasks.length - 1];
    const known = tasks.filter((t) => t.fraction !== null);
    this.label.textContent = tasks.length > 1 ? `${last.text} (+${tasks.length - 1} more)` : last.text;
    if (known.length) {
      const mean = known.reduce((s, t) => s + t.fraction, 0) / known.length;
      this.bar.parentElement.classList.remove("indeterminate");
      this.bar.style.width = `${Math.round(mean * 100)}%`;
    } else {
      this.bar.parentElement.classList.add("indeterminate");
      this.bar.style.width = "";
    }
  }

  /** Run an async job as a task; the job receives an update(fraction) callback. */
  async track(text, job) {
    const task = this.start(text);
    try {
      return await job(task.update);
    } finally {
      task.done();
    }
  }
}

/** The in-page error panel: a title and one readable sentence. */
export function showError(panel, title, message) {
  panel.querySelector(".error-title").textContent = title;
  panel.querySelector(".error-message").textContent = message;
  panel.hidden = false;
  setViewerState("error", message);
}

export function hideError(panel) {
  panel.hidden = true;
}
