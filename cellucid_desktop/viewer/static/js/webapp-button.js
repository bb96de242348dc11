// "Open in Cellucid web app" in the sidebar. Only Cellucid Desktop's viewer windows have
// the bridge method window.pywebview.api.open_in_webapp; in a plain browser (or a remote
// viewer window) the section stays hidden. For automation the outcome is also
// document.documentElement.dataset.webappState = opening | done | failed.

const root = document.documentElement;
const bridge = () => (window.pywebview && window.pywebview.api && window.pywebview.api.open_in_webapp) ? window.pywebview.api : null;

export function attachWebAppButton(section, button, toast) {
  const reveal = () => { section.hidden = !bridge(); };
  reveal();
  window.addEventListener("pywebviewready", reveal);  // the bridge may arrive after us
  button.onclick = async () => {
    const api = bridge();
    if (!api || button.disabled) return;
    button.disabled = true;
    root.dataset.webappState = "opening";
    toast("Opening in the Cellucid web app…");
    let error = null;
    try {
      const result = await api.open_in_webapp();
      if (!result || !result.ok) error = (result && result.error) || "The Cellucid web app could not be opened; see the log.";
    } catch (err) {
      error = `The Cellucid web app could not be opened (${err.message || err}).`;
    } finally {
      button.disabled = false;
    }
    root.dataset.webappState = error ? "failed" : "done";
    toast(error || "Opened in the Cellucid web app.");
  };
}
