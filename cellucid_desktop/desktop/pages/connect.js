// The connect dialog: every check and command comes from Python (remote/), so this page
// and `cellucid-desktop connect` agree. The page only gathers fields and polls status.
"use strict";
(async () => {
  const page = window.cellucidPage;
  const api = await page.themedApi();
  const $ = (id) => document.getElementById(id);
  const FIELDS = ["target", "node", "remote_port", "local_port", "jump", "ssh_port",
                  "identity_file", "options", "program", "data_path", "forwarded_port",
                  "remote_socket", "token", "token_file",
                  // open a file on the host
                  "remote_path", "env", "program_open", "slurm_partition", "slurm_time",
                  "slurm_mem", "slurm_account", "slurm_extra"];
  // States in which there is something to disconnect.
  const ACTIVE = ["connecting", "connected", "reconnecting", "signing-in", "finding-server",
                  "starting", "queued", "tunnel"];
  const FINAL = ["failed", "stopped", "server-stopped"];
  let listing = null;
  let current = null;
  let timer = null;

  const form = () => {
    const f = Object.fromEntries(FIELDS.map((id) => [id, $(id).value]));
    f.mode = document.querySelector("input[name=mode]:checked").value;
    f.where = document.querySelector("input[name=where]:checked").value;
    f.run = document.querySelector("input[name=run]:checked").value;
    f.offline = $("offline").checked;
    f.keep_running = $("keep_running").checked;
    if (f.mode === "forwarded") f.remote_port = $("fw_remote_port").value;
    return f;
  };
  const fill = (f) => {
    for (const id of FIELDS) if (f[id] !== undefined) $(id).value = f[id];
    $("offline").checked = !!f.offline;
    if (f.keep_running !== undefined) $("keep_running").checked = !!f.keep_running;
    for (const name of ["mode", "where", "run"]) {
      const radio = document.querySelector(`input[name=${name}][value="${f[name] || ""}"]`);
      if (radio) radio.checked = true;
    }
    if (f.mode === "forwarded") $("fw_remote_port").value = f.remote_port || "";
    refresh();
  };
  const showError = (text) => { $("error").hidden = !text; $("error").textContent = text || ""; };

  async function refresh() {
    const f = form();
    $("ssh-fields").hidden = f.mode === "forwarded";
    $("forwarded-fields").hidden = f.mode !== "forwarded";
    $("open-fields").hidden = f.mode !== "open";
    for (const e of document.querySelectorAll(".tunnel-only")) e.hidden = f.mode === "open";
    $("slurm-fields").hidden = f.run !== "slurm";
    $("start").textContent = f.mode === "ssh" ? "Start tunnel and open" : "Open";
    $("sign-in").hidden = f.mode === "forwarded";
    if (f.mode === "open") { showError(""); return; }  // checked when Open is pressed
    const preview = await api.connect_preview(f);
    showError(preview.ok ? "" : preview.error);
    $("cmd").textContent = preview.ok ? preview.command : "";
    $("server-cmd").textContent = preview.ok ? preview.server_command : "";
  }

  function setStatus(s) {
    $("status").textContent = s.message ? `${s.state}: ${s.message}` : s.state;
    $("status").className = s.state;
    $("disconnect").hidden = !ACTIVE.includes(s.state);
    $("start").disabled = !$("disconnect").hidden;
    const tail = (s.detail && s.detail.log_tail) || [];
    $("log-tail").hidden = tail.length === 0;  // a server that stopped: its last words
    $("log-tail").textContent = tail.slice(-12).join("\n");
    if (FINAL.includes(s.state)) { clearInterval(timer); timer = null; }
    if (s.needs_token) { $("token").value = ""; $("token").focus(); }
  }

  async function poll() {
    if (current) setStatus(await api.connect_status(current));
  }

  function renderList(id, list, deletable) {
    const ul = $(id);
    ul.replaceChildren();
    for (const c of list) {
      const li = page.el("li");
      const use = page.el("button", {}, c.name);
      use.addEventListener("click", () => { fill(c.form); $("save-name").value = c.name; });
      li.append(use, " ", page.el("span", { class: "muted" }, c.describe));
      if (deletable) {
        const del = page.el("button", { title: "Delete" }, "×");
        del.addEventListener("click", async () => renderSaved(await api.connect_delete(c.name)));
        li.append(" ", del);
      }
      ul.append(li);
    }
  }
  const renderSaved = (list) => renderList("saved", list, true);

  document.body.addEventListener("input", () => refresh());
  document.body.addEventListener("change", () => refresh());
  $("copy-cmd").addEventListener("click", () => navigator.clipboard.writeText($("cmd").textContent));
  $("copy-server").addEventListener("click", () => navigator.clipboard.writeText($("server-cmd").textContent));
  // Sign in only: the status line says how it went, a running session is left as it is.
  const signInStatus = (state, text) => { $("status").textContent = `${state}: ${text}`; $("status").className = state; };
  $("sign-in").addEventListener("click", async () => {
    const f = form();
    showError("");
    $("sign-in").disabled = true;
    signInStatus("signing-in", `${f.target}; answer in the sign-in window if it asks.`);
    const done = await api.connect_sign_in(f);
    $("sign-in").disabled = false;
    if (done.ok) signInStatus("signed-in", done.message);
    else { signInStatus("failed", done.error); showError(done.error); }
  });
  // ----- the remote file browser --------------------------------------------------
  const sizeText = (n) => n === null ? "" : n < 1024 ? `${n} B`
    : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MB`
    : `${(n / 1024 ** 3).toFixed(2)} GB`;
  const dateText = (t) => t === null ? "" : new Date(t * 1000).toLocaleString();

  function applyMemory(memory) {  // a host's remembered choices, unless already typed
    if (!$("env").value) {
      $("env").value = memory.env;
      $("program_open").value = memory.program_open;
      for (const k of ["slurm_partition", "slurm_time", "slurm_mem", "slurm_account", "slurm_extra"]) {
        if (!$(k).value) $(k).value = memory[k];
      }
      const radio = document.querySelector(`input[name=run][value="${memory.run}"]`);
      if (radio) radio.checked = true;
    }
    $("last-folders").replaceChildren(...(memory.folders.length ? ["Last folders: "] : []),
      ...memory.folders.map((folder) => {
        const b = page.el("button", { type: "button", "data-folder": folder }, folder);
        b.addEventListener("click", () => browse(folder));
        return b;
      }));
  }

  function renderRecentFiles(files) {
    $("remote-recent").replaceChildren(...files.map((file) => {
      const li = page.el("li", { "data-path": file.path });
      const use = page.el("button", { type: "button" }, file.path);
      use.addEventListener("click", () => { $("remote_path").value = file.path; });
      li.append(use, file.running ? page.el("span", { class: "muted" }, " (kept running)") : "");
      return li;
    }));
  }

  function renderListing(l) {
    listing = l;
    $("folder").value = l.path;
    $("listing-path").textContent = l.truncated ? `${l.path} (only the first entries are listed)` : l.path;
    const rows = [];
    if (l.parent) rows.push({ name: "..", path: l.parent, kind: "dir", size: null, mtime: null, openable: false });
    rows.push(...l.entries);
    $("listing").tBodies[0].replaceChildren(...rows.map((e) => {
      const usable = e.kind === "dir" || e.openable;
      const tr = page.el("tr", { class: usable ? "entry" : "entry muted", "data-path": e.path,
                                 "data-kind": e.kind });
      const icon = e.kind === "dir" ? "📁" : e.kind === "store" ? "🗄" : "📄";
      tr.append(page.el("td", {}, `${icon} ${e.name}${e.kind === "dir" ? "/" : ""}`),
                page.el("td", { class: "size" }, sizeText(e.size)),
                page.el("td", { class: "date" }, dateText(e.mtime)));
      if (e.kind === "dir") tr.addEventListener("click", () => browse(e.path));
      else if (e.openable) {
        tr.addEventListener("click", () => choose(tr, e.path));
        tr.addEventListener("dblclick", () => { choose(tr, e.path); $("start").click(); });
      }
      return tr;
    }));
    $("listing-box").hidden = false;
  }

  function choose(row, path) {
    for (const r of $("listing").querySelectorAll("tr.chosen")) r.classList.remove("chosen");
    row.classList.add("chosen");
    $("remote_path").value = path;
  }

  async function browse(path) {
    showError("");
    $("listing-path").textContent = "Listing... (answer in the sign-in window if it asks)";
    listing = null;
    const l = await api.connect_browse(form(), path || null);
    if (!l.ok) { $("listing-path").textContent = ""; showError(l.error); return l; }
    applyMemory(l.memory);
    renderRecentFiles(l.recent);
    renderListing(l);
    return l;
  }
  $("browse").addEventListener("click", () => browse($("folder").value.trim() || null));
  $("browse-home").addEventListener("click", () => browse("~"));
  $("folder").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); browse($("folder").value.trim() || "~"); }
  });

  function follow(started) {
    if (!started.ok) { showError(started.error); return; }
    showError("");
    current = started.id;
    setStatus({ state: "connecting", message: "" });
    clearInterval(timer);
    timer = setInterval(poll, 500);
  }

  $("start").addEventListener("click", async () => {
    if (form().mode === "open") { follow(await api.connect_open(form())); return; }
    follow(await api.connect_start(form()));
  });
  $("disconnect").addEventListener("click", async () => {
    if (current) await api.connect_disconnect(current);
    poll();
  });
  $("save").addEventListener("click", async () => {
    const saved = await api.connect_save($("save-name").value, form());
    if (!saved.ok) { showError(saved.error); return; }
    renderSaved(saved.saved);
  });
  $("find").addEventListener("click", async () => {
    $("found").textContent = "Looking...";
    const found = await api.connect_find();
    $("found").textContent = found.length ? "" : "No Cellucid server on the usual ports.";
    for (const f of found) {
      const b = page.el("button", {}, `${f.port}: ${f.message}`);
      b.addEventListener("click", () => { $("forwarded_port").value = String(f.port); refresh(); });
      $("found").append(b, " ");
    }
  });
  renderSaved(await api.connect_saved());
  renderList("recent", await api.connect_recent(), false);
  refresh();
  window.cellucidConnect = { form, fill, browse, status: () => $("status").textContent,
                             listing: () => listing };
})();
