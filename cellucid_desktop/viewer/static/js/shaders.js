// GLSL ES 3.00 sources. One vertex shader serves the colour pass and (with PICK
// defined) the id pass used for hovering, so both agree on what is visible.

export const VERTEX = `
precision highp float;
precision highp int;
layout(location = 0) in vec3 a_pos;
layout(location = 1) in uint a_code;
layout(location = 2) in float a_value;
layout(location = 3) in uint a_sel;
uniform mat4 u_matrix;
uniform vec3 u_center;
uniform float u_scale;
uniform float u_pointSize;
uniform int u_mode;          // 0 plain, 1 categorical codes, 2 continuous values
uniform sampler2D u_catLut;  // 4096 wide: rgb, a = 255 shown / 0 hidden
uniform sampler2D u_cmap;    // 256 x 1 colour map
uniform vec2 u_range;         // colour-map span, in log1p units when u_log
uniform bool u_log;
uniform vec4 u_zero;          // rgb for exact zeros (genes), a > 0.5 when used
uniform vec3 u_plain;
uniform vec4 u_missing;      // rgb, a > 0.5 when missing values are shown
uniform int u_selMode;       // 0 no selection, 1 dim the rest, 2 only the selection
uniform float u_opacity;
#ifdef PICK
flat out uint v_id;
#else
out vec4 v_color;
#endif

bool isMissing(float v) {
  uint bits = floatBitsToUint(v);
  return (bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0u;
}

void main() {
  vec3 color = u_plain;
  bool visible = true;
  if (u_mode == 1) {
    if (a_code == 65535u) {
      color = u_missing.rgb;
      visible = u_missing.a > 0.5;
    } else {
      vec4 c = texelFetch(u_catLut, ivec2(int(a_code & 4095u), int(a_code >> 12u)), 0);
      color = c.rgb;
      visible = c.a > 0.5;
    }
  } else if (u_mode == 2) {
    if (isMissing(a_value)) {
      color = u_missing.rgb;
      visible = u_missing.a > 0.5;
    } else if (a_value == 0.0 && u_zero.a > 0.5) {
      color = u_zero.rgb;
    } else {
      float v = u_log ? log(1.0 + max(a_value, 0.0)) : a_value;
      float span = u_range.y - u_range.x;
      float t = span > 0.0 ? clamp((v - u_range.x) / span, 0.0, 1.0) : 0.5;
      color = texelFetch(u_cmap, ivec2(int(t * 255.0 + 0.5), 0), 0).rgb;
    }
  }
  float alpha = u_opacity;
  if (u_selMode == 2 && a_sel == 0u) visible = false;
  if (u_selMode == 1 && a_sel == 0u) {
    alpha *= 0.15;
    color = mix(color, u_missing.rgb, 0.5);
  }
  if (!visible) {
    gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
    gl_PointSize = 0.0;
    return;
  }
  gl_Position = u_matrix * vec4((a_pos - u_center) * u_scale, 1.0);
  // dimmed cells sit at the far plane, so in 3D they never hide selected ones
  if (u_selMode == 1 && a_sel == 0u) gl_Position.z = 0.9999 * gl_Position.w;
  gl_PointSize = u_pointSize;
#ifdef PICK
  v_id = uint(gl_VertexID) + 1u;
#else
  v_color = vec4(color, alpha);
#endif
}
`;

export const FRAGMENT = `
precision highp float;
precision highp int;
uniform bool u_round;
#ifdef PICK
flat in uint v_id;
#else
in vec4 v_color;
#endif
out vec4 outColor;

void main() {
  if (u_round) {
    vec2 d = gl_PointCoord - 0.5;
    if (dot(d, d) > 0.25) discard;
  }
#ifdef PICK
  outColor = vec4(float(v_id & 255u), float((v_id >> 8u) & 255u), float((v_id >> 16u) & 255u),
                  float((v_id >> 24u) & 255u)) / 255.0;
#else
  outColor = v_color;
#endif
}
`;
