// Shared by the app's pages: wait for the pywebview bridge, apply the theme, show notices.
"use strict";
window.cellucidPage = {
  api() {
    return new Promise((resolve) => {
      if (window.pywebview && window.pywebview.api && window.pywebview.api.state) {
        resolve(window.pywebview.api);
      } else {
        window.addEventListener("pywebviewready", () => resolve(window.pywebview.api), { once: true });
      }
    });
  },
  // The bridge, once the page wears the theme chosen in Settings.
  async themedApi() {
    const api = await this.api();
    this.applyTheme((await api.state()).settings.theme);
    return api;
  },
  applyTheme(theme) {
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
    else delete document.documentElement.dataset.theme;
  },
  el(tag, attrs = {}, text = "") {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  },
};
