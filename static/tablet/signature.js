// The recipient's signature on a canvas: pointer events (finger, pen or mouse), a
// Clear button, and a small PNG for the server.

/** Attach a signature pad to a canvas; returns {clear, isEmpty, toPngBase64}. */
export function signaturePad(canvas) {
  const context = canvas.getContext("2d");
  let drawn = 0; // length of ink in CSS pixels: a stray tap is not a signature
  let last = null;

  function fit() {
    // Draw at the screen's real resolution so lines stay sharp on a tablet.
    const ratio = window.devicePixelRatio || 1;
    const box = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(box.width * ratio));
    canvas.height = Math.max(1, Math.round(box.height * ratio));
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.lineWidth = 3;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = "#000";
    drawn = 0;
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    context.beginPath();
    context.arc(last.x, last.y, 1.5, 0, Math.PI * 2);
    context.fillStyle = "#000";
    context.fill();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const each of events.length ? events : [event]) {
      const next = point(each);
      context.beginPath();
      context.moveTo(last.x, last.y);
      context.lineTo(next.x, next.y);
      context.stroke();
      drawn += Math.hypot(next.x - last.x, next.y - last.y);
      last = next;
    }
  });
  const end = () => {
    last = null;
    canvas.dispatchEvent(new CustomEvent("signature-change"));
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  fit();
  return {
    clear() {
      context.clearRect(0, 0, canvas.width, canvas.height);
      fit();
      canvas.dispatchEvent(new CustomEvent("signature-change"));
    },
    isEmpty() {
      return drawn < 30;
    },
    /** Return the signature as a PNG (base64, no data: prefix), at most 600 px wide, on white. */
    toPngBase64() {
      const scale = Math.min(1, 600 / canvas.width);
      const out = document.createElement("canvas");
      out.width = Math.round(canvas.width * scale);
      out.height = Math.round(canvas.height * scale);
      const ctx = out.getContext("2d");
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, out.width, out.height);
      ctx.drawImage(canvas, 0, 0, out.width, out.height);
      return out.toDataURL("image/png").replace(/^data:image\/png;base64,/, "");
    },
  };
}
