// Client of the server's viewer data API (/api/v1). Every failure becomes an ApiError
// whose message is one sentence a user can act on.

const BASE = "api/v1/datasets";
const JOBS = "api/v1/jobs";

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

const enc = encodeURIComponent;

async function request(path, what, init = {}) {
  const doing = init.method === "POST" ? "asking for" : "loading";
  let response;
  try {
    response = await fetch(path, { ...init, headers: { Accept: "application/json, application/octet-stream", ...init.headers } });
  } catch (err) {
    throw new ApiError(`Could not reach the Cellucid server while ${doing} ${what}; check that it is still running and reload.`);
  }
  if (!response.ok) {
    let detail = "";
    try {
      const body = await response.json();
      detail = body && body.error ? String(body.error) : "";
    } catch (err) { /* not JSON: fall back to the status line */ }
    throw new ApiError(detail || `The server answered ${response.status} ${response.statusText} while ${doing} ${what}.`,
      response.status);
  }
  return response;
}

async function json(path, what, init) {
  const response = await request(path, what, init);
  try {
    return await response.json();
  } catch (err) {
    throw new ApiError(`The server sent an unreadable answer while loading ${what}.`);
  }
}

/** A JSON POST body, as the analysis routes take it. */
const post = (body) => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

/** Read a binary body, reporting (loaded, total) bytes as it arrives. */
async function binary(path, what, onProgress, init) {
  const response = await request(path, what, init);
  // A compressed body's Content-Length counts encoded bytes, not what the reader yields.
  const total = response.headers.get("Content-Encoding") ? 0 : Number(response.headers.get("Content-Length")) || 0;
  let buffer;
  if (!response.body || !total || !onProgress) {
    buffer = await response.arrayBuffer();
  } else {
    const bytes = new Uint8Array(total);
    const reader = response.body.getReader();
    let loaded = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (loaded + value.length > total) throw new ApiError(`The server sent more data than announced for ${what}.`);
      bytes.set(value, loaded);
      loaded += value.length;
      onProgress(loaded, total);
    }
    if (loaded !== total) throw new ApiError(`The download of ${what} was cut short; reload to try again.`);
    buffer = bytes.buffer;
  }
  return { buffer, headers: response.headers };
}

function checkLength(buffer, itemBytes, expected, what) {
  if (buffer.byteLength !== itemBytes * expected) {
    throw new ApiError(`The server sent ${buffer.byteLength} bytes for ${what}, expected ${itemBytes * expected}.`);
  }
}

export const listDatasets = () => json(BASE, "the dataset list").then((body) => body.datasets || []);

export const getDataset = (id) => json(`${BASE}/${enc(id)}`, `dataset "${id}"`);

export async function getEmbedding(ds, key, onProgress) {
  const what = `embedding "${key}"`;
  const { buffer, headers } = await binary(`${BASE}/${enc(ds.id)}/embeddings/${enc(key)}`, what, onProgress);
  const dims = Number(headers.get("X-Dims")) || buffer.byteLength / 4 / ds.n_cells;
  checkLength(buffer, 4 * dims, ds.n_cells, what);
  return { dims, positions: new Float32Array(buffer) };
}

export const getObsMeta = (ds, key) => json(`${BASE}/${enc(ds.id)}/obs/${enc(key)}`, `column "${key}"`);

/** Column values fetched alongside its description (the dtype decides how to read them). */
export async function getObsColumn(ds, key, onProgress) {
  const what = `column "${key}"`;
  // Both in parallel; when both fail (an unknown column), the description's error names
  // the column as the user wrote it, the values route's names its path.
  const [described, loaded] = await Promise.allSettled([
    getObsMeta(ds, key),
    binary(`${BASE}/${enc(ds.id)}/obs/${enc(key)}/values`, what, onProgress),
  ]);
  if (described.status === "rejected") throw described.reason;
  if (loaded.status === "rejected") throw loaded.reason;
  const meta = described.value;
  const { buffer } = loaded.value;
  const isFloat = meta.dtype === "float32";
  checkLength(buffer, isFloat ? 4 : 2, ds.n_cells, what);
  return { meta, values: isFloat ? new Float32Array(buffer) : new Uint16Array(buffer) };
}

export function searchGenes(ds, q, source, limit = 20) {
  const params = new URLSearchParams({ q, limit: String(limit) });
  if (source) params.set("source", source);
  return json(`${BASE}/${enc(ds.id)}/genes?${params}`, "gene suggestions");
}

export async function getGene(ds, name, source, onProgress) {
  const what = `gene "${name}"`;
  const query = source ? `?source=${enc(source)}` : "";
  const { buffer, headers } = await binary(`${BASE}/${enc(ds.id)}/genes/${enc(name)}${query}`, what, onProgress);
  checkLength(buffer, 4, ds.n_cells, what);
  return { values: new Float32Array(buffer), min: Number(headers.get("X-Min")), max: Number(headers.get("X-Max")) };
}

export const getGeneIndex = (ds) => json(`${BASE}/${enc(ds.id)}/gene-index`, "the gene index status");

/** Expression over several genes (mean or scanpy's module score), with which were used. */
export async function getGeneSet(ds, genes, method, source) {
  const what = `the gene set (${genes.length} genes)`;
  const body = { genes, method, ...(source ? { source } : {}) };
  const { buffer, headers } = await binary(`${BASE}/${enc(ds.id)}/gene-set`, what, null, post(body));
  checkLength(buffer, 4, ds.n_cells, what);
  // comma-separated, each name percent-encoded (a gene name may hold a comma)
  const list = (name) => (headers.get(name) || "").split(",").filter(Boolean).map((g) => decodeURIComponent(g));
  return { values: new Float32Array(buffer), min: Number(headers.get("X-Min")), max: Number(headers.get("X-Max")),
    used: list("X-Genes-Used"), missing: list("X-Genes-Missing") };
}

// --- differential expression (a background job on the server) ------------------------

/** Start a comparison; answers the job id to poll. */
export const startDiffexp = (ds, body) => json(`${BASE}/${enc(ds.id)}/diffexp`, "the differential expression",
  post({ ...body, background: true })).then((answer) => answer.job);

export const getJob = (job) => json(`${JOBS}/${enc(job)}`, "the job status");

export const cancelJob = (job) => json(`${JOBS}/${enc(job)}/cancel`, "the cancel request", post({}));

// --- saved selections (annotation columns in a sidecar next to the data) ----------------

/** { columns: [{key, categories, counts}], message: a sidecar problem to show, or null }. */
export const listAnnotations = (ds) => json(`${BASE}/${enc(ds.id)}/annotations`, "the saved selections");

export const saveAnnotation = (ds, key, categories) => json(`${BASE}/${enc(ds.id)}/annotations`,
  `saved selection column "${key}"`, post({ key, categories })).then((body) => body.columns || []);

export const deleteAnnotation = (ds, key) => json(`${BASE}/${enc(ds.id)}/annotations/${enc(key)}/delete`,
  `saved selection column "${key}"`, post({})).then((body) => body.columns || []);

// --- cells ---------------------------------------------------------------------------

/** A CSV of barcodes (and columns) of these rows, as a Blob. */
export async function getCellsCsv(ds, rows, columns) {
  const response = await request(`${BASE}/${enc(ds.id)}/cells.csv`, "the cells CSV",
    post({ cells: Array.from(rows), columns }));
  return response.blob();
}

/** A cell's barcode and the values of `columns` (none: an empty list, never "all"). */
export function getCell(ds, row, columns) {
  return json(`${BASE}/${enc(ds.id)}/cells/${row}?columns=${(columns || []).map(enc).join(",")}`, `cell ${row}`);
}

/** Where a plain browser downloads a copy of the dataset with the saved selections added. */
export const exportH5adUrl = (ds) => `${BASE}/${enc(ds.id)}/export.h5ad`;
