// The connect dialog: every check and command comes from Python (remote/), so this page
// and `cellucid-desktop connect` agree. The page only gathers fields and polls status.
"use strict";
(async () => {
  const page = window.cellucidPage;
  const api = await page.api();
  page.applyTheme((await api.state()).settings.theme);
  const $ = (id) => document.getElementById(id);
  const FIELDS = ["target", "node", "remote_port", "local_port", "jump", "ssh_port",
                  "identity_file", "options", "program", "data_path", "forwarded_port",
                  "remote_socket", "token", "token_file"];
  let current = null;
  let timer = null;

  const form = () => {
    const f = Object.fromEntries(FIELDS.map((id) => [id, $(id).value]));
    f.mode = document.querySelector("input[name=mode]:checked").value;
    f.where = document.querySelector("input[name=where]:checked").value;
    f.offline = $("offline").checked;
    if (f.mode === "forwarded") f.remote_port = $("fw_remote_port").value;
    return f;
  };
  const fill = (f) => {
    for (const id of FIELDS) if (f[id] !== undefined) $(id).value = f[id];
    $("offline").checked = !!f.offline;
    for (const name of ["mode", "where"]) {
      const radio = document.querySelector(`input[name=${name}][value="${f[name] || ""}"]`);
      if (radio) radio.checked = true;
    }
    if (f.mode === "forwarded") $("fw_remote_port").value = f.remote_port || "";
    refresh();
  };
  const showError = (text) => { $("error").hidden = !text; $("error").textContent = text || ""; };

  async function refresh() {
    const f = form();
    $("ssh-fields").hidden = f.mode !== "ssh";
    $("forwarded-fields").hidden = f.mode !== "forwarded";
    $("start").textContent = f.mode === "ssh" ? "Start tunnel and open" : "Open";
    $("sign-in").hidden = f.mode !== "ssh";
    const preview = await api.connect_preview(f);
    showError(preview.ok ? "" : preview.error);
    $("cmd").textContent = preview.ok ? preview.command : "";
    $("server-cmd").textContent = preview.ok ? preview.server_command : "";
  }

  function setStatus(s) {
    $("status").textContent = s.message ? `${s.state}: ${s.message}` : s.state;
    $("status").className = s.state;
    $("disconnect").hidden = !(s.state === "connected" || s.state === "connecting" || s.state === "reconnecting");
    $("start").disabled = !$("disconnect").hidden;
    if (s.state === "failed" || s.state === "stopped") { clearInterval(timer); timer = null; }
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
  $("start").addEventListener("click", async () => {
    const started = await api.connect_start(form());
    if (!started.ok) { showError(started.error); return; }
    current = started.id;
    setStatus({ state: "connecting", message: "" });
    clearInterval(timer);
    timer = setInterval(poll, 500);
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
  window.cellucidConnect = { form, fill, status: () => $("status").textContent };
})();
