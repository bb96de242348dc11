// 2D (orthographic pan/zoom) and 3D (orbit around a target, perspective) cameras over
// normalised data coordinates ([-1, 1] on the largest axis). Matrices are column-major.

const FOV = Math.PI / 4;
const TAN_HALF = Math.tan(FOV / 2);

function multiply(a, b) {
  const out = new Float32Array(16);
  for (let c = 0; c < 4; c++) {
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      out[c * 4 + r] = s;
    }
  }
  return out;
}

function perspective(aspect, near, far) {
  const f = 1 / TAN_HALF;
  const nf = 1 / (near - far);
  return new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0]);
}

const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const normalize = (a) => { const l = Math.hypot(...a) || 1; return [a[0] / l, a[1] / l, a[2] / l]; };

export class Camera {
  constructor() {
    this.is3d = false;
    this.reset();
  }

  setMode(is3d) {
    this.is3d = is3d;
    this.reset();
  }

  reset() {
    this.center = [0, 0];
    this.zoom = 0.92;
    this.target = [0, 0, 0];
    this.yaw = 0.6;
    this.pitch = 0.35;
    this.distance = 1.25 / Math.sin(FOV / 2);
  }

  /**
   * Frame a box of normalised coordinates ({lo, hi}, 2 or 3 values each) in a viewport of
   * width x height CSS pixels, with the same margin as the reset view.
   */
  fit(box, width, height) {
    const half = box.lo.map((lo, d) => Math.max((box.hi[d] - lo) / 2, 1e-4));
    const mid = box.lo.map((lo, d) => (lo + box.hi[d]) / 2);
    if (!this.is3d) {
      const m = Math.min(width, height);
      this.center = [mid[0], mid[1]];
      this.zoom = Math.max(0.05, Math.min(5000, 0.92 * Math.min(width / (half[0] * m), height / (half[1] * m))));
      return;
    }
    this.target = [mid[0], mid[1], mid[2] || 0];
    this.distance = Math.max(0.02, Math.min(50, (1.25 * Math.max(...half)) / Math.sin(FOV / 2)));
  }

  // Orthonormal camera frame for 3D: eye position, right, up, forward.
  frame() {
    const cp = Math.cos(this.pitch);
    const offset = [cp * Math.sin(this.yaw), Math.sin(this.pitch), cp * Math.cos(this.yaw)];
    const eye = this.target.map((t, i) => t + offset[i] * this.distance);
    const forward = normalize(sub(this.target, eye));
    const right = normalize(cross(forward, [0, 1, 0]));
    const up = cross(right, forward);
    return { eye, right, up, forward };
  }

  /** Clip-from-data matrix for a viewport of width x height CSS pixels. */
  matrix(width, height) {
    if (!this.is3d) {
      const m = Math.min(width, height);
      const sx = (this.zoom * m) / width;
      const sy = (this.zoom * m) / height;
      return new Float32Array([sx, 0, 0, 0, 0, sy, 0, 0, 0, 0, -0.1, 0, -this.center[0] * sx, -this.center[1] * sy, 0, 1]);
    }
    const { eye, right, up, forward } = this.frame();
    const view = new Float32Array([
      right[0], up[0], -forward[0], 0,
      right[1], up[1], -forward[1], 0,
      right[2], up[2], -forward[2], 0,
      -dot(right, eye), -dot(up, eye), dot(forward, eye), 1,
    ]);
    const near = Math.max(this.distance * 0.01, 0.001);
    return multiply(perspective(width / height, near, this.distance + 10), view);
  }

  /** 2D only: CSS pixels per normalised data unit. */
  pixelsPerUnit(width, height) {
    return (this.zoom * Math.min(width, height)) / 2;
  }

  /** 2D only: the normalised data point under CSS pixel (px, py). */
  unproject(px, py, width, height) {
    const k = this.pixelsPerUnit(width, height);
    return [(px - width / 2) / k + this.center[0], (height / 2 - py) / k + this.center[1]];
  }

  /** Move the view by a drag of (dx, dy) CSS pixels. */
  pan(dx, dy, width, height) {
    if (!this.is3d) {
      const perPixel = 2 / (this.zoom * Math.min(width, height));
      this.center[0] -= dx * perPixel;
      this.center[1] += dy * perPixel;
      return;
    }
    const { right, up } = this.frame();
    const perPixel = (2 * this.distance * TAN_HALF) / height;
    for (let i = 0; i < 3; i++) this.target[i] += (-dx * right[i] + dy * up[i]) * perPixel;
  }

  orbit(dx, dy) {
    this.yaw -= dx * 0.008;
    this.pitch = Math.max(-1.5, Math.min(1.5, this.pitch + dy * 0.008));
  }

  /** Zoom by `factor` (>1 = closer) keeping the point under (px, py) in place. */
  zoomAt(factor, px, py, width, height) {
    const nx = (2 * px) / width - 1;
    const ny = 1 - (2 * py) / height;
    if (!this.is3d) {
      const m = Math.min(width, height);
      const before = [(nx * width) / (this.zoom * m), (ny * height) / (this.zoom * m)];
      this.zoom = Math.max(0.05, Math.min(5000, this.zoom * factor));
      const after = [(nx * width) / (this.zoom * m), (ny * height) / (this.zoom * m)];
      this.center[0] += before[0] - after[0];
      this.center[1] += before[1] - after[1];
      return;
    }
    const { right, up } = this.frame();
    const h = this.distance * TAN_HALF;
    const point = this.target.map((t, i) => t + right[i] * nx * h * (width / height) + up[i] * ny * h);
    const keep = 1 / factor;
    const next = Math.max(0.02, Math.min(50, this.distance * keep));
    const moved = 1 - next / this.distance;
    this.target = this.target.map((t, i) => t + (point[i] - t) * moved);
    this.distance = next;
  }
}
