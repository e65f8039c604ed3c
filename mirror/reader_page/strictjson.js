/* strictjson.js: strict JSON for signed metadata, as mirror/trust/strictjson.py parses it.
 *
 * JSON.parse keeps the last of two duplicate keys and turns every number
 * into a double. A censor can use both: a duplicate "version" key lets two
 * parsers see two documents behind one signature, and a long number is
 * silently rounded. This parser follows Python's json module (whitespace,
 * escapes, number grammar) with mirror's three rules: a repeated key, a
 * non-integer number (fraction, exponent, NaN, Infinity) and an integer of
 * more than MAX_INT_DIGITS digits are tampering. Objects become Maps (a key
 * called "__proto__" is just a key); integers become Numbers, or BigInts
 * past 2**53. `canonical` writes securesystemslib's canonical JSON: sorted
 * keys (by code point), no whitespace, only '"' and '\' escaped, UTF-8.
 */
"use strict";

(function (R) {
  const MAX_DEPTH = 900; // Python's json raises RecursionError near 1000 levels

  class Syntax extends Error {}

  function parseText(text, limits) {
    let i = 0;
    let depth = 0;
    const n = text.length;

    const ws = () => {
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
        else break;
      }
    };

    function value() {
      if (i >= n) throw new Syntax("Expecting value");
      const c = text[i];
      if (c === "{") return object();
      if (c === "[") return array();
      if (c === '"') return string();
      if (c === "t" && text.startsWith("true", i)) {
        i += 4;
        return true;
      }
      if (c === "f" && text.startsWith("false", i)) {
        i += 5;
        return false;
      }
      if (c === "n" && text.startsWith("null", i)) {
        i += 4;
        return null;
      }
      if (c === "N" && text.startsWith("NaN", i)) throw R.tampered("signed metadata holds a non-integer number (NaN)");
      if (c === "I" && text.startsWith("Infinity", i)) {
        throw R.tampered("signed metadata holds a non-integer number (Infinity)");
      }
      if (c === "-" && text.startsWith("-Infinity", i)) {
        throw R.tampered("signed metadata holds a non-integer number (-Infinity)");
      }
      return number();
    }

    const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;

    function number() {
      NUMBER.lastIndex = i;
      const match = NUMBER.exec(text);
      if (match === null) throw new Syntax("Expecting value");
      if (match[1] !== undefined || match[2] !== undefined) {
        throw R.tampered(`signed metadata holds a non-integer number (${match[0].slice(0, 20)})`);
      }
      const digits = match[0];
      i += digits.length;
      if (digits.replace(/^-/, "").length > limits.maxIntDigits) {
        throw R.tampered(`signed metadata holds a number with ${digits.length} digits`);
      }
      const big = BigInt(digits);
      if (big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)) {
        return Number(big);
      }
      return big;
    }

    function string() {
      i++; // opening quote
      let out = "";
      let start = i;
      for (;;) {
        if (i >= n) throw new Syntax("Unterminated string");
        const c = text.charCodeAt(i);
        if (c === 0x22) {
          out += text.slice(start, i);
          i++;
          return out;
        }
        if (c < 0x20) throw new Syntax("Invalid control character");
        if (c === 0x5c) {
          out += text.slice(start, i);
          const e = text[i + 1];
          const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
          if (e !== undefined && Object.prototype.hasOwnProperty.call(simple, e)) {
            out += simple[e];
            i += 2;
          } else if (e === "u") {
            const unit = hex4(i + 2);
            i += 6;
            // Python joins a high and a low surrogate escape into one code point; so do JS strings.
            out += String.fromCharCode(unit);
          } else {
            throw new Syntax("Invalid \\escape");
          }
          start = i;
        } else {
          i++;
        }
      }
    }

    function hex4(at) {
      const digits = text.slice(at, at + 4);
      if (!/^[0-9a-fA-F]{4}$/.test(digits)) throw new Syntax("Invalid \\uXXXX escape");
      return parseInt(digits, 16);
    }

    function object() {
      if (++depth > MAX_DEPTH) throw new Syntax("RecursionError");
      i++;
      const pairs = [];
      // Like object_pairs_hook: duplicates are judged once the whole object is read.
      const finish = () => {
        const result = new Map();
        for (const [key, item] of pairs) {
          if (result.has(key)) throw R.tampered(`signed metadata repeats the key ${R.pyRepr(key)}`);
          result.set(key, item);
        }
        depth--;
        return result;
      };
      ws();
      if (text[i] === "}") {
        i++;
        return finish();
      }
      for (;;) {
        ws();
        if (text[i] !== '"') throw new Syntax("Expecting property name enclosed in double quotes");
        const key = string();
        ws();
        if (text[i] !== ":") throw new Syntax("Expecting ':' delimiter");
        i++;
        ws();
        pairs.push([key, value()]);
        ws();
        if (text[i] === "}") {
          i++;
          return finish();
        }
        if (text[i] !== ",") throw new Syntax("Expecting ',' delimiter");
        i++;
      }
    }

    function array() {
      if (++depth > MAX_DEPTH) throw new Syntax("RecursionError");
      i++;
      const result = [];
      ws();
      if (text[i] === "]") {
        i++;
        depth--;
        return result;
      }
      for (;;) {
        ws();
        result.push(value());
        ws();
        if (text[i] === "]") {
          i++;
          depth--;
          return result;
        }
        if (text[i] !== ",") throw new Syntax("Expecting ',' delimiter");
        i++;
      }
    }

    ws();
    const result = value();
    ws();
    if (i !== n) throw new Syntax("Extra data");
    return result;
  }

  const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  /** Parse `bytes` as one strict JSON object (a Map); throw "tampered" naming `what`. */
  function loads(bytes, what, limits) {
    if (bytes.length > limits.maxDocumentBytes) {
      throw R.tampered(`${what} is larger than ${limits.maxDocumentBytes} bytes`);
    }
    let text;
    try {
      text = strictUtf8.decode(bytes);
    } catch (error) {
      throw R.tampered(`${what} is not valid JSON (UnicodeDecodeError)`);
    }
    let parsed;
    try {
      parsed = parseText(text, limits);
    } catch (error) {
      if (error instanceof R.Verdict) throw R.tampered(`${what}: ${error.message}`);
      if (error instanceof Syntax) {
        const kind = error.message === "RecursionError" ? "RecursionError" : "JSONDecodeError";
        throw R.tampered(`${what} is not valid JSON (${kind})`);
      }
      throw error;
    }
    if (!(parsed instanceof Map)) throw R.tampered(`${what} is not a JSON object`);
    return parsed;
  }

  function canonicalString(text) {
    return '"' + text.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
  }

  function canonicalText(value, out) {
    if (typeof value === "string") out.push(canonicalString(value));
    else if (value === true) out.push("true");
    else if (value === false) out.push("false");
    else if (value === null) out.push("null");
    else if (typeof value === "number" || typeof value === "bigint") out.push(String(value));
    else if (Array.isArray(value)) {
      out.push("[");
      value.forEach((item, index) => {
        if (index) out.push(",");
        canonicalText(item, out);
      });
      out.push("]");
    } else if (value instanceof Map) {
      out.push("{");
      const keys = Array.from(value.keys()).sort(R.comparePython);
      keys.forEach((key, index) => {
        if (index) out.push(",");
        out.push(canonicalString(key), ":");
        canonicalText(value.get(key), out);
      });
      out.push("}");
    } else {
      throw R.tampered("signed metadata cannot be written as canonical JSON");
    }
  }

  /** securesystemslib.formats.encode_canonical(value), UTF-8 encoded. */
  function canonical(value) {
    const out = [];
    canonicalText(value, out);
    return R.utf8.encode(out.join(""));
  }

  R.strictjson = { loads, canonical };
})((globalThis.MirrorReader = globalThis.MirrorReader || {}));
