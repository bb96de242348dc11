// PNG export at 1x/2x/4x. Inside the desktop app the file goes through the native
// save dialog (pywebview bridge); in a plain browser it is downloaded.

function toBlob(image) {
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext("2d").putImageData(new ImageData(image.pixels, image.width, image.height), 0, 0);
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("The browser could not encode the PNG."))), "image/png"));
}

function toBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

const bridge = () => (window.pywebview && window.pywebview.api && window.pywebview.api.save_file) ? window.pywebview.api : null;

/** Returns a sentence describing where the image went. */
export async function exportPng(renderer, scale, name) {
  const image = renderer.renderImage(scale);
  const blob = await toBlob(image);
  const api = bridge();
  if (api) {
    const result = await api.save_file(name, await toBase64(blob), "image/png");
    if (result && result.saved) return `Saved ${image.width}×${image.height} image to ${result.path}`;
    if (result && result.error) throw new Error(`Could not save the image: ${result.error}`);
    return "Export cancelled";
  }
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return `Downloaded ${name} (${image.width}×${image.height})`;
}
