// PNG files from canvases: encoded in a worker (a 300 dpi figure is tens of megapixels,
// and encoding it on the page's thread froze the page for a second or more), with the
// resolution written into the file so print software sizes it right.

const WORKER = `
self.onmessage = async ({ data: { id, bitmap } }) => {
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    canvas.getContext("2d").drawImage(bitmap, 0, 0);
    bitmap.close();
    self.postMessage({ id, blob: await canvas.convertToBlob({ type: "image/png" }) });
  } catch (err) {
    self.postMessage({ id, error: String(err && err.message || err) });
  }
};`;

let worker = null;
let nextId = 1;
const waiting = new Map();

function encoder() {
  if (worker === null) {
    try {
      worker = new Worker(URL.createObjectURL(new Blob([WORKER], { type: "text/javascript" })));
      worker.onmessage = ({ data }) => {
        const job = waiting.get(data.id);
        waiting.delete(data.id);
        if (job) (data.blob ? job.resolve(data.blob) : job.reject(new Error(data.error)));
      };
    } catch (err) {
      worker = false;  // no workers here: encode on the page
    }
  }
  return worker;
}

function encodeHere(canvas) {
  return new Promise((resolve, reject) => canvas.toBlob(
    (b) => (b ? resolve(b) : reject(new Error("The browser could not encode the PNG (the image may be too large)."))),
    "image/png"));
}

/** The canvas as a PNG Blob, encoded off the page's thread where the browser can. */
export async function encodePng(canvas) {
  const w = typeof OffscreenCanvas === "function" && typeof createImageBitmap === "function" ? encoder() : false;
  if (!w) return encodeHere(canvas);
  const bitmap = await createImageBitmap(canvas);
  const id = nextId++;
  try {
    return await new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      w.postMessage({ id, bitmap }, [bitmap]);
    });
  } catch (err) {
    return encodeHere(canvas);  // e.g. OffscreenCanvas without 2D in an older engine
  }
}

/** A Blob as a data: URL (for images embedded in SVG). */
export function dataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The PNG with a pHYs chunk (pixels per metre) after its header. */
async function pngWithDpi(blob, dpi) {
  const png = new Uint8Array(await blob.arrayBuffer());
  const ppm = Math.round(dpi / 0.0254);
  const chunk = new Uint8Array(21);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, 9);
  chunk.set([0x70, 0x48, 0x59, 0x73], 4);  // "pHYs"
  view.setUint32(8, ppm);
  view.setUint32(12, ppm);
  chunk[16] = 1;  // unit: metre
  view.setUint32(17, crc32(chunk.subarray(4, 17)));
  const ihdrEnd = 8 + 8 + 13 + 4;
  const out = new Uint8Array(png.length + chunk.length);
  out.set(png.subarray(0, ihdrEnd), 0);
  out.set(chunk, ihdrEnd);
  out.set(png.subarray(ihdrEnd), ihdrEnd + chunk.length);
  return new Blob([out], { type: "image/png" });
}

/** A canvas as a PNG file that says it is `dpi` dots per inch. */
export async function canvasPng(canvas, dpi) {
  return pngWithDpi(await encodePng(canvas), dpi);
}
