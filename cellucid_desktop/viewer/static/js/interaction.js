// Mouse and touch on the plot: drag pans (2D) or orbits (3D; shift or right button
// pans), the wheel zooms toward the cursor, and a resting cursor is reported for hovering.

const HOVER_DELAY_MS = 40;

export function attachInteraction(canvas, renderer, onHover) {
  const camera = renderer.camera;
  let drag = null;
  let hoverTimer = null;

  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId);
    const pan = !camera.is3d || e.shiftKey || e.button !== 0;
    drag = { x: e.clientX, y: e.clientY, pan };
    canvas.classList.add("dragging");
    onHover(null);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (drag) {
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      drag.x = e.clientX;
      drag.y = e.clientY;
      if (drag.pan) camera.pan(dx, dy, canvas.clientWidth, canvas.clientHeight);
      else camera.orbit(dx, dy);
      renderer.requestRender();
      return;
    }
    clearTimeout(hoverTimer);
    const r = canvas.getBoundingClientRect();
    const x = e.clientX - r.left;
    const y = e.clientY - r.top;
    hoverTimer = setTimeout(() => onHover({ x, y }), HOVER_DELAY_MS);
  });
  const end = () => { drag = null; canvas.classList.remove("dragging"); };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("pointerleave", () => { clearTimeout(hoverTimer); onHover(null); });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    const delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    camera.zoomAt(Math.exp(-delta * 0.0015), e.clientX - r.left, e.clientY - r.top, canvas.clientWidth, canvas.clientHeight);
    renderer.requestRender();
  }, { passive: false });
}
