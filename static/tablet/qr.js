// QR codes drawn on a canvas with the vendored qrcode-generator (Kazuhiko Arase, MIT),
// loaded as a classic script that defines the global `qrcode`.

/** Draw `text` as a QR code filling a square canvas of `size` CSS pixels. */
export function drawQr(canvas, text, size = 240) {
  const make = globalThis.qrcode;
  // Long texts (a receipt's check URL) at level L keep the modules big enough to read.
  const qr = make(0, text.length > 80 ? "L" : "M");
  qr.addData(text, "Byte");
  qr.make();
  const count = qr.getModuleCount();
  const quiet = 4; // the standard's blank margin, so phones read it
  const ratio = window.devicePixelRatio || 1;
  const cell = Math.max(1, Math.floor((size * ratio) / (count + quiet * 2)));
  const side = cell * (count + quiet * 2);
  canvas.width = side;
  canvas.height = side;
  canvas.style.width = `${Math.round(side / ratio)}px`;
  canvas.style.height = `${Math.round(side / ratio)}px`;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, side, side);
  context.fillStyle = "#000";
  for (let row = 0; row < count; row++) {
    for (let col = 0; col < count; col++) {
      if (qr.isDark(row, col)) context.fillRect((col + quiet) * cell, (row + quiet) * cell, cell, cell);
    }
  }
  canvas.dataset.text = text;
  return canvas;
}
