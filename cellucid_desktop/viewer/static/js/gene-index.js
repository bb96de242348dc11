// The gene-index line under the gene box: hidden when there is nothing to say, a
// progress bar while the server builds the index (polled once a second), and the
// reason when the build failed.

const POLL_MS = 1000;

export class GeneIndexStatus {
  /** fetchStatus() -> Promise<{status, progress, message}> for the open dataset. */
  constructor(box, fetchStatus) {
    this.box = box;
    this.text = box.querySelector(".gene-index-text");
    this.bar = box.querySelector(".progress-bar");
    this.fetchStatus = fetchStatus;
    this.timer = null;
    this.seq = 0;
  }

  /** Ask the server again (a search or a gene read may have started a build). */
  async refresh() {
    const seq = ++this.seq;
    let status;
    try {
      status = await this.fetchStatus();
    } catch (err) {
      status = { status: "failed", message: err.message };
    }
    if (seq === this.seq) this.show(status);
  }

  show(status) {
    clearTimeout(this.timer);
    if (!status || status.status === "none" || status.status === "ready") {
      this.box.hidden = true;
      return;
    }
    this.box.hidden = false;
    if (status.status === "failed") {
      this.bar.hidden = true;
      this.text.textContent = `Gene index could not be built: ${status.message || "unknown reason"}. `
        + "Gene colouring still works, more slowly.";
      return;
    }
    this.bar.hidden = false;
    const pct = Math.round((status.progress || 0) * 100);
    this.bar.firstElementChild.style.width = `${pct}%`;
    this.text.textContent = `Building the gene index… ${pct}%${status.message ? ` · ${status.message}` : ""}`;
    this.timer = setTimeout(() => this.refresh(), POLL_MS);
  }
}
