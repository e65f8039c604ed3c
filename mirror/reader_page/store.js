/* store.js: what this browser trusts for one publisher (mirror/reader/store.py, in localStorage).
 *
 * One entry per publisher id: the root versions a chain walk accepted (so a
 * browser that walked to root 3 never falls back to root 2) and the newest
 * edition verified (so version 6 is refused once version 7 was seen). The
 * memory can be empty (a new browser, cleared site data) or unavailable
 * (storage switched off); the page then says it cannot detect rollback yet,
 * instead of pretending it can. A damaged entry is the reader's local
 * problem ("io"), never blamed on the edition.
 */
"use strict";

(function (R) {
  const PREFIX = "mirror-reader/publisher/";

  function storage() {
    try {
      const s = globalThis.localStorage;
      const probe = PREFIX + "probe";
      s.setItem(probe, "1");
      s.removeItem(probe);
      return s;
    } catch (error) {
      return null;
    }
  }

  function fromBase64(text) {
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function toBase64(bytes) {
    let raw = "";
    for (let i = 0; i < bytes.length; i += 0x8000) raw += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(raw);
  }

  const toInt = (text) => {
    const big = BigInt(text);
    return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  };

  /** {available, roots: Map version -> bytes, highest: [version, eid] | null}. */
  function loadTrust(publisherId) {
    const s = storage();
    if (s === null) return { available: false, roots: new Map(), highest: null };
    const text = s.getItem(PREFIX + publisherId);
    if (text === null) return { available: true, roots: new Map(), highest: null };
    try {
      const record = JSON.parse(text);
      const roots = new Map();
      for (const [version, data] of Object.entries(record.roots || {})) {
        if (/^[0-9]+$/.test(version)) roots.set(parseInt(version, 10), fromBase64(data));
      }
      const seen = record.highest;
      const highest =
        seen && /^[0-9]+$/.test(String(seen.version)) && typeof seen.edition === "string"
          ? [toInt(String(seen.version)), seen.edition]
          : null;
      return { available: true, roots, highest };
    } catch (error) {
      throw new R.Verdict(
        "io",
        `this browser's record of editions seen for this publisher is damaged (${error.name})`,
      );
    }
  }

  /** Record newly accepted roots and the newest edition verified (never lowering it). */
  function applyUpdate(update) {
    const s = storage();
    if (s === null) return false;
    const current = loadTrust(update.publisherId);
    const record = { roots: {}, highest: null };
    for (const [version, bytes] of current.roots) record.roots[version] = toBase64(bytes);
    for (const [version, bytes] of update.roots) if (!(version in record.roots)) record.roots[version] = toBase64(bytes);
    const [version, eid] = update.highest;
    const keep = current.highest !== null && BigInt(current.highest[0]) >= BigInt(version);
    const highest = keep ? current.highest : [version, eid];
    record.highest = { version: String(highest[0]), edition: highest[1] };
    s.setItem(PREFIX + update.publisherId, JSON.stringify(record));
    return true;
  }

  R.store = { loadTrust, applyUpdate };
})((globalThis.MirrorReader = globalThis.MirrorReader || {}));
