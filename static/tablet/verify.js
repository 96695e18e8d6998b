// Offline identity check: the route carries, per collector, the SHA-256 of salt + ID
// number; the tablet hashes what it is shown and compares. Full ID numbers never
// reach the tablet.
import { sha256Hex } from "./sha256.js";

/** Keep only an ID typed as 9 (CMND) or 12 (CCCD) digits, spaces and dots allowed; else null. */
export function cleanIdNumber(typed) {
  const text = String(typed || "").replace(/[\s.]/g, "");
  return /^(\d{9}|\d{12})$/.test(text) ? text : null;
}

/**
 * Read the text of a CCCD QR: `CCCD|old CMND|name|ddmmyyyy|gender|address|issue ddmmyyyy`
 * (the old ID may be empty or the field missing, extra empty fields happen).
 * Returns {cccd, cmnd, name} or null when the text is not a CCCD QR.
 */
export function parseCccdQr(text) {
  const fields = String(text || "").trim().split("|").map((f) => f.trim());
  if (fields.length < 5 || !/^\d{12}$/.test(fields[0])) return null;
  const cmnd = /^\d{9}$/.test(fields[1]) ? fields[1] : "";
  // Six fields: the old ID is missing, the name is the second field.
  const name = cmnd || fields[1] === "" ? fields[2] : fields[1];
  return { cccd: fields[0], cmnd, name: name || "" };
}

/** Return the hash the route would hold for an ID number. */
export function idHash(salt, idNumber) {
  return sha256Hex(String(salt) + idNumber);
}

/**
 * Tell which of the given collectors an ID number (or several, from a QR) belongs to.
 * `collectors` are {key, id_hash}; returns the matching key or null.
 */
export async function matchCollector(salt, idNumbers, collectors) {
  for (const number of idNumbers) {
    const hash = await idHash(salt, number);
    const found = collectors.find((c) => c.id_hash && c.id_hash.toLowerCase() === hash);
    if (found) return found.key;
  }
  return null;
}
