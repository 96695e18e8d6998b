// Small helpers of the tablet app: money, dates, text folding, client references.

/** Format integer đồng as "1.234.000 đ" (dot thousands, then " đ"). */
export function money(vnd) {
  const n = Math.trunc(Number(vnd) || 0);
  const sign = n < 0 ? "-" : "";
  const digits = String(Math.abs(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
  return `${sign}${digits} đ`;
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/** Format a Date (or ISO text) as dd/mm/yyyy in local time. */
export function date(value) {
  if (!value) return "";
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const [y, m, d] = value.split("-");
    return `${d}/${m}/${y}`;
  }
  const when = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(when.getTime())) return String(value);
  return `${pad(when.getDate())}/${pad(when.getMonth() + 1)}/${when.getFullYear()}`;
}

/** Format a moment as "dd/mm/yyyy hh:mm" in local time. */
export function dateTime(value) {
  const when = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(when.getTime())) return String(value || "");
  return `${date(when)} ${pad(when.getHours())}:${pad(when.getMinutes())}`;
}

/** Format a period "2026-12" as "12/2026". */
export function period(code) {
  const m = /^(\d{4})-(\d{2})$/.exec(code || "");
  return m ? `${m[2]}/${m[1]}` : String(code || "");
}

/** Return local time with its offset, e.g. "2026-12-02T09:15:00+07:00" (what the server expects). */
export function localIso(when = new Date()) {
  const offset = -when.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return (
    `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}` +
    `T${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

/** Return today's local date as "YYYY-MM-DD" (to compare with a proxy's valid_until). */
export function todayIso(when = new Date()) {
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`;
}

/** Fold Vietnamese text for search: no diacritics, đ→d, lower case ("Nguyễn" → "nguyen"). */
export function fold(text) {
  return String(text || "")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/đ/g, "d")
    .replace(/Đ/g, "D")
    .toLowerCase()
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * Make a unique client reference: "tab-" and 32 hex characters from crypto.getRandomValues
 * (randomUUID needs a secure context; getRandomValues does not).
 */
export function clientRef() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "tab-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Create an element with attributes and children (text nodes for strings: never innerHTML). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
