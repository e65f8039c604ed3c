/* zip.js: the strict, bounded edition ZIP reader of mirror/edition.py (`EditionArchive`).
 *
 * The same eight rules, in the same order, with the same sentences (see the
 * module docstring of mirror/edition.py for the attack each rule stops):
 * 1 end record exactly at the end, no comment, ZIP64 only when needed (a
 * file with no end record at all is "incomplete", not hostile: empty, cut
 * short, a web page saved instead, or no ZIP archive at all);
 * 2 members tile the file from byte 0 to the central directory, no gaps, no
 * overlaps; 3 local headers agree with central entries, ZIP64 the only extra
 * field; 4 only STORED/DEFLATE, no encryption, no data descriptor, no unknown
 * flags; 5 only regular files; 6 safe names; 7 no duplicates, no case/Unicode
 * collisions, no file/folder clashes; 8 caps on count, sizes and ratio.
 *
 * The archive is a File (a Blob): every read is a bounded slice, never the
 * whole file at once. The caps (`limits`) and the case-folding table come
 * from mirror at export, so the two readers cannot disagree about a number.
 * Members are inflated by the browser's DecompressionStream("deflate-raw")
 * with a hard output cap of the declared size, then CRC-32 checked.
 */
"use strict";

(function (R) {
  const SIG = { local: 0x04034b50, central: 0x02014b50, eocd: 0x06054b50, zip64Eocd: 0x06064b50, zip64Locator: 0x07064b50 };
  const SIZE = { local: 30, central: 46, eocd: 22, zip64Eocd: 56, zip64Locator: 20 };
  const U32 = 0xffffffff;
  const U16 = 0xffff;
  const MAX_EOCD_SEARCH = SIZE.eocd + 0xffff;
  const FLAG = { encrypted: 0x0001, deflateOptions: 0x0006, dataDescriptor: 0x0008, strong: 0x0040, utf8: 0x0800, masked: 0x2000 };
  const HOST_UNIX = 3;
  const HOST_OSX = 19;
  const DOS_DIRECTORY = 0x10;
  const S_IFMT = 0o170000;
  const S_IFREG = 0o100000;
  const FILE_TYPES = new Map([
    [0o120000, "a symlink"], [0o040000, "a directory"], [0o020000, "a character device"],
    [0o060000, "a block device"], [0o010000, "a FIFO"], [0o140000, "a socket"],
  ]);
  const BIDI = new Set(Array.from("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"));
  const CONTROL = /[\p{Cc}\p{Cs}\p{Zl}\p{Zp}]/u;
  const WINDOW_BYTES = 4 * 1024 * 1024;

  function show(name) {
    const text = typeof name === "string" ? R.pyRepr(name) : R.pyReprBytes(name);
    return R.codePoints(text) <= 80 ? text : R.pySlice(text, 77) + "...";
  }
  R.showName = show;

  /**
   * _damaged: a member whose data fails its own checks after `open` proved the structure sane
   * holds changed bytes: "tampered", for every member (content or embedded metadata) alike.
   */
  const damaged = (member, problem) =>
    R.tampered(`${member.name} is not the data the publisher signed (${problem})`);

  /** Bounded positional reads from the File, through one cached window. */
  class BlobReader {
    constructor(blob) {
      this.blob = blob;
      this.size = blob.size;
      this.windowStart = 0;
      this.window = new Uint8Array(0);
    }

    async at(offset, length, what) {
      if (offset < 0 || length < 0 || offset + length > this.size) {
        throw R.unsafe(`The archive is truncated: ${what} runs past the end of the file.`);
      }
      const end = offset + length;
      if (offset >= this.windowStart && end <= this.windowStart + this.window.length) {
        return this.window.subarray(offset - this.windowStart, end - this.windowStart);
      }
      if (length > WINDOW_BYTES / 2) return this.raw(offset, end);
      this.window = await this.raw(offset, Math.min(this.size, offset + WINDOW_BYTES));
      this.windowStart = offset;
      return this.window.subarray(0, length);
    }

    async raw(start, end) {
      try {
        return new Uint8Array(await this.blob.slice(start, end).arrayBuffer());
      } catch (error) {
        throw new R.Verdict("io", `Cannot read the archive ${this.blob.name || ""}.`.replace(" .", "."));
      }
    }
  }

  const le = (bytes) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (view, at) => Number(view.getBigUint64(at, true));

  // --- names (rule 6) ---------------------------------------------------------------

  function nameProblem(name, limits) {
    if (!name) return "has an empty name";
    for (const char of name) {
      const code = char.codePointAt(0);
      const hex = code.toString(16).toUpperCase().padStart(4, "0");
      if (CONTROL.test(char)) return `has a control character U+${hex} in its name`;
      if (BIDI.has(char)) return `has a bidirectional formatting character U+${hex} in its name`;
    }
    const nameBytes = R.utf8Length(name);
    if (nameBytes > limits.max_name_bytes) {
      return `has a name of ${nameBytes} bytes, over the cap of ${limits.max_name_bytes} (name too long)`;
    }
    if (name.includes("\\")) return "has a backslash in its name";
    if (name.startsWith("/")) return "has an absolute name (it starts with '/')";
    if (name.length >= 2 && name[1] === ":" && /^[A-Za-z]$/.test(name[0])) return "starts with a drive letter";
    if (name.includes(":")) return "has ':' in its name (a Windows drive or alternate data stream)";
    if (name.endsWith("/")) return "is a directory (its name ends with '/'); only regular files are allowed";
    const segments = name.split("/");
    for (const segment of segments) {
      if (segment === "") return "has an empty path segment";
      if (segment === "." || segment === "..") return `has a '${segment}' path segment (path traversal)`;
      const segmentBytes = R.utf8Length(segment);
      if (segmentBytes > limits.max_segment_bytes) {
        return `has a path segment of ${segmentBytes} bytes, over the cap of ${limits.max_segment_bytes} (segment too long)`;
      }
    }
    if (segments.length > limits.max_depth) {
      return `is ${segments.length} segments deep, over the cap of ${limits.max_depth} (path too deep)`;
    }
    return null;
  }

  /** Python's str.casefold(), from the table mirror exported (full case folding). */
  function casefold(text, folding) {
    let out = "";
    for (const char of text) {
      const folded = folding[char.codePointAt(0)];
      out += folded === undefined ? char : folded;
    }
    return out;
  }

  /** Rule 7: duplicates, case/normalisation collisions, file/folder clashes (`_NameRegistry`). */
  class NameRegistry {
    constructor(folding) {
      this.folding = folding;
      this.files = new Map();
      this.folders = new Map();
    }

    key(name) {
      return casefold(name.normalize("NFC"), this.folding).normalize("NFC");
    }

    *folderKeys(key) {
      let position = key.indexOf("/");
      while (position >= 0) {
        yield key.slice(0, position);
        position = key.indexOf("/", position + 1);
      }
    }

    admit(name) {
      const key = this.key(name);
      const other = this.files.get(key);
      if (other === name) throw R.unsafe(`Member ${show(name)} appears twice (duplicate names).`);
      if (other !== undefined) {
        const sameText = other.normalize("NFC") === name.normalize("NFC");
        const shown = (text) => (sameText ? R.pyRepr(text, true) : show(text));
        throw R.unsafe(
          `Members ${shown(other)} and ${shown(name)} collide when case and Unicode normalisation are ignored.`,
        );
      }
      if (this.folders.has(key)) {
        throw R.unsafe(
          `Member ${show(name)} is also a folder of member ${show(this.folders.get(key))} (file/folder collision).`,
        );
      }
      for (const prefix of this.folderKeys(key)) {
        if (this.files.has(prefix)) {
          throw R.unsafe(
            `Member ${show(name)} uses member ${show(this.files.get(prefix))} as a folder (file/folder collision).`,
          );
        }
      }
      for (const prefix of this.folderKeys(key)) if (!this.folders.has(prefix)) this.folders.set(prefix, name);
      this.files.set(key, name);
    }
  }

  // --- rule 1: the end record -------------------------------------------------------

  async function findDirectory(reader, limits) {
    const size = reader.size;
    if (size < SIZE.eocd) throw new R.Verdict("incomplete", await whatItIsInstead(reader));
    if (le(await reader.at(size - SIZE.eocd, 4, "the end record")).getUint32(0, true) !== SIG.eocd) {
      await diagnoseMissingEnd(reader);
    }
    const eocdPos = size - SIZE.eocd;
    const e = le(await reader.at(eocdPos, SIZE.eocd, "the end record"));
    const disk = e.getUint16(4, true);
    const cdDisk = e.getUint16(6, true);
    const diskEntries = e.getUint16(8, true);
    const entries = e.getUint16(10, true);
    const cdSize = e.getUint32(12, true);
    const cdOffset = e.getUint32(16, true);
    const commentLen = e.getUint16(20, true);
    if (commentLen) {
      throw R.unsafe(`The end record declares a comment of ${commentLen} bytes; comments are not allowed.`);
    }
    if (disk || cdDisk) throw R.unsafe("The end record names a disk other than 0; multi-disk archives are not allowed.");
    if (diskEntries !== entries) throw R.unsafe("The end record's entry counts disagree.");
    const needsZip64 = entries === U16 || cdSize === U32 || cdOffset === U32;
    const locatorPos = eocdPos - SIZE.zip64Locator;
    const hasLocator =
      locatorPos >= 0 && le(await reader.at(locatorPos, 4, "the ZIP64 locator")).getUint32(0, true) === SIG.zip64Locator;
    if (!needsZip64) {
      if (cdOffset + cdSize !== eocdPos) {
        if (hasLocator) throw R.unsafe("The archive has a ZIP64 end record it does not need.");
        misplacedDirectory(cdOffset, cdSize, eocdPos);
      }
      checkCount(entries, cdSize, limits);
      return { count: entries, cdOffset, cdEnd: eocdPos };
    }
    if (!hasLocator) throw R.unsafe("The end record needs a ZIP64 end record, but none is directly before it.");
    const l = le(await reader.at(locatorPos, SIZE.zip64Locator, "the ZIP64 locator"));
    const locatorDisk = l.getUint32(4, true);
    const zip64Pos = u64(l, 8);
    const totalDisks = l.getUint32(16, true);
    if (locatorDisk !== 0 || totalDisks !== 1) {
      throw R.unsafe("The ZIP64 locator names a disk other than 0; multi-disk archives are not allowed.");
    }
    const expectedPos = locatorPos - SIZE.zip64Eocd;
    if (zip64Pos !== expectedPos || expectedPos < 0) throw R.unsafe("The ZIP64 end record is not directly before its locator.");
    const z = le(await reader.at(zip64Pos, SIZE.zip64Eocd, "the ZIP64 end record"));
    const sig = z.getUint32(0, true);
    const recordSize = u64(z, 4);
    const zDisk = z.getUint32(16, true);
    const zCdDisk = z.getUint32(20, true);
    const zDiskEntries = u64(z, 24);
    const zEntries = u64(z, 32);
    const zCdSize = u64(z, 40);
    const zCdOffset = u64(z, 48);
    if (sig !== SIG.zip64Eocd || recordSize !== SIZE.zip64Eocd - 12) {
      throw R.unsafe("The ZIP64 end record is malformed or has extensible data.");
    }
    if (zDisk || zCdDisk) throw R.unsafe("The ZIP64 end record names a disk other than 0; multi-disk archives are not allowed.");
    if (zDiskEntries !== zEntries) throw R.unsafe("The ZIP64 end record's entry counts disagree.");
    for (const [field, sentinel, value] of [[entries, U16, zEntries], [cdSize, U32, zCdSize], [cdOffset, U32, zCdOffset]]) {
      if (field !== sentinel && field !== value) {
        throw R.unsafe("The end record and the ZIP64 end record disagree (entry counts inconsistent).");
      }
    }
    if (zCdOffset + zCdSize !== zip64Pos) misplacedDirectory(zCdOffset, zCdSize, zip64Pos);
    checkCount(zEntries, zCdSize, limits);
    return { count: zEntries, cdOffset: zCdOffset, cdEnd: zip64Pos };
  }

  async function diagnoseMissingEnd(reader) {
    const window = Math.min(reader.size, MAX_EOCD_SEARCH + 1024);
    const tail = await reader.at(reader.size - window, window, "the end of the file");
    const candidates = [];
    for (let pos = tail.length - 4; pos >= 0; pos--) {
      if (tail[pos] === 0x50 && tail[pos + 1] === 0x4b && tail[pos + 2] === 0x05 && tail[pos + 3] === 0x06 &&
          pos + SIZE.eocd <= tail.length) {
        candidates.push(pos);
      }
    }
    for (const pos of candidates) {
      const commentLen = tail[pos + 20] | (tail[pos + 21] << 8);
      if (commentLen && commentLen === tail.length - pos - SIZE.eocd) {
        throw R.unsafe(`The end record has a comment of ${commentLen} bytes; comments are not allowed.`);
      }
    }
    if (candidates.length) {
      const extra = tail.length - candidates[0] - SIZE.eocd;
      throw R.unsafe(`There are ${extra} bytes of trailing data after the end record.`);
    }
    throw new R.Verdict("incomplete", await whatItIsInstead(reader));
  }

  const ASCII_SPACE = new Set([0x20, 0x09, 0x0a, 0x0d, 0x0b, 0x0c]); // bytes.lstrip()
  const LOCAL_SIGNATURE = [0x50, 0x4b, 0x03, 0x04];

  /** Python's f"{n:,}": thousands separated by commas. */
  const withCommas = (n) => String(n).replace(/\B(?=([0-9]{3})+(?![0-9]))/g, ",");

  /** Why a file with no ZIP end record at all is not an edition (`_what_it_is_instead`). */
  async function whatItIsInstead(reader) {
    if (reader.size === 0) return "The file is empty (0 bytes): the download did not finish, or nothing was saved.";
    const head = await reader.at(0, Math.min(reader.size, 512), "the start of the file");
    let start = 0;
    while (start < head.length && ASCII_SPACE.has(head[start])) start++;
    if (start < head.length && head[start] === 0x3c) {
      return (
        "The file is a web page, not an edition: a block page, a login page or an error " +
        "page was saved instead of the edition."
      );
    }
    const prefix = head.subarray(0, 4);
    if (head.length >= 2 && prefix.every((b, i) => b === LOCAL_SIGNATURE[i])) {
      return (
        `The file ends before the end of its ZIP directory: at ${withCommas(reader.size)} bytes it was ` +
        "cut short, most likely while downloading."
      );
    }
    return "The file is not an edition: it is not a ZIP archive at all.";
  }

  function misplacedDirectory(cdOffset, cdSize, cdEnd) {
    const actualStart = cdEnd - cdSize;
    if (actualStart > cdOffset) {
      throw R.unsafe(
        `The central directory starts ${actualStart - cdOffset} bytes after where the end record says: data was prepended or inserted.`,
      );
    }
    throw R.unsafe("The central directory does not end at the end record (overlapping or truncated).");
  }

  function checkCount(entries, cdSize, limits) {
    if (entries > limits.max_members) {
      throw R.unsafe(`The archive has ${entries} members, over the cap of ${limits.max_members} (too many members).`);
    }
    if (entries * SIZE.central > cdSize) {
      throw R.unsafe(`The central directory is too small for ${entries} entries (entry counts inconsistent).`);
    }
  }

  // --- rules 3-8 on the central directory ------------------------------------------

  const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  function decodeName(bytes, flags) {
    if (flags & FLAG.utf8) {
      try {
        return strictUtf8.decode(bytes);
      } catch (error) {
        throw R.unsafe(`Member ${show(bytes)} has a name that is not valid UTF-8.`);
      }
    }
    for (const b of bytes) {
      if (b >= 0x80) throw R.unsafe(`Member ${show(bytes)} has a name that is not valid ASCII (the UTF-8 flag is clear).`);
    }
    return String.fromCharCode(...bytes);
  }

  function checkFlagsAndMethod(label, flags, method) {
    if (flags & (FLAG.encrypted | FLAG.strong | FLAG.masked)) {
      throw R.unsafe(`${label} is encrypted; encrypted members are not allowed.`);
    }
    if (flags & FLAG.dataDescriptor) throw R.unsafe(`${label} uses a data descriptor (flag bit 3); it is not allowed.`);
    if (method !== 0 && method !== 8) throw R.unsafe(`${label} uses compression method ${method}; only 0 and 8 are allowed.`);
    const allowed = FLAG.utf8 | (method === 8 ? FLAG.deflateOptions : 0);
    if (flags & ~allowed) {
      throw R.unsafe(`${label} has unknown flags 0x${(flags & ~allowed).toString(16).padStart(4, "0")} set.`);
    }
  }

  function checkFileType(label, madeBy, externalAttr) {
    if (externalAttr & DOS_DIRECTORY) {
      throw R.unsafe(`${label} is a directory (MS-DOS attribute); only regular files are allowed.`);
    }
    const host = madeBy >> 8;
    if (host !== HOST_UNIX && host !== HOST_OSX) return;
    const mode = externalAttr >>> 16;
    if (mode === 0) return;
    const fileType = mode & S_IFMT;
    if (fileType !== S_IFREG) {
      const kind = FILE_TYPES.get(fileType) || `an unknown file type 0o${fileType.toString(8)}`;
      throw R.unsafe(`${label} is ${kind}; only regular files are allowed.`);
    }
    if (mode & (0o4000 | 0o2000 | 0o1000)) {
      throw R.unsafe(`${label} has set-uid, set-gid or sticky bits; they are not allowed.`);
    }
  }

  function centralZip64(label, extra, size, compressedSize, headerOffset) {
    const saturated = [size === U32, compressedSize === U32, headerOffset === U32];
    const wanted = saturated.filter(Boolean).length;
    if (!extra.length) {
      if (wanted) throw R.unsafe(`${label} has saturated size or offset fields but no ZIP64 extra field.`);
      return [size, compressedSize, headerOffset];
    }
    const view = le(extra);
    const headerId = extra.length >= 4 ? view.getUint16(0, true) : -1;
    const dataLen = extra.length >= 4 ? view.getUint16(2, true) : -1;
    if (headerId !== 0x0001) {
      throw R.unsafe(`${label} has an extra field that is not ZIP64; extra fields are not allowed.`);
    }
    if (wanted === 0 || dataLen !== 8 * wanted || extra.length !== 4 + dataLen) {
      throw R.unsafe(`${label} has a malformed ZIP64 extra field in the central directory.`);
    }
    const values = [];
    for (let i = 0; i < wanted; i++) values.push(u64(view, 4 + 8 * i));
    const original = [size, compressedSize, headerOffset];
    return original.map((value, index) => (saturated[index] ? values.shift() : value));
  }

  async function readCentralDirectory(reader, directory, limits, folding) {
    const entries = [];
    const names = new NameRegistry(folding);
    let total = 0;
    let pos = directory.cdOffset;
    const take = async (length, what) => {
      if (pos + length > directory.cdEnd) {
        throw R.unsafe(`${what} runs past the end of the central directory (entry counts inconsistent).`);
      }
      const data = await reader.at(pos, length, what);
      pos += length;
      return data;
    };
    for (let index = 0; index < directory.count; index++) {
      const what = `Central directory entry ${index}`;
      const c = le(await take(SIZE.central, what));
      const sig = c.getUint32(0, true);
      const madeBy = c.getUint16(4, true);
      const flags = c.getUint16(8, true);
      const method = c.getUint16(10, true);
      const crc32 = c.getUint32(16, true);
      let compressedSize = c.getUint32(20, true);
      let size = c.getUint32(24, true);
      const nameLen = c.getUint16(28, true);
      const extraLen = c.getUint16(30, true);
      const commentLen = c.getUint16(32, true);
      const disk = c.getUint16(34, true);
      const externalAttr = c.getUint32(38, true);
      let headerOffset = c.getUint32(42, true);
      if (sig !== SIG.central) throw R.unsafe(`${what} has a bad signature (entry counts inconsistent or corrupt).`);
      const nameBytes = (await take(nameLen, what)).slice();
      const extra = (await take(extraLen, what)).slice();
      await take(commentLen, what);
      const name = decodeName(nameBytes, flags);
      const label = `Member ${show(name)}`;
      if (commentLen) throw R.unsafe(`${label} has a comment; comments are not allowed.`);
      if (disk !== 0) throw R.unsafe(`${label} starts on disk ${disk}; multi-disk archives are not allowed.`);
      const problem = nameProblem(name, limits);
      if (problem !== null) throw R.unsafe(`${label} ${problem}.`);
      checkFlagsAndMethod(label, flags, method);
      checkFileType(label, madeBy, externalAttr);
      names.admit(name);
      [size, compressedSize, headerOffset] = centralZip64(label, extra, size, compressedSize, headerOffset);
      if (method === 0 && compressedSize !== size) {
        throw R.unsafe(`${label} is stored but its sizes differ (${compressedSize} != ${size}).`);
      }
      if (size > limits.max_member_bytes) {
        throw R.unsafe(`${label} is ${size} bytes, over the cap of ${limits.max_member_bytes} (member too large).`);
      }
      total += size;
      if (total > limits.max_total_bytes) {
        throw R.unsafe(`${label} brings the total size to ${total} bytes, over the cap of ${limits.max_total_bytes} (archive too large).`);
      }
      if (method === 8 && size > limits.ratio_min_bytes && size > limits.max_ratio * Math.max(compressedSize, 1)) {
        throw R.unsafe(
          `${label} has a compression ratio of ${Math.floor(size / Math.max(compressedSize, 1))}, over the cap of ${limits.max_ratio} (zip bomb).`,
        );
      }
      entries.push({ name, nameBytes, flags, method, crc32, compressedSize, size, headerOffset });
    }
    if (pos !== directory.cdEnd) {
      throw R.unsafe(`The central directory has ${directory.cdEnd - pos} bytes after its last entry (entry counts inconsistent).`);
    }
    return entries;
  }

  function localZip64(header, extra, compressedField, sizeField) {
    if (!extra.length) {
      if (compressedField === U32 || sizeField === U32) throw R.unsafe(`${header} has saturated sizes but no ZIP64 extra field.`);
      return [compressedField, sizeField];
    }
    const view = le(extra);
    if (extra.length < 4 || view.getUint16(0, true) !== 0x0001) {
      throw R.unsafe(`${header} has an extra field that is not ZIP64; extra fields are not allowed.`);
    }
    if (extra.length !== 20 || view.getUint16(2, true) !== 16 || compressedField !== U32 || sizeField !== U32) {
      throw R.unsafe(`${header} has a malformed ZIP64 extra field.`);
    }
    return [u64(view, 12), u64(view, 4)];
  }

  function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  /** Rules 2 and 3: local headers agree, and the members tile the file up to the directory. */
  async function checkTiling(reader, directory, entries) {
    const members = [];
    const starts = [];
    let expected = 0;
    for (const entry of entries) {
      const label = `Member ${show(entry.name)}`;
      const header = `The local header of member ${show(entry.name)}`;
      const offset = entry.headerOffset;
      if (offset < expected) {
        let index = -1;
        let lo = 0;
        let hi = starts.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (starts[mid] <= offset) lo = mid + 1;
          else hi = mid;
        }
        index = lo - 1;
        if (index >= 0 && starts[index] === offset) {
          throw R.unsafe(`Members ${show(members[index].name)} and ${show(entry.name)} share one local header (overlapping members).`);
        }
        const other = index >= 0 ? show(members[index].name) : "another member";
        throw R.unsafe(`${label} starts inside member ${other} (overlapping members).`);
      }
      if (offset > expected) {
        if (!members.length) throw R.unsafe(`There are ${offset} bytes of data prepended before the first member.`);
        throw R.unsafe(
          `There are ${offset - expected} bytes of data between members ${show(members[members.length - 1].name)} and ${show(entry.name)}.`,
        );
      }
      if (offset + SIZE.local > directory.cdOffset) throw R.unsafe(`${header} overlaps the central directory (overlapping members).`);
      const h = le(await reader.at(offset, SIZE.local, header));
      const sig = h.getUint32(0, true);
      const flags = h.getUint16(6, true);
      const method = h.getUint16(8, true);
      const crc32 = h.getUint32(14, true);
      const compressedField = h.getUint32(18, true);
      const sizeField = h.getUint32(22, true);
      const nameLen = h.getUint16(26, true);
      const extraLen = h.getUint16(28, true);
      if (sig !== SIG.local) throw R.unsafe(`${header} has a bad signature.`);
      if (nameLen !== entry.nameBytes.length) throw R.unsafe(`${header} does not match the central directory entry (name).`);
      const variableEnd = offset + SIZE.local + nameLen + extraLen;
      if (variableEnd > directory.cdOffset) throw R.unsafe(`${header} overlaps the central directory (overlapping members).`);
      const nameBytes = (await reader.at(offset + SIZE.local, nameLen, header)).slice();
      const extra = (await reader.at(offset + SIZE.local + nameLen, extraLen, header)).slice();
      const [compressedSize, size] = localZip64(header, extra, compressedField, sizeField);
      for (const [field, same] of [
        ["name", sameBytes(nameBytes, entry.nameBytes)],
        ["flags", flags === entry.flags],
        ["method", method === entry.method],
        ["CRC-32", crc32 === entry.crc32],
        ["compressed size", compressedSize === entry.compressedSize],
        ["size", size === entry.size],
      ]) {
        if (!same) throw R.unsafe(`${header} does not match the central directory entry (${field}).`);
      }
      const dataEnd = variableEnd + entry.compressedSize;
      if (dataEnd > directory.cdOffset) {
        throw R.unsafe(`The data of member ${show(entry.name)} runs into the central directory (overlapping members).`);
      }
      members.push({
        name: entry.name,
        method: entry.method,
        compressedSize: entry.compressedSize,
        size: entry.size,
        crc32: entry.crc32,
        headerOffset: offset,
        dataOffset: variableEnd,
      });
      starts.push(offset);
      expected = dataEnd;
    }
    if (expected !== directory.cdOffset) {
      const where = members.length ? `after member ${show(members[members.length - 1].name)}` : "before the first member";
      throw R.unsafe(
        `There are ${directory.cdOffset - expected} bytes of data ${where}, before the central directory (data between members).`,
      );
    }
    return members;
  }

  /** A read-only edition ZIP whose whole structure was validated by `open`. */
  class EditionArchive {
    constructor(reader, members) {
      this.reader = reader;
      this.members = members;
      this.byName = new Map(members.map((member) => [member.name, member]));
    }

    /**
     * Validate the whole structure of `blob` (rules 1-8); throws "unsafe-archive", or
     * "incomplete" for a file with no end record at all (empty, cut short, a web page).
     */
    static async open(blob, limits, folding) {
      const reader = new BlobReader(blob);
      const directory = await findDirectory(reader, limits);
      if (directory.cdOffset > directory.cdEnd) throw R.unsafe("The central directory starts after its end (corrupt end record).");
      const entries = await readCentralDirectory(reader, directory, limits, folding);
      const members = await checkTiling(reader, directory, entries);
      return new EditionArchive(reader, members);
    }

    find(name) {
      return this.byName.get(name);
    }

    /**
     * Feed the member's uncompressed bytes to `sink(chunk)`, never more than the
     * declared size; throws "unsafe-archive" if the member is larger than `maxBytes`
     * (checked first), and "tampered" (`damaged`) if the data is longer or shorter than
     * declared, the deflate stream is corrupt or has data after its end, or the CRC-32
     * does not match.
     */
    async stream(member, maxBytes, sink) {
      const label = `Member ${show(member.name)}`;
      if (maxBytes !== null && member.size > maxBytes) {
        throw R.unsafe(`${label} is ${member.size} bytes, over the ${maxBytes} bytes allowed here.`);
      }
      let produced = 0;
      let crc = 0;
      const accept = (chunk) => {
        produced += chunk.length;
        if (produced > member.size) throw damaged(member, `${label} inflates to more than its declared ${member.size} bytes (zip bomb)`);
        crc = R.crc32(chunk, crc);
        sink(chunk);
      };
      if (member.method === 0) {
        const step = 4 * 1024 * 1024;
        for (let at = 0; at < member.compressedSize; at += step) {
          const length = Math.min(step, member.compressedSize - at);
          accept(await this.reader.at(member.dataOffset + at, length, `${label}'s data`));
        }
      } else {
        await this.inflate(label, member, accept);
      }
      if (produced !== member.size) throw damaged(member, `${label} has ${produced} bytes, fewer than its declared ${member.size}`);
      if (crc !== member.crc32) throw damaged(member, `${label} fails its CRC-32 check (corrupt or tampered data)`);
    }

    async inflate(label, member, accept) {
      const inflater = new DecompressionStream("deflate-raw");
      const writer = inflater.writable.getWriter();
      const reader = inflater.readable.getReader();
      // The compressed data goes in 1 MiB at a time while the output is read, so neither
      // side of a large member is held whole; errors surface on the reading side.
      const feed = (async () => {
        const step = 1024 * 1024;
        for (let at = 0; at < member.compressedSize; at += step) {
          const length = Math.min(step, member.compressedSize - at);
          await writer.write(await this.reader.at(member.dataOffset + at, length, `${label}'s data`));
        }
        await writer.close();
      })();
      const fed = feed.catch((error) => error);
      try {
        for (;;) {
          let step;
          try {
            step = await reader.read();
          } catch (error) {
            const failure = await fed;
            if (failure instanceof R.Verdict) throw failure; // the file could not be read
            const text = String((error && error.message) || error);
            if (/junk|extra|trailing/i.test(text)) throw damaged(member, `${label} has data after the end of its deflate stream`);
            if (/truncat|end of|incomplete/i.test(text)) {
              throw damaged(member, `${label}'s deflate stream ends early (truncated or shorter than declared)`);
            }
            // Chromium inflates with zlib too; say it as Python's zlib.error does (Z_DATA_ERROR).
            const reason = /not valid: (.*?)\.?$/.exec(text);
            const detail = reason ? `Error -3 while decompressing data: ${reason[1]}` : text;
            throw damaged(member, `${label} has corrupt deflate data (${detail})`);
          }
          if (step.done) break;
          accept(step.value);
        }
      } catch (error) {
        reader.cancel().catch(() => undefined);
        throw error;
      }
      const failure = await fed;
      if (failure instanceof Error) throw failure;
    }

    /** The member's whole bytes, checked like `stream`. */
    async read(member, maxBytes) {
      const out = new Uint8Array(member.size);
      let at = 0;
      await this.stream(member, maxBytes, (chunk) => {
        out.set(chunk, at);
        at += chunk.length;
      });
      return out;
    }
  }

  R.EditionArchive = EditionArchive;
})((globalThis.MirrorReader = globalThis.MirrorReader || {}));
