/* sha256.js: CRC-32 for ZIP members, and an incremental SHA-256 for members too big to hold.
 *
 * WebCrypto's digest() takes one whole buffer. Members up to
 * `STREAM_HASH_BYTES` are hashed by WebCrypto from the one copy the page
 * holds anyway; a larger member (a video, say) is hashed chunk by chunk
 * here, so the page never holds it whole. Both give the same hex digest
 * (tests/test_reader_page.py checks this implementation against WebCrypto).
 */
"use strict";

(function (R) {
  const CRC_TABLE = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    CRC_TABLE[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let t = 1; t < 8; t++) {
      const prev = CRC_TABLE[(t - 1) * 256 + n];
      CRC_TABLE[t * 256 + n] = CRC_TABLE[prev & 0xff] ^ (prev >>> 8);
    }
  }

  /** zlib.crc32(bytes, crc): slicing-by-8. */
  function crc32(bytes, crc = 0) {
    let c = ~crc;
    let i = 0;
    const n = bytes.length;
    const T = CRC_TABLE;
    for (; i + 8 <= n; i += 8) {
      const a = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
      c =
        T[7 * 256 + (a & 0xff)] ^ T[6 * 256 + ((a >>> 8) & 0xff)] ^
        T[5 * 256 + ((a >>> 16) & 0xff)] ^ T[4 * 256 + (a >>> 24)] ^
        T[3 * 256 + bytes[i + 4]] ^ T[2 * 256 + bytes[i + 5]] ^
        T[256 + bytes[i + 6]] ^ T[bytes[i + 7]];
    }
    for (; i < n; i++) c = T[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return ~c >>> 0;
  }

  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  /** SHA-256, fed in pieces: update(bytes)..., then hex(). */
  class Sha256 {
    constructor() {
      this.h = new Uint32Array([
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
      ]);
      this.block = new Uint8Array(64);
      this.filled = 0;
      this.length = 0;
      this.w = new Uint32Array(64);
    }

    update(bytes) {
      let i = 0;
      this.length += bytes.length;
      if (this.filled) {
        const take = Math.min(64 - this.filled, bytes.length);
        this.block.set(bytes.subarray(0, take), this.filled);
        this.filled += take;
        i = take;
        if (this.filled < 64) return this;
        this.compress(this.block, 0);
        this.filled = 0;
      }
      for (; i + 64 <= bytes.length; i += 64) this.compress(bytes, i);
      if (i < bytes.length) {
        this.block.set(bytes.subarray(i), 0);
        this.filled = bytes.length - i;
      }
      return this;
    }

    compress(bytes, at) {
      const w = this.w;
      for (let t = 0; t < 16; t++) {
        const j = at + 4 * t;
        w[t] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
      }
      for (let t = 16; t < 64; t++) {
        const x = w[t - 15];
        const y = w[t - 2];
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
      }
      const h = this.h;
      let [a, b, c, d, e, f, g, k] = h;
      for (let t = 0; t < 64; t++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const ch = (e & f) ^ (~e & g);
        const t1 = (k + S1 + ch + K[t] + w[t]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const maj = (a & b) ^ (a & c) ^ (b & c);
        const t2 = (S0 + maj) | 0;
        k = g;
        g = f;
        f = e;
        e = (d + t1) | 0;
        d = c;
        c = b;
        b = a;
        a = (t1 + t2) | 0;
      }
      h[0] += a;
      h[1] += b;
      h[2] += c;
      h[3] += d;
      h[4] += e;
      h[5] += f;
      h[6] += g;
      h[7] += k;
    }

    hex() {
      const bits = this.length * 8;
      const tail = new Uint8Array(this.filled < 56 ? 64 : 128);
      tail.set(this.block.subarray(0, this.filled));
      tail[this.filled] = 0x80;
      const view = new DataView(tail.buffer);
      view.setUint32(tail.length - 8, Math.floor(bits / 0x100000000));
      view.setUint32(tail.length - 4, bits >>> 0);
      this.filled = 0;
      for (let at = 0; at < tail.length; at += 64) this.compress(tail, at);
      let out = "";
      for (const word of this.h) out += word.toString(16).padStart(8, "0");
      return out;
    }
  }

  R.crc32 = crc32;
  R.Sha256 = Sha256;

  /** SHA-256 hex of `bytes`, by WebCrypto. */
  R.sha256Hex = async (bytes) => R.toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
})((globalThis.MirrorReader = globalThis.MirrorReader || {}));
