// WebGL2 scatter renderer: one draw call for all points. Positions, category codes,
// continuous values and the selection flag go to the GPU as the typed arrays the API
// sent; colours come from LUT textures in the vertex shader, so recolouring or hiding
// a category never loops over points in JavaScript. Frames are drawn on demand.

import { Camera } from "./camera.js";
import { VERTEX, FRAGMENT } from "./shaders.js";
import { colormapLut } from "./colors.js";
import { scaleUniforms } from "./color-scale.js";

const LUT_WIDTH = 4096;
const MODE = { plain: 0, categorical: 1, continuous: 2 };

export class WebGLMissingError extends Error {}

function compile(gl, defines) {
  const program = gl.createProgram();
  for (const [type, source] of [[gl.VERTEX_SHADER, VERTEX], [gl.FRAGMENT_SHADER, FRAGMENT]]) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, `#version 300 es\n${defines}${source}`);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
      throw new Error(`Shader compile failed: ${gl.getShaderInfoLog(shader)}`);
    }
    gl.attachShader(program, shader);
  }
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
    throw new Error(`Shader link failed: ${gl.getProgramInfoLog(program)}`);
  }
  const uniforms = {};
  const count = gl.getProgramParameter(program, gl.ACTIVE_UNIFORMS);
  for (let i = 0; i < count; i++) {
    const name = gl.getActiveUniform(program, i).name;
    uniforms[name] = gl.getUniformLocation(program, name);
  }
  return { program, uniforms };
}

/** Centre and scale that map a position array's bounding box into [-1, 1] (largest axis). */
function normalisation(positions, dims) {
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (let d = 0; d < dims; d++) {
    let a = Infinity;
    let b = -Infinity;
    for (let i = d; i < positions.length; i += dims) {
      const v = positions[i];
      if (v < a) a = v;
      if (v > b) b = v;
    }
    lo[d] = a;
    hi[d] = b;
  }
  const center = [0, 0, 0];
  let range = 0;
  for (let d = 0; d < dims; d++) {
    if (!(hi[d] >= lo[d])) continue; // all missing
    center[d] = (lo[d] + hi[d]) / 2;
    range = Math.max(range, hi[d] - lo[d]);
  }
  return { center, scale: range > 0 ? 2 / range : 1 };
}

/**
 * Point indices ordered by value (missing first, highest last), so in 2D the cells that
 * express a gene are drawn on top of the many that do not. A counting sort over 1024
 * bins: two passes, no comparisons, ~10 ms at a million cells.
 */
function valueOrder(values, min, max) {
  const bins = 1024;
  const span = max > min ? (bins - 1) / (max - min) : 0;
  const bin = new Uint16Array(values.length);
  const starts = new Uint32Array(bins + 2);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const b = v === v ? 1 + Math.min(bins - 1, Math.max(0, Math.floor((v - min) * span))) : 0;
    bin[i] = b;
    starts[b + 1]++;
  }
  for (let b = 1; b < starts.length; b++) starts[b] += starts[b - 1];
  const order = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) order[starts[bin[i]]++] = i;
  return order;
}

export class PointRenderer {
  constructor(canvas) {
    const gl = canvas.getContext("webgl2", { antialias: false, alpha: false, depth: true, preserveDrawingBuffer: true });
    if (!gl) throw new WebGLMissingError("WebGL2 is not available");
    this.canvas = canvas;
    this.gl = gl;
    this.camera = new Camera();
    this.color = compile(gl, "");
    this.pick = compile(gl, "#define PICK\n");
    this.vao = gl.createVertexArray();
    this.buffers = { pos: gl.createBuffer(), code: gl.createBuffer(), value: gl.createBuffer(), sel: gl.createBuffer(),
      order: gl.createBuffer() };
    this.catLut = this.makeTexture();
    this.cmap = this.makeTexture();
    this.count = 0;
    this.dims = 2;
    this.norm = { center: [0, 0, 0], scale: 1 };
    this.mode = MODE.plain;
    this.range = [0, 1];
    this.log = false;
    this.zeroShown = false;
    this.selMode = 0;
    this.style = { pointSize: 3, opacity: 0.85, background: [1, 1, 1], plain: [0.35, 0.45, 0.6], missing: [0.6, 0.6, 0.6],
      zero: [0.8, 0.8, 0.8], missingVisible: true };
    this.pending = null;
    this.drawListeners = [];
    this.pickTarget = null;
    this.setColormap("viridis");
    this.setCategoryColors([], []);
    gl.bindVertexArray(this.vao);
    gl.vertexAttribI4ui(1, 0, 0, 0, 0);
    gl.vertexAttrib4f(2, 0, 0, 0, 0);
    gl.vertexAttribI4ui(3, 0, 0, 0, 0);
  }

  makeTexture() {
    const gl = this.gl;
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, p, gl.NEAREST);
    for (const p of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T]) gl.texParameteri(gl.TEXTURE_2D, p, gl.CLAMP_TO_EDGE);
    return texture;
  }

  upload(texture, width, height, bytes) {
    const gl = this.gl;
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, width, height, 0, gl.RGBA, gl.UNSIGNED_BYTE, bytes);
  }

  attribute(location, buffer, data, size, type, integer) {
    const gl = this.gl;
    gl.bindVertexArray(this.vao);
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    if (integer) gl.vertexAttribIPointer(location, size, type, 0, 0);
    else gl.vertexAttribPointer(location, size, type, false, 0, 0);
    gl.enableVertexAttribArray(location);
  }

  /** Upload point indices (WebGL keeps index buffers on the element target for life). */
  elements(buffer, indices) {
    const gl = this.gl;
    gl.bindVertexArray(this.vao);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, indices, gl.STATIC_DRAW);
  }

  /** Points in API order; `dims` is 2 or 3 (3 switches the camera to orbit). */
  setPositions(positions, dims) {
    this.dims = dims;
    this.count = positions.length / dims;
    this.positions = positions;
    this.norm = normalisation(positions, dims);
    this.attribute(0, this.buffers.pos, positions, dims, this.gl.FLOAT, false);
    this.camera.setMode(dims === 3);
    this.setSelection(null, 0);
    this.requestRender();
  }

  setPlain() {
    this.mode = MODE.plain;
    this.requestRender();
  }

  setCategorical(codes) {
    this.attribute(1, this.buffers.code, codes, 1, this.gl.UNSIGNED_SHORT, true);
    this.mode = MODE.categorical;
    this.requestRender();
  }

  /** colors[i] = [r, g, b] bytes; shown[i] false hides category i. */
  setCategoryColors(colors, shown) {
    const rows = Math.max(1, Math.ceil(colors.length / LUT_WIDTH));
    const lut = new Uint8Array(LUT_WIDTH * rows * 4);
    colors.forEach((rgb, i) => {
      lut.set(rgb, i * 4);
      lut[i * 4 + 3] = shown[i] ? 255 : 0;
    });
    this.upload(this.catLut, LUT_WIDTH, rows, lut);
    this.requestRender();
  }

  /** Values drawn in value order (2D); min/max is their data range. */
  setContinuous(values, min, max) {
    const gl = this.gl;
    this.attribute(2, this.buffers.value, values, 1, gl.FLOAT, false);
    this.elements(this.buffers.order, valueOrder(values, min, max));
    this.mode = MODE.continuous;
    this.requestRender();
  }

  /** Where the colour map starts and ends ({lo, hi, log}, see color-scale.js); zero: exact zeros in the zero colour. */
  setScale(scale, zero) {
    const { range, log } = scaleUniforms(scale);
    this.range = range;
    this.log = log;
    this.zeroShown = zero;
    this.requestRender();
  }

  /** fn() runs after each frame drawn on screen (labels that follow the camera). */
  onDraw(fn) {
    this.drawListeners.push(fn);
  }

  setColormap(name) {
    this.upload(this.cmap, 256, 1, colormapLut(name));
    this.requestRender();
  }

  /** flags: Uint8Array (1 = selected) or null; mode 0 none, 1 dim the rest, 2 only selected. */
  setSelection(flags, mode) {
    const gl = this.gl;
    gl.bindVertexArray(this.vao);
    if (flags) {
      this.attribute(3, this.buffers.sel, flags, 1, gl.UNSIGNED_BYTE, true);
    } else {
      gl.disableVertexAttribArray(3);
    }
    this.selMode = flags ? mode : 0;
    this.requestRender();
  }

  setStyle(style) {
    Object.assign(this.style, style);
    this.requestRender();
  }

  /** Canvas size in device pixels follows its CSS size. */
  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.canvas.clientHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
      this.requestRender();
    }
  }

  matrix() {
    return this.camera.matrix(this.canvas.clientWidth || 1, this.canvas.clientHeight || 1);
  }

  /** Schedule one frame; the promise resolves once it has been drawn. */
  requestRender() {
    if (!this.pending) {
      this.pending = new Promise((resolve) => {
        requestAnimationFrame(() => {
          this.pending = null;
          this.draw(null, this.canvas.width, this.canvas.height, 1);
          for (const fn of this.drawListeners) fn();
          resolve();
        });
      });
    }
    return this.pending;
  }

  /**
   * Draw a frame and wait until the GPU has finished it (draw calls themselves return at
   * once). A fence is polled, so the page stays responsive while a software GPU spends
   * most of a second on a million points.
   */
  async drawn() {
    await this.requestRender();
    await this.gpuFinished();
  }

  /** Resolves once the GPU has run every command issued so far. */
  gpuFinished() {
    const gl = this.gl;
    const sync = gl.fenceSync(gl.SYNC_GPU_COMMANDS_COMPLETE, 0);
    if (!sync) {  // a context that cannot make fences: a one-pixel read waits instead
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
      return Promise.resolve();
    }
    gl.flush();
    return new Promise((resolve) => {
      const poll = () => {
        const state = gl.clientWaitSync(sync, 0, 0);
        if (state === gl.TIMEOUT_EXPIRED && !gl.isContextLost()) { setTimeout(poll, 4); return; }
        gl.deleteSync(sync);
        resolve();
      };
      poll();
    });
  }

  draw(pass, width, height, sizeScale) {
    const gl = this.gl;
    const { program, uniforms: u } = pass || this.color;
    const dpr = window.devicePixelRatio || 1;
    const bg = this.style.background;
    gl.viewport(0, 0, width, height);
    if (pass) gl.clearColor(0, 0, 0, 0);
    else gl.clearColor(bg[0], bg[1], bg[2], 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    if (!this.count) return;
    gl.useProgram(program);
    gl.bindVertexArray(this.vao);
    if (this.mode !== MODE.categorical) { gl.disableVertexAttribArray(1); gl.vertexAttribI4ui(1, 0, 0, 0, 0); } else gl.enableVertexAttribArray(1);
    if (this.mode !== MODE.continuous) { gl.disableVertexAttribArray(2); gl.vertexAttrib4f(2, 0, 0, 0, 0); } else gl.enableVertexAttribArray(2);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.catLut);
    gl.activeTexture(gl.TEXTURE1);
    gl.bindTexture(gl.TEXTURE_2D, this.cmap);
    const size = this.style.pointSize * dpr * sizeScale;
    gl.uniformMatrix4fv(u.u_matrix, false, this.matrix());
    gl.uniform3fv(u.u_center, this.norm.center);
    gl.uniform1f(u.u_scale, this.norm.scale);
    gl.uniform1f(u.u_pointSize, size);
    gl.uniform1i(u.u_mode, this.mode);
    gl.uniform1i(u.u_catLut, 0);
    gl.uniform1i(u.u_cmap, 1);
    gl.uniform2f(u.u_range, this.range[0], this.range[1]);
    gl.uniform1i(u.u_log, this.log ? 1 : 0);
    gl.uniform4f(u.u_zero, ...this.style.zero, this.zeroShown ? 1 : 0);
    gl.uniform3fv(u.u_plain, this.style.plain);
    gl.uniform4f(u.u_missing, ...this.style.missing, this.style.missingVisible ? 1 : 0);
    gl.uniform1i(u.u_selMode, this.selMode);
    gl.uniform1f(u.u_opacity, this.style.opacity);
    gl.uniform1i(u.u_round, size >= 3 ? 1 : 0);
    if (this.dims === 3) gl.enable(gl.DEPTH_TEST); else gl.disable(gl.DEPTH_TEST);
    if (pass) {
      gl.disable(gl.BLEND);
    } else {
      gl.enable(gl.BLEND);
      gl.blendFuncSeparate(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA, gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    }
    if (this.mode === MODE.continuous && this.dims !== 3) {
      // 2D continuous colouring draws in value order; 3D has the depth test instead.
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.buffers.order);
      gl.drawElements(gl.POINTS, this.count, gl.UNSIGNED_INT, 0);
    } else {
      gl.drawArrays(gl.POINTS, 0, this.count);
    }
  }

  /** A new offscreen RGBA8 + depth target of the given size; free() releases it. */
  target(width, height) {
    const gl = this.gl;
    const fb = gl.createFramebuffer();
    const color = gl.createRenderbuffer();
    const depth = gl.createRenderbuffer();
    gl.bindRenderbuffer(gl.RENDERBUFFER, color);
    gl.renderbufferStorage(gl.RENDERBUFFER, gl.RGBA8, width, height);
    gl.bindRenderbuffer(gl.RENDERBUFFER, depth);
    gl.renderbufferStorage(gl.RENDERBUFFER, gl.DEPTH_COMPONENT24, width, height);
    gl.bindFramebuffer(gl.FRAMEBUFFER, fb);
    gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.RENDERBUFFER, color);
    gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.DEPTH_ATTACHMENT, gl.RENDERBUFFER, depth);
    const free = () => { gl.deleteFramebuffer(fb); gl.deleteRenderbuffer(color); gl.deleteRenderbuffer(depth); };
    return { fb, width, height, free };
  }

  /** Index of the visible point nearest to CSS pixel (x, y) within a few pixels, or -1. */
  pickAt(x, y) {
    if (!this.count) return -1;
    const gl = this.gl;
    const { width, height } = this.canvas;
    if (!this.pickTarget || this.pickTarget.width !== width || this.pickTarget.height !== height) {
      if (this.pickTarget) this.pickTarget.free();
      this.pickTarget = this.target(width, height);
    }
    const dpr = window.devicePixelRatio || 1;
    const radius = Math.ceil(Math.max(4, this.style.pointSize) * dpr);
    const cx = Math.round(x * dpr);
    const cy = height - 1 - Math.round(y * dpr);
    const x0 = Math.max(0, cx - radius);
    const y0 = Math.max(0, cy - radius);
    const w = Math.min(width, cx + radius + 1) - x0;
    const h = Math.min(height, cy + radius + 1) - y0;
    if (w <= 0 || h <= 0) return -1;
    gl.bindFramebuffer(gl.FRAMEBUFFER, this.pickTarget.fb);
    gl.enable(gl.SCISSOR_TEST);
    gl.scissor(x0, y0, w, h);
    this.draw(this.pick, width, height, 1);
    gl.disable(gl.SCISSOR_TEST);
    const pixels = new Uint8Array(w * h * 4);
    gl.readPixels(x0, y0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    let best = -1;
    let bestDist = Infinity;
    for (let j = 0; j < h; j++) {
      for (let i = 0; i < w; i++) {
        const o = (j * w + i) * 4;
        const id = (pixels[o] | (pixels[o + 1] << 8) | (pixels[o + 2] << 16)) + pixels[o + 3] * 16777216;
        if (!id) continue;
        const d = (x0 + i - cx) ** 2 + (y0 + j - cy) ** 2;
        if (d < bestDist) { bestDist = d; best = id - 1; }
      }
    }
    return best;
  }

  /**
   * The current view at `scale` times the canvas resolution, as top-down RGBA rows. The
   * pixels come back through a pixel-pack buffer once a fence says the GPU is done, so a
   * large export does not freeze the page while it is drawn.
   */
  async renderImage(scale) {
    const gl = this.gl;
    const limit = Math.min(gl.getParameter(gl.MAX_RENDERBUFFER_SIZE), gl.getParameter(gl.MAX_VIEWPORT_DIMS)[0]);
    const factor = Math.min(scale, limit / this.canvas.width, limit / this.canvas.height);
    const width = Math.floor(this.canvas.width * factor);
    const height = Math.floor(this.canvas.height * factor);
    const target = this.target(width, height);
    const pack = gl.createBuffer();
    const pixels = new Uint8ClampedArray(width * height * 4);
    try {
      this.draw(null, width, height, factor);
      gl.bindBuffer(gl.PIXEL_PACK_BUFFER, pack);
      gl.bufferData(gl.PIXEL_PACK_BUFFER, pixels.byteLength, gl.STREAM_READ);
      gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, 0);
      gl.bindBuffer(gl.PIXEL_PACK_BUFFER, null);
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      await this.gpuFinished();
      gl.bindBuffer(gl.PIXEL_PACK_BUFFER, pack);
      gl.getBufferSubData(gl.PIXEL_PACK_BUFFER, 0, pixels);
      gl.bindBuffer(gl.PIXEL_PACK_BUFFER, null);
    } finally {
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      gl.deleteBuffer(pack);
      target.free();
    }
    const row = width * 4;
    const swap = new Uint8ClampedArray(row);
    for (let top = 0, bottom = height - 1; top < bottom; top++, bottom--) {
      swap.set(pixels.subarray(top * row, top * row + row));
      pixels.copyWithin(top * row, bottom * row, bottom * row + row);
      pixels.set(swap, bottom * row);
    }
    this.requestRender();
    return { width, height, pixels };
  }

  /** CSS-pixel screen positions of all points (for the lasso), NaN where off-screen. */
  projectAll() {
    const m = this.matrix();
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    const out = new Float32Array(this.count * 2);
    const xy = [0, 0];
    for (let i = 0; i < this.count; i++) {
      const ok = project(m, this.norm, this.positions, this.dims, i, w, h, xy);
      out[i * 2] = ok ? xy[0] : NaN;
      out[i * 2 + 1] = ok ? xy[1] : NaN;
    }
    return out;
  }

  /** CSS-pixel position of one raw point ([x, y] or [x, y, z]), or null when off screen. */
  projectPoint(point) {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    const xy = [0, 0];
    const ok = project(this.matrix(), this.norm, point, point.length, 0, w, h, xy);
    return ok && xy[0] >= 0 && xy[0] <= w && xy[1] >= 0 && xy[1] <= h ? xy : null;
  }
}

/** Screen position (CSS pixels, into `out`) of point i of `p`; false when behind the camera. */
function project(m, norm, p, dims, i, w, h, out) {
  const { center, scale } = norm;
  const x = (p[i * dims] - center[0]) * scale;
  const y = (p[i * dims + 1] - center[1]) * scale;
  const z = dims === 3 ? (p[i * dims + 2] - center[2]) * scale : 0;
  const cw = m[3] * x + m[7] * y + m[11] * z + m[15];
  out[0] = ((m[0] * x + m[4] * y + m[8] * z + m[12]) / cw + 1) * 0.5 * w;
  out[1] = (1 - (m[1] * x + m[5] * y + m[9] * z + m[13]) / cw) * 0.5 * h;
  return cw > 0;
}
