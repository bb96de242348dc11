// Hover picking for 2D views without touching the GPU: points bucketed into a uniform
// grid over normalised coordinates (one counting sort per embedding), so finding the
// cell under the cursor looks at a handful of buckets, even at a million points and
// with a software renderer where an id-buffer pass costs a full frame.

export class SpatialGrid {
  /** positions: [x0, y0, ...] raw (dims 2); norm: { center, scale } mapping into [-1, 1]. */
  constructor(positions, dims, norm) {
    const n = positions.length / dims;
    this.size = Math.max(16, Math.min(1024, Math.ceil(Math.sqrt(n / 4))));
    this.positions = positions;
    this.dims = dims;
    this.norm = norm;
    const size = this.size;
    const cellOf = new Int32Array(n);
    const starts = new Uint32Array(size * size + 1);
    for (let i = 0; i < n; i++) {
      const c = this.cell(positions[i * dims], positions[i * dims + 1]);
      cellOf[i] = c;
      if (c >= 0) starts[c + 1]++;
    }
    for (let c = 1; c < starts.length; c++) starts[c] += starts[c - 1];
    const fill = starts.slice(0, size * size);
    const items = new Uint32Array(starts[size * size]);
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) items[fill[cellOf[i]]++] = i;
    this.starts = starts;
    this.items = items;
  }

  coord(v, axis) {
    return ((v - this.norm.center[axis]) * this.norm.scale + 1) * 0.5 * this.size;
  }

  /** Bucket of a raw position; -1 for a missing (NaN) coordinate. */
  cell(x, y) {
    const gx = Math.min(this.size - 1, Math.floor(this.coord(x, 0)));
    const gy = Math.min(this.size - 1, Math.floor(this.coord(y, 1)));
    return gx >= 0 && gy >= 0 ? gy * this.size + gx : -1;
  }

  /**
   * Index of the point nearest to normalised (x, y) within `radius` (normalised units)
   * for which visible(i) holds, or -1.
   */
  nearest(x, y, radius, visible) {
    const { positions: p, dims, norm, size } = this;
    const toGrid = (v) => (v + 1) * 0.5 * size;
    const x0 = Math.max(0, Math.floor(toGrid(x - radius)));
    const x1 = Math.min(size - 1, Math.floor(toGrid(x + radius)));
    const y0 = Math.max(0, Math.floor(toGrid(y - radius)));
    const y1 = Math.min(size - 1, Math.floor(toGrid(y + radius)));
    let best = -1;
    let bestDist = radius * radius;
    for (let gy = y0; gy <= y1; gy++) {
      for (let gx = x0; gx <= x1; gx++) {
        const c = gy * size + gx;
        for (let k = this.starts[c]; k < this.starts[c + 1]; k++) {
          const i = this.items[k];
          const dx = (p[i * dims] - norm.center[0]) * norm.scale - x;
          const dy = (p[i * dims + 1] - norm.center[1]) * norm.scale - y;
          const d = dx * dx + dy * dy;
          if (d <= bestDist && visible(i)) { bestDist = d; best = i; }
        }
      }
    }
    return best;
  }
}
