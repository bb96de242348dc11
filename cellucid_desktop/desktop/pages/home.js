// The home page: every action goes through the pywebview bridge (window.pywebview.api).
"use strict";
(() => {
  const { el, applyTheme } = window.cellucidPage;
  let api = null;
  document.documentElement.dataset.homeState = "loading";

  function renderNotices(notices) {
    const box = document.getElementById("notices");
    box.replaceChildren(...notices.map((n) => {
      const row = el("div", { class: `notice ${n.level}`, role: "alert", "data-id": n.id });
      const close = el("button", { title: "Dismiss", "aria-label": "Dismiss" }, "×");
      close.addEventListener("click", () => api.dismiss(n.id).then(refresh));
      row.append(el("span", {}, n.text), close);
      return row;
    }));
  }

  // A MuData file's modalities, one button each: each modality is a dataset of its own.
  function modalityButtons(names, current, open) {
    const box = el("span", { class: "modalities" }, "Modalities:");
    for (const name of names) {
      const button = el("button", { class: name === current ? "modality current" : "modality",
                                    "data-modality": name, title: `Open the ${name} modality` }, name);
      button.addEventListener("click", () => act(open(name)));
      box.append(button);
    }
    return box;
  }

  function renderRecent(recent) {
    const list = document.getElementById("recent");
    document.getElementById("no-recent").hidden = recent.length > 0;
    list.replaceChildren(...recent.map((r) => {
      const item = el("li", { class: r.missing ? "missing" : "", "data-path": r.path });
      item.append(el("span", { class: "name" }, r.name),
                  el("span", { class: "path", title: r.path }, r.missing ? `missing: ${r.path}` : r.path));
      if (!r.missing && r.modalities.length > 1) {
        item.append(modalityButtons(r.modalities, null, (m) => api.open_recent(r.path, m)));
      } else if (!r.missing) {
        const open = el("button", { class: "open" }, "Open");
        open.addEventListener("click", () => act(api.open_recent(r.path)));
        item.append(open);
      }
      const remove = el("button", { class: "remove", title: "Remove from the list" }, "Remove");
      remove.addEventListener("click", () => api.remove_recent(r.path).then(refresh));
      item.append(remove);
      return item;
    }));
  }

  // Remote files opened lately: one click opens again (or reattaches to a kept server).
  function renderRemoteFiles(files) {
    document.getElementById("remote-heading").hidden = files.length === 0;
    document.getElementById("remote-files").replaceChildren(...files.map((f) => {
      const item = el("li", { "data-key": f.key, "data-path": f.path });
      const open = el("button", { class: "open" }, f.running ? "Reattach" : "Open");
      open.addEventListener("click", () => act(api.open_remote_file(f.key)));
      item.append(el("span", { class: "name" }, f.path.replace(/\/+$/, "").split("/").pop()),
                  el("span", { class: "path", title: f.path },
                     `${f.host}: ${f.path}${f.where === "slurm" ? " (Slurm)" : ""}${f.running ? " — kept running" : ""}`),
                  open);
      return item;
    }));
  }

  // Remote connections of this session, with their progress (polled while it changes).
  const SETTLED = ["connected", "failed", "stopped", "server-stopped"];
  let polling = null;
  function renderRemoteNow(sessions) {
    document.getElementById("remote-now-heading").hidden = sessions.length === 0;
    document.getElementById("remote-now").replaceChildren(...sessions.map((s) => {
      const item = el("li", { "data-id": s.id, "data-state": s.state });
      const stop = el("button", {}, SETTLED.includes(s.state) && s.state !== "connected" ? "Dismiss" : "Disconnect");
      stop.addEventListener("click", () => act(api.connect_disconnect(s.id)));
      item.append(el("span", { class: "name" }, s.name),
                  el("span", { class: `path ${s.state}` }, s.message ? `${s.state}: ${s.message}` : s.state), stop);
      return item;
    }));
    clearTimeout(polling);
    if (sessions.some((s) => !SETTLED.includes(s.state))) polling = setTimeout(refresh, 1000);
  }

  function renderOpen(open) {
    document.getElementById("open-heading").hidden = open.length === 0;
    document.getElementById("open-list").replaceChildren(...open.map((d) => {
      const item = el("li", { "data-id": d.id });
      const show = el("button", {}, "Show");
      show.addEventListener("click", () => api.focus(d.id));
      item.append(el("span", { class: "name" }, d.name), el("span", { class: "path" }, d.id));
      if (d.modalities.length > 1) {
        item.append(modalityButtons(d.modalities, d.modality, (m) => api.open_modality(d.id, m)));
      }
      item.append(show);
      return item;
    }));
  }

  async function refresh() {
    const state = await api.state();
    applyTheme(state.settings.theme);
    renderNotices(state.notices);
    renderRecent(state.recent);
    renderOpen(state.open);
    renderRemoteFiles(state.remote_files);
    renderRemoteNow(state.remote_sessions);
    document.getElementById("version").textContent = `Version ${state.version}.`;
    document.documentElement.dataset.homeState = "ready";
  }

  function act(promise) { return promise.then(refresh, refresh); }

  const actions = {
    open: () => act(api.open_dialog()),
    "open-folder": () => act(api.open_folder_dialog()),
    demo: () => act(api.open_demo()),
    connect: () => api.open_connect(),
    settings: () => api.open_settings(),
  };

  window.cellucidRefresh = () => api && refresh();
  window.cellucidPage.api().then((bridge) => {
    api = bridge;
    for (const [id, run] of Object.entries(actions)) {
      document.getElementById(id).addEventListener("click", run);
    }
    refresh();
  });

  document.addEventListener("keydown", (e) => {
    if (!api || !(e.ctrlKey || e.metaKey)) return;
    const lower = e.key.toLowerCase();
    const key = lower === "o" && e.shiftKey ? "open-folder"
      : { o: "open", d: "demo", k: "connect", ",": "settings" }[lower];
    if (key) { e.preventDefault(); actions[key](); }
  });

  // The drop itself is handled in Python (pywebview DOM events carry the full paths);
  // here only the visual feedback and letting the drop happen.
  const drop = document.getElementById("drop");
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
})();
