// The view state lives in the query string so a view can be bookmarked and shared:
// ?dataset=&embedding=&color=&gene=&source= (what is shown), geneset=A,B,C&setmethod=
// &setname= (a gene set), cmap=&log=1&clip=1-99&vmin=&vmax= (the colour scale) and
// labels=1. An empty `color=` means "no colouring".

const KEYS = ["dataset", "embedding", "color", "gene", "source", "geneset", "setmethod", "setname",
  "cmap", "log", "clip", "vmin", "vmax", "labels"];

export function readUrlState(search = window.location.search) {
  const params = new URLSearchParams(search);
  const state = {};
  for (const key of KEYS) state[key] = params.has(key) ? params.get(key) : null;
  return state;
}

/** Replace the query string (no history entry) with the given state; null drops a key. */
export function writeUrlState(state) {
  const params = new URLSearchParams(window.location.search);
  for (const key of KEYS) {
    const value = state[key];
    if (value === null || value === undefined) params.delete(key);
    else params.set(key, value);
  }
  const query = params.toString();
  const url = `${window.location.pathname}${query ? `?${query}` : ""}${window.location.hash}`;
  if (url !== `${window.location.pathname}${window.location.search}${window.location.hash}`) {
    window.history.replaceState(null, "", url);
  }
}
