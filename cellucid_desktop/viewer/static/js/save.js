// Saving what the viewer makes (figures, plots, CSV tables). Inside the desktop app the
// file goes through the native save dialog (the pywebview bridge's save_file: a plain
// download does nothing in a webview); in a browser it is downloaded.

function toBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

const bridge = () => (window.pywebview && window.pywebview.api && window.pywebview.api.save_file) ? window.pywebview.api : null;

/** Start a browser download of `url` as `name`. */
export function download(url, name) {
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
}

/**
 * Save `blob` as `name`; `what` describes it ("1640×1440 image"). Returns a sentence
 * saying where it went; throws when it could not be saved.
 */
export async function saveBlob(blob, name, what) {
  const api = bridge();
  if (api) {
    const result = await api.save_file(name, await toBase64(blob), blob.type);
    if (result && result.saved) return `Saved ${what} to ${result.path}`;
    if (result && result.error) throw new Error(`Could not save ${name}: ${result.error}`);
    return "Saving cancelled";
  }
  const url = URL.createObjectURL(blob);
  download(url, name);
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return `Downloaded ${name} (${what})`;
}

/** A file name made of readable parts: letters, digits, dot, dash, underscore. */
export const safeName = (...parts) => parts.filter(Boolean).join("-").replace(/[^\w.-]+/g, "_").slice(0, 120);
