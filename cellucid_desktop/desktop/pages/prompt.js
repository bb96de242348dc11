// The sign-in window: shows ssh's question (exactly as ssh asked it) and sends the answer
// back through the bridge (prompt_current / prompt_answer / prompt_cancel). Python tells
// the page to re-read the question (window.cellucidRefresh) when a new one arrives.
"use strict";
(async () => {
  const page = window.cellucidPage;
  const api = await page.themedApi();
  const $ = (id) => document.getElementById(id);
  const PARTS = ["entry", "hostkey", "confirm", "notice", "idle"];
  const ROLE_WORDS = { "password": "password", "passphrase": "key passphrase",
                       "one-time code": "one-time code", "PIN": "PIN", "answer": "answer" };
  let current = { id: null };

  const show = (part) => { for (const p of PARTS) $(p).hidden = p !== part; };

  function render(q) {
    current = q;
    document.documentElement.dataset.promptId = q.id === null ? "" : String(q.id);
    document.documentElement.dataset.promptKind = q.kind || "";
    if (q.id === null) { show("idle"); return; }
    $("heading").textContent = q.kind === "host-key" ? "Unknown host key"
      : q.kind === "notice" ? `Signing in to ${q.connection}` : `Sign in to ${q.connection}`;
    $("reason").hidden = !q.reason;
    $("reason-text").textContent = q.reason || "";
    $("text").textContent = q.text;
    const who = q.user && q.host ? `${q.user}@${q.host}` : q.connection;
    if (q.kind === "host-key") {
      $("intro").textContent = `Connecting to ${q.connection}.`;
      $("hk-host").textContent = q.host || q.connection;
      $("hk-address").textContent = q.address && q.address !== q.host ? `(${q.address})` : "";
      $("hk-type").textContent = q.key_type ? `${q.key_type} key fingerprint:` : "Key fingerprint:";
      $("hk-fingerprint").textContent = q.fingerprint || "(ssh did not give one: see its text above)";
      show("hostkey");
      $("reject").focus();  // the safe choice is the default
    } else if (q.kind === "confirm") {
      $("intro").textContent = `${q.connection} asks:`;
      show("confirm");
      $("no").focus();
    } else if (q.kind === "notice") {
      $("intro").textContent = "";
      show("notice");
      $("notice-ok").focus();
    } else {
      const words = ROLE_WORDS[q.role] || "answer";
      $("intro").textContent = q.kind === "secret"
        ? `${who} asks for your ${words}${q.key_file ? ` (key ${q.key_file})` : ""}. It is passed to ssh and not kept.`
        : `${who} asks:`;
      $("answer-label").textContent = q.choices.length
        ? "Choose an option above, or type a passcode:" : `Your ${words}:`;
      $("answer").type = q.kind === "secret" ? "password" : "text";
      $("answer").value = "";
      const choices = $("choices");
      choices.replaceChildren(...q.choices.map((label, i) => {
        const button = page.el("button", { type: "button", "data-choice": String(i + 1) },
                               `${i + 1}. ${label}`);
        button.addEventListener("click", () => answer(String(i + 1)));
        return button;
      }));
      choices.hidden = q.choices.length === 0;
      show("entry");
      $("answer").focus();
    }
  }

  async function refresh() { render(await api.prompt_current()); }

  function answer(value) {
    if (current.id === null) return;
    const id = current.id;
    render({ id: null });
    api.prompt_answer(id, value);
  }
  function cancel() {
    if (current.id === null) return;
    const id = current.id;
    render({ id: null });
    api.prompt_cancel(id);
  }

  $("entry").addEventListener("submit", (e) => { e.preventDefault(); answer($("answer").value); });
  $("cancel").addEventListener("click", cancel);
  $("accept").addEventListener("click", () => answer("yes"));
  $("reject").addEventListener("click", () => answer("no"));
  $("yes").addEventListener("click", () => answer("yes"));
  $("no").addEventListener("click", () => answer("no"));
  $("notice-ok").addEventListener("click", cancel);
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    e.preventDefault();
    if (current.kind === "host-key" || current.kind === "confirm") answer("no");
    else cancel();
  });

  window.cellucidRefresh = refresh;
  window.cellucidPrompt = { answer, cancel, current: () => current, refresh };
  await refresh();
})();
