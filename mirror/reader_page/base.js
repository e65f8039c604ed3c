/* base.js: the page's one error type, and Python's repr() for messages.
 *
 * Every check in this page fails by throwing a `Verdict`: a verdict name
 * from the table mirror exported into the page (mirror/errors.py is the
 * source: "tampered", "compromised-key", "expired", "not-yet-valid",
 * "rollback", "unsafe-archive", "other-publisher", "incomplete", "io", ...)
 * and the sentence `mirror verify` prints for the same file. Nothing else
 * is thrown on purpose; anything else is a bug and is reported as "error"
 * (exit code 1), as the CLI does.
 */
"use strict";

(function (R) {
  class Verdict extends Error {
    /** @param {string} verdict  @param {string} message */
    constructor(verdict, message) {
      super(message);
      this.name = "Verdict";
      this.verdict = verdict;
    }
  }
  R.Verdict = Verdict;
  R.tampered = (message) => new Verdict("tampered", message);
  R.unsafe = (message) => new Verdict("unsafe-archive", message);

  // str.isprintable() is false for these general categories (space excepted).
  const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

  function hex(code, width) {
    return code.toString(16).padStart(width, "0");
  }

  function escapeCodePoint(code) {
    if (code < 0x100) return "\\x" + hex(code, 2);
    if (code < 0x10000) return "\\u" + hex(code, 4);
    return "\\U" + hex(code, 8);
  }

  /** Python's repr() of a str (asciiOnly: ascii()), for messages identical to the CLI's. */
  function pyRepr(text, asciiOnly = false) {
    const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
    let out = quote;
    for (const char of text) {
      const code = char.codePointAt(0);
      if (char === quote || char === "\\") out += "\\" + char;
      else if (char === "\t") out += "\\t";
      else if (char === "\n") out += "\\n";
      else if (char === "\r") out += "\\r";
      else if (code < 0x20 || code === 0x7f) out += escapeCodePoint(code);
      else if (code < 0x7f) out += char;
      else if (asciiOnly || NOT_PRINTABLE.test(char)) out += escapeCodePoint(code);
      else out += char;
    }
    return out + quote;
  }

  /** Python's repr() of bytes. */
  function pyReprBytes(bytes) {
    let hasSingle = false;
    let hasDouble = false;
    for (const b of bytes) {
      if (b === 0x27) hasSingle = true;
      if (b === 0x22) hasDouble = true;
    }
    const quote = hasSingle && !hasDouble ? '"' : "'";
    let out = "b" + quote;
    for (const b of bytes) {
      const char = String.fromCharCode(b);
      if (char === quote || char === "\\") out += "\\" + char;
      else if (b === 0x09) out += "\\t";
      else if (b === 0x0a) out += "\\n";
      else if (b === 0x0d) out += "\\r";
      else if (b < 0x20 || b >= 0x7f) out += "\\x" + hex(b, 2);
      else out += char;
    }
    return out + quote;
  }

  R.pyRepr = pyRepr;
  R.pyReprBytes = pyReprBytes;

  /** Python's len(text) (code points, not UTF-16 units). */
  R.codePoints = (text) => {
    let count = 0;
    for (const _ of text) count++; // eslint-disable-line no-unused-vars
    return count;
  };

  /** Python's text[:n] by code points. */
  R.pySlice = (text, n) => Array.from(text).slice(0, n).join("");

  R.utf8 = new TextEncoder();
  R.utf8Length = (text) => R.utf8.encode(text).length;

  /** Python's str < str: code point order (JS compares UTF-16 units). */
  R.comparePython = (a, b) => {
    const x = Array.from(a);
    const y = Array.from(b);
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) {
      const d = x[i].codePointAt(0) - y[i].codePointAt(0);
      if (d !== 0) return d;
    }
    return x.length - y.length;
  };

  R.toHex = (bytes) => {
    let out = "";
    for (const b of bytes) out += hex(b, 2);
    return out;
  };

  /** Python's bytes.fromhex: pairs of hex digits, ASCII whitespace allowed between pairs. */
  R.fromHex = (text) => {
    if (typeof text !== "string") return null;
    const out = [];
    let i = 0;
    const isSpace = (c) => c === " " || c === "\t" || c === "\n" || c === "\r" ||
      c === "\x0b" || c === "\x0c";
    const digit = (c) => (/^[0-9a-fA-F]$/.test(c) ? parseInt(c, 16) : -1);
    while (i < text.length) {
      if (isSpace(text[i])) {
        i++;
        continue;
      }
      const high = digit(text[i]);
      const low = i + 1 < text.length ? digit(text[i + 1]) : -1;
      if (high < 0 || low < 0) return null;
      out.push(high * 16 + low);
      i += 2;
    }
    return new Uint8Array(out);
  };
})((globalThis.MirrorReader = globalThis.MirrorReader || {}));
