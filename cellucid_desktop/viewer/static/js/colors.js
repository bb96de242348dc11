// Colours: a categorical palette that stays distinct for any number of categories,
// and sequential colour maps given as evenly spaced stops (interpolated to 256 steps).

export const MISSING_RGB = [150, 150, 150];

// 20 hand-picked, well separated hues for the common case.
const BASE_PALETTE = [
  "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#1f9e89", "#d37295", "#8cd17d", "#a0cbe8", "#ffbe7d", "#86bcb6", "#f1ce63",
  "#d4a6c8", "#499894", "#e377c2", "#6b6ecf",
];

export const COLORMAPS = {
  viridis: ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"],
  magma: ["#000004", "#140e36", "#3b0f70", "#641a80", "#8c2981", "#b73779", "#de4968", "#f7705c", "#fe9f6d", "#fecf92", "#fcfdbf"],
  plasma: ["#0d0887", "#41049d", "#6a00a8", "#8f0da4", "#b12a90", "#cc4778", "#e16462", "#f2844b", "#fca636", "#fcce25", "#f0f921"],
  inferno: ["#000004", "#1b0c41", "#4a0c6b", "#781c6d", "#a52c60", "#cf4446", "#ed6925", "#fb9b06", "#f7d13d", "#fcffa4"],
  cividis: ["#00224e", "#123570", "#3b496c", "#575d6d", "#707173", "#8a8779", "#a69d75", "#c4b56c", "#e4cf5b", "#fee838"],
  reds: ["#d9d9d9", "#f4b9a3", "#f08a6c", "#e0533d", "#b8202b", "#67000d"],
  blues: ["#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"],
  coolwarm: ["#3b4cc0", "#6788ee", "#9abbff", "#c9d7f0", "#edd1c2", "#f7a889", "#e26952", "#b40426"],
};

function hexToRgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export const rgbToCss = ([r, g, b]) => `rgb(${r}, ${g}, ${b})`;

function hslToRgb(h, s, l) {
  const k = (n) => (n + h * 12) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1));
  return [f(0), f(8), f(4)].map((x) => Math.round(x * 255));
}

/** Colour of category i: the base set, then golden-angle hues cycling three lightness levels. */
export function categoryColor(i) {
  if (i < BASE_PALETTE.length) return hexToRgb(BASE_PALETTE[i]);
  const j = i - BASE_PALETTE.length;
  const hue = (j * 0.381966 + 0.07) % 1;
  const lightness = [0.55, 0.42, 0.68][j % 3];
  const saturation = [0.65, 0.75, 0.55][Math.floor(j / 3) % 3];
  return hslToRgb(hue, saturation, lightness);
}

/** 256 RGBA entries of a colour map, as bytes for a LUT texture. */
export function colormapLut(name) {
  const stops = (COLORMAPS[name] || COLORMAPS.viridis).map(hexToRgb);
  const lut = new Uint8Array(256 * 4);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(Math.floor(t), stops.length - 2);
    const f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 4 + c] = Math.round(stops[k][c] * (1 - f) + stops[k + 1][c] * f);
    lut[i * 4 + 3] = 255;
  }
  return lut;
}

/** The colour at position t (0..1) of a colour map: the LUT entry the shader picks. */
export function colormapAt(lut, t) {
  const i = Math.round(Math.max(0, Math.min(1, t)) * 255) * 4;
  return [lut[i], lut[i + 1], lut[i + 2]];
}
