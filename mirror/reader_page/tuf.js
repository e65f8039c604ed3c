/* tuf.js: the offline TUF decisions of mirror/trust/verify.py, on bytes only.
 *
 * Metadata is parsed the way python-tuf's Metadata.from_dict reads it, and
 * the signed bytes are what python-tuf signs and checks: canonical JSON of
 * `signed` *as python-tuf writes it back* (to_dict), so an optional field
 * set to null, or an expiry written loosely, gives the same bytes here as
 * there. Signatures are Ed25519 checked by WebCrypto. The rules mirror adds
 * to python-tuf hold here too: thresholds count distinct public keys (one
 * key listed under two key ids counts once), JSON is strict, and what a role
 * may list is decided by delegation paths from the top, never by file names.
 *
 * Tampering is always decided before freshness: `verifyManifest` records
 * expiry, `judgeEdition` enforces it.
 */
"use strict";

(function (R) {
  const TOP_LEVEL = ["root", "timestamp", "snapshot", "targets"];

  class Invalid extends Error {} // python-tuf's ValueError/KeyError/TypeError while parsing

  const isMap = (value) => value instanceof Map;
  const isInt = (value) => typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value));
  const isIntLike = (value) => isInt(value) || typeof value === "boolean"; // Python: bool is an int
  const asBig = (value) => BigInt(typeof value === "boolean" ? Number(value) : value);

  function pop(map, key, fallback) {
    if (!isMap(map)) throw new Invalid(`expected an object holding ${key}`);
    if (!map.has(key)) {
      if (fallback !== undefined) return fallback;
      throw new Invalid(`KeyError: '${key}'`);
    }
    const value = map.get(key);
    map.delete(key);
    return value;
  }

  function copy(value) {
    if (isMap(value)) return new Map(Array.from(value, ([k, v]) => [k, copy(v)]));
    if (Array.isArray(value)) return value.map(copy);
    return value;
  }

  /** A Python-hashable value as a Map key (unhashable lists and objects raise, as in Python). */
  function hashKey(value) {
    if (typeof value === "string") return "s:" + value;
    if (isIntLike(value)) return "n:" + asBig(value).toString();
    if (value === null) return "null";
    throw new Invalid("TypeError: unhashable type");
  }

  // --- expires: datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ") ----------------------------

  const STRPTIME = /^([0-9]{4})-(1[0-2]|0[1-9]|[1-9])-(3[01]|[12][0-9]|0[1-9]|[1-9]| [1-9])T(2[0-3]|[0-1][0-9]|[0-9]):([0-5][0-9]|[0-9]):(6[0-1]|[0-5][0-9]|[0-9])Z/i;

  function parseExpires(text) {
    if (typeof text !== "string") throw new Invalid("TypeError: strptime() argument 1 must be str");
    const match = STRPTIME.exec(text);
    if (match === null || match[0].length !== text.length) throw new Invalid(`time data ${R.pyRepr(text)} does not match format`);
    const [y, mo, d, h, mi, s] = match.slice(1).map((part) => parseInt(part.trim(), 10));
    const ms = Date.UTC(y, mo - 1, d, h, mi, s);
    const back = new Date(ms);
    if (s > 59 || back.getUTCDate() !== d || back.getUTCMonth() !== mo - 1) throw new Invalid("day or second out of range");
    return ms;
  }

  function formatExpires(ms) {
    return new Date(ms).toISOString().replace(/\.[0-9]{3}Z$/, "Z");
  }

  // --- parsing: python-tuf's from_dict, keeping what to_dict writes back -------------------

  function parseCommon(signed, type) {
    const kind = pop(signed, "_type");
    if (kind !== type) throw new Invalid(`Expected type ${type}, got ${kind}`);
    const version = pop(signed, "version");
    const specVersion = pop(signed, "spec_version");
    const expires = parseExpires(pop(signed, "expires"));
    if (typeof specVersion !== "string") throw new Invalid("spec_version is not a string");
    const parts = specVersion.split(".");
    if (![2, 3].includes(parts.length) || !parts.every((part) => /^[0-9]+$/.test(part))) {
      throw new Invalid(`Failed to parse spec_version ${specVersion}`);
    }
    if (parts[0] !== "1") throw new Invalid(`Unsupported spec_version ${specVersion}`);
    if (!isIntLike(version)) throw new Invalid("TypeError: version is not an integer");
    if (asBig(version) <= 0n) throw new Invalid(`version must be > 0, got ${version}`);
    return { type, version, specVersion, expires };
  }

  function commonToDict(parsed, unrecognized) {
    const out = new Map([
      ["_type", parsed.type],
      ["version", parsed.version],
      ["spec_version", parsed.specVersion],
      ["expires", formatExpires(parsed.expires)],
    ]);
    for (const [k, v] of unrecognized) out.set(k, v);
    return out;
  }

  function parseKey(keyid, dict, ctx) {
    if (!isMap(dict)) throw new Invalid("AttributeError: a key is not an object");
    const keytype = dict.get("keytype");
    const scheme = dict.get("scheme");
    if (!ctx.keyTypes.some(([t, s]) => t === keytype && s === scheme)) {
      throw new Invalid(`Unsupported public key ${keytype}/${scheme}`);
    }
    pop(dict, "keytype");
    pop(dict, "scheme");
    const keyval = pop(dict, "keyval");
    if (!isMap(keyval) || typeof keyval.get("public") !== "string") {
      throw new Invalid(`public key string required for scheme ${scheme}`);
    }
    if (typeof keyid !== "string") throw new Invalid("TypeError: Unexpected Key attributes types!");
    const toDict = new Map([["keytype", keytype], ["scheme", scheme], ["keyval", keyval]]);
    for (const [k, v] of dict) toDict.set(k, v);
    return { keyid, keytype, scheme, public: keyval.get("public"), toDict };
  }

  function parseRole(dict) {
    const keyids = pop(dict, "keyids");
    const threshold = pop(dict, "threshold");
    if (!Array.isArray(keyids)) throw new Invalid("TypeError: keyids is not a list");
    const seen = new Set(keyids.map(hashKey));
    if (seen.size !== keyids.length) throw new Invalid(`Nonunique keyids: ${keyids}`);
    if (!isIntLike(threshold)) throw new Invalid("TypeError: threshold is not an integer");
    if (asBig(threshold) < 1n) throw new Invalid("threshold should be at least 1!");
    const toDict = new Map([["keyids", keyids], ["threshold", threshold]]);
    for (const [k, v] of dict) toDict.set(k, v);
    return { keyids, threshold, toDict };
  }

  function parseRoot(signed, ctx) {
    const common = parseCommon(signed, "root");
    const consistentSnapshot = pop(signed, "consistent_snapshot", null);
    const keysDict = pop(signed, "keys");
    const rolesDict = pop(signed, "roles");
    if (!isMap(keysDict) || !isMap(rolesDict)) throw new Invalid("AttributeError: keys and roles must be objects");
    const keys = new Map();
    for (const [keyid, dict] of keysDict) keys.set(keyid, parseKey(keyid, dict, ctx));
    const roles = new Map();
    for (const [name, dict] of rolesDict) roles.set(name, parseRole(dict));
    if (roles.size !== 4 || !TOP_LEVEL.every((name) => roles.has(name))) {
      throw new Invalid("Role names must be the top-level metadata roles");
    }
    const toDict = commonToDict(common, signed);
    if (consistentSnapshot !== null) toDict.set("consistent_snapshot", consistentSnapshot);
    toDict.set("keys", new Map(Array.from(keys, ([id, key]) => [id, key.toDict])));
    toDict.set("roles", new Map(Array.from(roles, ([name, role]) => [name, role.toDict])));
    return { ...common, keys, roles, unrecognized: signed, toDict };
  }

  function parseDelegatedRole(dict) {
    if (!isMap(dict)) throw new Invalid("AttributeError: a delegated role is not an object");
    const name = pop(dict, "name");
    const role = parseRole(new Map([["keyids", pop(dict, "keyids")], ["threshold", pop(dict, "threshold")]]));
    const terminating = pop(dict, "terminating");
    const paths = pop(dict, "paths", null);
    const prefixes = pop(dict, "path_hash_prefixes", null);
    if ((paths !== null) + (prefixes !== null) !== 1) throw new Invalid("Only one of (paths, path_hash_prefixes) must be set");
    for (const list of [paths, prefixes]) {
      if (list !== null && (!Array.isArray(list) || list.some((p) => typeof p !== "string"))) {
        throw new Invalid("Paths must be strings");
      }
    }
    const toDict = new Map([["name", name], ["terminating", terminating], ...role.toDict]);
    for (const [k, v] of dict) toDict.set(k, v);
    if (paths !== null) toDict.set("paths", paths);
    else toDict.set("path_hash_prefixes", prefixes);
    return { name, keyids: role.keyids, threshold: role.threshold, terminating, paths, prefixes, toDict };
  }

  function parseDelegations(dict, ctx) {
    const keysDict = pop(dict, "keys");
    if (!isMap(keysDict)) throw new Invalid("AttributeError: delegation keys must be an object");
    const keys = new Map();
    for (const [keyid, keyDict] of keysDict) keys.set(keyid, parseKey(keyid, keyDict, ctx));
    const rolesList = pop(dict, "roles", null);
    let roles = null;
    if (rolesList !== null) {
      if (!Array.isArray(rolesList)) throw new Invalid("TypeError: roles is not a list");
      roles = new Map();
      for (const roleDict of rolesList) {
        const role = parseDelegatedRole(roleDict);
        if (roles.has(role.name)) throw new Invalid(`Duplicate role ${role.name}`);
        roles.set(role.name, role);
      }
    }
    const succinctDict = pop(dict, "succinct_roles", null);
    let succinct = null;
    if (succinctDict !== null) {
      const bitLength = pop(succinctDict, "bit_length", undefined);
      const namePrefix = pop(succinctDict, "name_prefix", undefined);
      const role = parseRole(succinctDict);
      if (!isIntLike(bitLength) || asBig(bitLength) <= 0n || asBig(bitLength) > 32n) {
        throw new Invalid("bit_length must be between 1 and 32");
      }
      if (typeof namePrefix !== "string") throw new Invalid("name_prefix must be a string");
      const toDict = new Map([["bit_length", bitLength], ["name_prefix", namePrefix], ...role.toDict]);
      succinct = { bitLength: Number(bitLength), namePrefix, keyids: role.keyids, threshold: role.threshold, toDict };
    }
    if ((roles !== null) + (succinct !== null) !== 1) throw new Invalid("One of roles and succinct_roles must be set");
    if (roles !== null) {
      for (const name of roles.keys()) {
        if (!name || TOP_LEVEL.includes(name)) throw new Invalid("Delegated roles cannot be empty or use top-level role names");
      }
    }
    const toDict = new Map([["keys", new Map(Array.from(keys, ([id, key]) => [id, key.toDict]))]]);
    for (const [k, v] of dict) toDict.set(k, v);
    if (roles !== null) toDict.set("roles", Array.from(roles.values(), (role) => role.toDict));
    else toDict.set("succinct_roles", succinct.toDict);
    return { keys, roles, succinct, toDict };
  }

  function parseTargets(signed, ctx) {
    const common = parseCommon(signed, "targets");
    const targetsDict = pop(signed, "targets");
    // A "delegations" key that is present must hold delegations (null is an error, as in Python).
    const delegations = signed.has("delegations") ? parseDelegations(pop(signed, "delegations"), ctx) : null;
    if (!isMap(targetsDict)) throw new Invalid("AttributeError: targets must be an object");
    const targets = new Map();
    const targetsToDict = new Map();
    for (const [path, info] of targetsDict) {
      const length = pop(info, "length");
      const hashes = pop(info, "hashes");
      if (!isIntLike(length)) throw new Invalid("TypeError: length is not an integer");
      if (asBig(length) < 0n) throw new Invalid(`Length must be >= 0, got ${length}`);
      if (!isMap(hashes) || hashes.size === 0) throw new Invalid("Hashes must be a non empty dictionary");
      for (const value of hashes.values()) if (typeof value !== "string") throw new Invalid("Hashes items must be strings");
      targets.set(path, { length, hashes });
      const entry = new Map([["length", length], ["hashes", hashes]]);
      for (const [k, v] of info) entry.set(k, v);
      targetsToDict.set(path, entry);
    }
    const toDict = commonToDict(common, signed);
    toDict.set("targets", targetsToDict);
    if (delegations !== null) toDict.set("delegations", delegations.toDict);
    return { ...common, targets, delegations, unrecognized: signed, toDict };
  }

  function parseSignatures(list) {
    if (!Array.isArray(list)) {
      // Python iterates a dict's keys or a string's characters and fails on each; both are errors.
      if (typeof list === "string" && list.length === 0) return new Map();
      if (isMap(list) && list.size === 0) return new Map();
      throw new Invalid("signatures is not a list");
    }
    const signatures = new Map();
    for (const dict of list) {
      const keyid = pop(dict, "keyid");
      const sig = pop(dict, "sig");
      const key = hashKey(keyid);
      if (signatures.has(key)) throw new Invalid(`Multiple signatures found for keyid ${keyid}`);
      const toDict = new Map([["keyid", keyid], ["sig", sig]]);
      for (const [k, v] of dict) toDict.set(k, v);
      signatures.set(key, { keyid, sig, toDict });
    }
    return signatures;
  }

  /**
   * parse_metadata(data, kind, what): strict JSON, then python-tuf's model; anything
   * python-tuf refuses is "tampered", as is metadata of the wrong kind.
   */
  function parseMetadata(bytes, kind, what, ctx) {
    const document = R.strictjson.loads(bytes, what, ctx.json);
    let type;
    let metadata;
    try {
      const signedDict = document.get("signed");
      if (!isMap(signedDict) || !signedDict.has("_type")) throw new Invalid("KeyError: '_type'");
      type = signedDict.get("_type");
      if (!["root", "targets", "snapshot", "timestamp"].includes(type)) {
        throw new Invalid(`unrecognized metadata type "${type}"`);
      }
      const signatures = parseSignatures(pop(document, "signatures"));
      const signed = copy(pop(document, "signed"));
      let parsed;
      if (type === "root") parsed = parseRoot(signed, ctx);
      else if (type === "targets") parsed = parseTargets(signed, ctx);
      else parsed = { ...parseCommon(signed, type), toDict: null }; // never trusted here
      metadata = { signed: parsed, signatures, signedBytes: parsed.toDict && R.strictjson.canonical(parsed.toDict) };
      // Metadata.to_dict(): what two copies of one document are compared by.
      metadata.toDict = new Map([
        ["signatures", Array.from(signatures.values(), (signature) => signature.toDict)],
        ["signed", parsed.toDict],
        ...document,
      ]);
    } catch (error) {
      if (error instanceof Invalid) throw R.tampered(`${what} is not valid TUF metadata (${error.message})`);
      throw error;
    }
    if (type !== kind) throw R.tampered(`${what} is ${type} metadata, expected ${kind}`);
    return metadata;
  }

  /**
   * same_document: two parsed copies are exactly one signed document, signatures included:
   * canonical JSON of to_dict() (key order and white space aside, every value counts, and
   * `true` is not 1).
   */
  function sameDocument(a, b) {
    let x;
    let y;
    try {
      x = R.strictjson.canonical(a.toDict);
      y = R.strictjson.canonical(b.toDict);
    } catch (error) {
      if (error instanceof R.Verdict) return false; // not canonical JSON: not the trusted document
      throw error;
    }
    return x.length === y.length && x.every((byte, i) => byte === y[i]);
  }

  // --- signatures and thresholds -----------------------------------------------------------

  const keyCache = new Map();

  async function ed25519Verifies(publicHex, sigText, payload) {
    const signature = R.fromHex(sigText);
    const publicBytes = R.fromHex(publicHex);
    if (signature === null || publicBytes === null) return false;
    try {
      let key = keyCache.get(publicHex);
      if (key === undefined) {
        key = await crypto.subtle.importKey("raw", publicBytes, { name: "Ed25519" }, false, ["verify"]);
        keyCache.set(publicHex, key);
      }
      return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, payload);
    } catch (error) {
      return false; // an unusable key or signature signs nothing
    }
  }

  /** Root/Targets.get_delegated_role: the role's key ids and threshold, or null. */
  function delegatedRole(delegator, role) {
    if (delegator.type === "root") return delegator.roles.get(role) || null;
    const delegations = delegator.delegations;
    if (delegations === null) return null;
    if (delegations.roles !== null) return delegations.roles.get(role) || null;
    const s = delegations.succinct;
    const suffixLength = ((2 ** s.bitLength) - 1).toString(16).length;
    const match = role.startsWith(`${s.namePrefix}-`) ? role.slice(s.namePrefix.length + 1) : null;
    if (match !== null && match.length === suffixLength && /^[0-9a-f]+$/.test(match) && parseInt(match, 16) < 2 ** s.bitLength) {
      return s;
    }
    return null;
  }

  function delegatorKey(delegator, keyid) {
    const keys = delegator.type === "root" ? delegator.keys : delegator.delegations && delegator.delegations.keys;
    return (keys && typeof keyid === "string" && keys.get(keyid)) || null;
  }

  /** get_verification_result(...).signed: the role's keys whose signature on `metadata` is valid. */
  async function validSigners(delegator, role, metadata) {
    const delegated = delegatedRole(delegator, role);
    if (delegated === null) throw R.tampered(`no delegation for the ${role} role (Delegated role ${role} not found)`);
    const signed = new Map();
    for (const keyid of delegated.keyids) {
      const key = delegatorKey(delegator, keyid);
      if (key === null) continue;
      const signature = metadata.signatures.get(hashKey(keyid));
      if (signature === undefined) continue;
      if (key.keytype !== "ed25519" || key.scheme !== "ed25519") continue; // the only scheme mirror signs with
      if (await ed25519Verifies(key.public, signature.sig, metadata.signedBytes)) signed.set(keyid, key);
    }
    return { delegated, signed };
  }

  /** Count distinct public keys with a valid signature; duplicated keys count once. */
  async function distinctSigners(delegator, role, metadata) {
    const { delegated, signed } = await validSigners(delegator, role, metadata);
    const publics = new Set(Array.from(signed.values(), (key) => String(key.public)));
    return { count: publics.size, threshold: delegated.threshold };
  }

  /** signing_keys: ids of the keys `delegator` names for `role` that signed `metadata`. */
  async function signingKeys(delegator, role, metadata) {
    return new Set((await validSigners(delegator, role, metadata)).signed.keys());
  }

  /** require_threshold: "tampered" unless `metadata` meets `delegator`'s threshold for `role`. */
  async function requireThreshold(delegator, role, metadata, what) {
    if (delegatedRole(delegator, role) === null) throw R.tampered(`${what}: nothing delegates the role ${role}`);
    const { count, threshold } = await distinctSigners(delegator, role, metadata);
    if (BigInt(count) < asBig(threshold)) {
      throw R.tampered(`${what} is signed by ${count} of the ${threshold} required publisher keys`);
    }
  }

  function publisherOf(root, ctx) {
    const field = root.unrecognized.get(ctx.layout.publisher_field);
    if (!isMap(field) || typeof field.get("name") !== "string" || typeof field.get("id") !== "string") {
      return { name: "unknown publisher", id: "unknown" };
    }
    return { name: field.get("name"), id: field.get("id") };
  }

  /**
   * walk_root_chain: advance from `trusted` through consecutive newer roots in
   * `candidates` (Map version -> bytes); root N+1 needs a threshold of root N's
   * keys and of its own, and every newer version must be reached (no skips).
   */
  async function walkRootChain(trusted, candidates, ctx) {
    let current = trusted;
    const accepted = [];
    const start = asBig(trusted.signed.version);
    const newer = Array.from(candidates.keys()).filter((v) => BigInt(v) > start).sort((a, b) => a - b);
    if (newer.length > ctx.maxRootChain) throw R.tampered(`the root chain is longer than ${ctx.maxRootChain} versions`);
    for (const version of newer) {
      const expected = asBig(current.signed.version) + 1n;
      if (BigInt(version) !== expected) throw R.tampered(`the root chain skips from version ${expected - 1n} to ${version}`);
      const what = `root version ${version}`;
      const given = candidates.get(version);
      const candidate = given instanceof Uint8Array ? parseMetadata(given, "root", what, ctx) : given; // or trusted, parsed
      if (asBig(candidate.signed.version) !== BigInt(version)) {
        throw R.tampered(`${what} says it is version ${candidate.signed.version}`);
      }
      await requireThreshold(current.signed, "root", candidate, `${what} (old keys)`);
      await requireThreshold(candidate.signed, "root", candidate, `${what} (new keys)`);
      const a = publisherOf(candidate.signed, ctx);
      const b = publisherOf(current.signed, ctx);
      if (a.name !== b.name || a.id !== b.id) throw R.tampered(`${what} names a different publisher`);
      current = candidate;
      accepted.push(candidates.get(version));
    }
    return { root: current, accepted };
  }

  // --- retired keys (mirror/trust/retired.py) ---------------------------------------------

  /** retired._kind: what a JSON value is, in words (values are not echoed). */
  function kind(value) {
    if (typeof value === "boolean") return "true or false";
    if (value === null) return "null";
    if (isInt(value)) return "a number";
    if (typeof value === "string") return "text";
    if (Array.isArray(value)) return "a list";
    return "an object";
  }

  /** retired._Record: one key's entry in a root's record, and the sentence for each flaw. */
  function record(root, keyid, ctx) {
    const malformed = (problem) => R.tampered(`root version ${root.version} records retired key ${keyid} ${problem}`);
    const present = (entry, name) => {
      if (!entry.has(name)) throw malformed(`without its ${name}`);
      return entry.get(name);
    };
    const text = (entry, name) => {
      const value = present(entry, name);
      if (typeof value !== "string") throw malformed(`with ${name} as ${kind(value)}, not text`);
      return value;
    };
    const time = (entry, name) => {
      const value = present(entry, name);
      if (typeof value !== "string") throw malformed(`with ${name} as ${kind(value)}, not a time`);
      try {
        return parseExpires(value); // the same strptime format as expires
      } catch (error) {
        if (error instanceof Invalid) throw malformed(`with ${name} ${R.pyRepr(value)}, which is not a time`);
        throw error;
      }
    };
    const count = (entry, name) => {
      const value = present(entry, name);
      if (!isInt(value)) throw malformed(`with ${name} as ${kind(value)}, not a whole number`);
      if (BigInt(value) < 1n) throw malformed(`with ${name} ${value}, below 1`);
      return BigInt(value);
    };
    const listing = (entry) => {
      if (!ctx.layout.retired_listing_fields.some((name) => entry.has(name))) return null;
      const value = present(entry, "key");
      if (!isMap(value)) throw malformed(`with key as ${kind(value)}, not an object`);
      let key;
      try {
        key = parseKey(keyid, copy(value), ctx);
      } catch (error) {
        if (error instanceof Invalid) throw malformed("with a key that is not a usable public key");
        throw error;
      }
      const threshold = count(entry, "threshold");
      return { key, threshold, rootVersion: count(entry, "last_root_version") };
    };
    return { malformed, text, time, listing };
  }

  /**
   * retired_keys: every key `root` records as retired, by key id, strictly parsed:
   * {keyid, role, retired, compromisedSince, listing} with times in ms (compromisedSince may be
   * null) and listing {key, threshold, rootVersion} or null (records older than ADR 0018).
   */
  function retiredKeys(root, ctx) {
    const name = ctx.layout.retired_keys_field;
    const field = root.unrecognized.has(name) ? root.unrecognized.get(name) : new Map();
    if (!isMap(field)) throw R.tampered(`root version ${root.version} has a malformed ${name}`);
    const keys = new Map();
    for (const [keyid, entry] of field) {
      const r = record(root, keyid, ctx);
      if (!isMap(entry)) throw r.malformed(`as ${kind(entry)}, not an object`);
      const since = entry.get("compromised_since");
      const role = r.text(entry, "role");
      const retired = r.time(entry, "retired");
      const compromisedSince = since === undefined || since === null ? null : r.time(entry, "compromised_since");
      keys.set(keyid, { keyid, role, retired, compromisedSince, listing: r.listing(entry) });
    }
    return keys;
  }

  // --- delegation paths ---------------------------------------------------------------------

  /** fnmatch.fnmatchcase(name, pattern) for one path segment. */
  function fnmatchcase(name, pattern) {
    let out = "";
    for (let i = 0; i < pattern.length; ) {
      const c = pattern[i++];
      if (c === "*") {
        if (!out.endsWith(".*")) out += ".*";
      } else if (c === "?") out += ".";
      else if (c === "[") {
        let j = i;
        if (pattern[j] === "!") j++;
        if (pattern[j] === "]") j++;
        while (j < pattern.length && pattern[j] !== "]") j++;
        if (j >= pattern.length) out += "\\[";
        else {
          let stuff = pattern.slice(i, j).replace(/\\/g, "\\\\");
          i = j + 1;
          if (stuff === "") out += "(?!)";
          else if (stuff === "!") out += ".";
          else {
            if (stuff[0] === "!") stuff = "^" + stuff.slice(1);
            else if (stuff[0] === "^" || stuff[0] === "[") stuff = "\\" + stuff;
            out += "[" + stuff.replace(/\]/g, "\\]") + "]";
          }
        }
      } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    }
    try {
      return new RegExp(`^(?:${out})$`, "su").test(name);
    } catch (error) {
      return false;
    }
  }

  /** DelegatedRole.is_delegated_path. */
  function isDelegatedPath(role, path) {
    if (role.prefixes !== null) {
      const digest = new R.Sha256().update(R.utf8.encode(path)).hex();
      return role.prefixes.some((prefix) => digest.startsWith(prefix));
    }
    const parts = path.split("/");
    return role.paths.some((pattern) => {
      const patternParts = pattern.split("/");
      return patternParts.length === parts.length && parts.every((part, i) => fnmatchcase(part, patternParts[i]));
    });
  }

  function delegatedRoleFor(delegator, name, path) {
    const delegations = delegator.delegations;
    if (delegations === null || delegations.roles === null || delegations.roles.size === 0) {
      throw R.tampered(`signed metadata does not delegate to the ${name} role`);
    }
    const role = delegations.roles.get(name);
    if (role === undefined) throw R.tampered(`signed metadata does not delegate to the ${name} role`);
    if (!isDelegatedPath(role, path)) throw R.tampered(`the ${name} role may not list ${path}`);
  }

  /** verify_manifest: the embedded targets -> manifests -> edition chain under `root`. */
  async function verifyManifest(root, proofs, ctx) {
    const targets = parseMetadata(proofs.targetsBytes, "targets", "the embedded targets metadata", ctx);
    await requireThreshold(root.signed, "targets", targets, "the targets metadata");
    return memberList(root, targets, proofs, ctx);
  }

  /**
   * verify_manifest_by_retired_keys: the member list of an edition whose targets one set of
   * retired targets keys (retired together, last listed no earlier than `signedUnder`) signed
   * to its threshold, with the keys as the trusted newest root records them; or null.
   * Returns {manifest, used} (the retired keys that signed, by key id).
   */
  async function verifyManifestByRetiredKeys(newest, retired, signedUnder, proofs, ctx) {
    const targets = parseMetadata(proofs.targetsBytes, "targets", "the embedded targets metadata", ctx);
    const sets = new Map();
    for (const key of retired.values()) {
      if (key.role !== "targets" || key.listing === null) continue;
      const version = key.listing.rootVersion;
      if (!sets.has(version)) sets.set(version, []);
      sets.get(version).push(key);
    }
    const versions = Array.from(sets.keys()).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    for (const version of versions) {
      if (version < BigInt(signedUnder)) continue; // a root that no longer listed these keys
      const keys = sets.get(version);
      const used = [];
      for (const key of keys) {
        const signature = targets.signatures.get(hashKey(key.keyid));
        const listed = key.listing.key;
        if (signature === undefined || listed.keytype !== "ed25519" || listed.scheme !== "ed25519") continue;
        if (await ed25519Verifies(listed.public, signature.sig, targets.signedBytes)) used.push(key);
      }
      const threshold = keys.reduce((top, key) => (key.listing.threshold > top ? key.listing.threshold : top), 0n);
      if (BigInt(new Set(used.map((key) => String(key.listing.key.public))).size) < threshold) continue;
      const manifest = await memberList(newest, targets, proofs, ctx);
      return { manifest, used: used.sort((a, b) => R.comparePython(a.keyid, b.keyid)) };
    }
    return null;
  }

  /** _member_list: below the (verified) targets: manifests -> edition role, and the members. */
  async function memberList(root, targets, { manifestsBytes, editionRoleName, editionRoleBytes }, ctx) {
    const L = ctx.layout;
    const manifests = parseMetadata(manifestsBytes, "targets", "the embedded manifests metadata", ctx);
    await requireThreshold(targets.signed, L.manifests_role, manifests, "the manifests metadata");
    const edition = parseMetadata(editionRoleBytes, "targets", "the embedded edition metadata", ctx);
    await requireThreshold(manifests.signed, editionRoleName, edition, "the edition's member list");
    if (!editionRoleName.startsWith(L.edition_role_prefix)) throw R.tampered(`${editionRoleName} is not an edition role`);
    const eid = editionRoleName.slice(L.edition_role_prefix.length);
    if (!new RegExp(L.edition_id_re).test(eid)) throw R.tampered(`${R.pyRepr(eid)} is not a valid edition id`);
    const prefix = `manifests/${eid}/`;
    const listed = new Map();
    for (const [path, target] of edition.signed.targets) {
      delegatedRoleFor(targets.signed, L.manifests_role, path);
      delegatedRoleFor(manifests.signed, editionRoleName, path);
      if (!path.startsWith(prefix)) throw R.tampered(`the edition's member list names ${path}, outside ${prefix}`);
      const sha256 = target.hashes.get("sha256");
      if (typeof sha256 !== "string" || R.codePoints(sha256) !== 64) {
        throw R.tampered(`the signed entry for ${path} has no SHA-256 hash`);
      }
      listed.set(path.slice(prefix.length), { length: target.length, sha256: sha256.toLowerCase() });
    }
    const { members, shards } = new MemberList(listed, ctx);
    if (!members.has(L.edition_info_member)) throw R.tampered("the edition's member list does not include edition.json");
    const expiries = new Map([
      ["root", root.signed.expires],
      ["targets", targets.signed.expires],
      [L.manifests_role, manifests.signed.expires],
      [editionRoleName, edition.signed.expires],
    ]);
    return { eid, publisher: publisherOf(root.signed, ctx), members, expiries, shards };
  }

  // --- member shards (mirror/trust/members.py, ADR 0020) ------------------------------------

  const SHA256_HEX = /^[0-9a-f]{64}$/;
  const MAX_BITS = 32;

  const isMemberShard = (name, ctx) => new RegExp(ctx.layout.member_shard_re).test(name);
  const inShards = (member, ctx) => ctx.layout.content_prefixes.some((prefix) => member.startsWith(prefix));

  /** bin_suffix: the first `bits` bits of SHA-256 of the member's name, as zero-padded hex. */
  function binSuffix(member, bits) {
    const first = parseInt(new R.Sha256().update(R.utf8.encode(member)).hex().slice(0, 8), 16);
    const width = (2 ** bits - 1).toString(16).length;
    return Math.floor(first / 2 ** (MAX_BITS - bits)).toString(16).padStart(width, "0");
  }

  /** _safe_name: a relative name of plain segments (it becomes a file for the reader). */
  function safeName(member, ctx) {
    return (
      R.utf8Length(member) <= ctx.layout.max_member_name_bytes &&
      member.split("/").every((part) => part !== "" && part !== "." && part !== "..") &&
      !member.includes("\\") &&
      !member.includes("\0")
    );
  }

  function shardEntry(entry, what) {
    if (!(entry instanceof Map) || entry.size !== 2 || !entry.has("length") || !entry.has("sha256")) {
      throw R.tampered(`${what} is not a length and a SHA-256 hash`);
    }
    const length = entry.get("length");
    const sha256 = entry.get("sha256");
    if (!isInt(length) || length < 0) throw R.tampered(`${what} has no valid length`);
    if (typeof sha256 !== "string" || !SHA256_HEX.test(sha256)) throw R.tampered(`${what} has no SHA-256 hash`);
    return { length, sha256 };
  }

  /** read_shard: the bit length and members of shard `name` (already checked against its hash). */
  function readShard(name, bytes, ctx) {
    const what = `the member list shard ${name}`;
    const cap = ctx.caps.member_shard_max_bytes;
    if (bytes.length > cap) throw R.tampered(`${what} is larger than ${cap} bytes`);
    const document = R.strictjson.loads(bytes, what, ctx.json);
    if (document.size !== 3 || !document.has("bin") || !document.has("bits") || !document.has("members")) {
      throw R.tampered(`${what} is not a member shard (its fields are bin, bits and members)`);
    }
    const bitsValue = document.get("bits");
    const suffix = document.get("bin");
    const listed = document.get("members");
    if (!isInt(bitsValue) || bitsValue < 1 || bitsValue > MAX_BITS) throw R.tampered(`${what} gives no valid bit length`);
    const bits = Number(bitsValue);
    if (typeof suffix !== "string" || `members/${suffix}.json` !== name) {
      throw R.tampered(`${what} is not the shard of its own bin`);
    }
    if (!(listed instanceof Map)) throw R.tampered(`${what} lists no members`);
    const members = new Map();
    for (const [member, entry] of listed) {
      if (!safeName(member, ctx) || !inShards(member, ctx) || binSuffix(member, bits) !== suffix) {
        throw R.tampered(`${what} lists ${R.pyRepr(member)}, which is not a member of its bin`);
      }
      members.set(member, shardEntry(entry, `${what}: ${member}`));
    }
    return { bits, members };
  }

  /** MemberList: the role's own entries, and each shard's members once its bytes are added. */
  class MemberList {
    constructor(listed, ctx) {
      this.ctx = ctx;
      this.shards = new Map();
      this.members = new Map();
      for (const [name, signed] of listed) {
        if (isMemberShard(name, ctx)) this.shards.set(name, signed);
        else this.members.set(name, signed);
      }
      this.added = new Set();
      this.bits = null;
    }

    missing() {
      return Array.from(this.shards.keys()).filter((name) => !this.added.has(name)).sort(R.comparePython);
    }

    async addShard(name, bytes) {
      const signed = this.shards.get(name);
      if (signed === undefined) throw R.tampered(`the edition's member list names no shard ${name}`);
      if (this.added.has(name)) throw R.tampered(`the member list shard ${name} is given twice`);
      if (BigInt(bytes.length) !== BigInt(signed.length) || (await R.sha256Hex(bytes)) !== signed.sha256) {
        throw R.tampered(`the member list shard ${name} is not the one the publisher signed`);
      }
      const { bits, members } = readShard(name, bytes, this.ctx);
      if (this.bits !== null && bits !== this.bits) {
        throw R.tampered(`the member list shard ${name} is cut with another bit length`);
      }
      for (const member of members.keys()) {
        if (this.members.has(member)) throw R.tampered(`the edition's member list gives ${member} twice`);
      }
      this.bits = bits;
      this.added.add(name);
      for (const [member, signed] of members) this.members.set(member, signed);
    }

    complete() {
      const missing = this.missing();
      if (missing.length) throw R.tampered(`the member list shard ${missing[0]} is missing`);
      return this.members;
    }
  }

  /** with_shards: the manifest with its shards' members; `shardBytes(name)` gives their bytes. */
  async function withShards(manifest, shardBytes, ctx) {
    const list = new MemberList(new Map([...manifest.members, ...manifest.shards]), ctx);
    for (const name of list.missing()) await list.addShard(name, await shardBytes(name));
    return { ...manifest, members: list.complete(), shards: new Map() };
  }

  /** check_members: archive content members and signed members match one to one. */
  function checkMembers(manifest, names) {
    if (manifest.shards.size) throw new Error("checkMembers needs the members of the shards (withShards)");
    const present = new Set(names);
    for (const name of names) {
      if (!manifest.members.has(name)) throw R.tampered(`the archive holds ${name}, which the publisher did not sign`);
    }
    for (const name of manifest.members.keys()) {
      if (!present.has(name)) throw R.tampered(`the archive lacks ${name}, which the publisher signed`);
    }
  }

  // --- edition.json and the judgement -------------------------------------------------------

  const ISO = /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2})(?::?([0-9]{2})(?::?([0-9]{2})(?:[.,]([0-9]+))?)?)?)?(?:([+-])([0-9]{2})(?::?([0-9]{2})(?::?([0-9]{2}))?)?)?$/;

  /**
   * datetime.fromisoformat(text.replace("Z", "+00:00")), aware times only: `ms` since 1970
   * (whole milliseconds) and `sub` the microseconds below that (0-999).
   */
  function parseTime(text) {
    const iso = text.replace(/Z/g, "+00:00");
    const m = ISO.exec(iso);
    if (m === null) throw new Invalid(`Invalid isoformat string: ${R.pyRepr(iso)}`);
    const [y, mo, d, h = 0, mi = 0, s = 0] = m.slice(1, 7).map((v) => (v === undefined ? undefined : parseInt(v, 10)));
    const micros = m[7] ? parseInt(m[7].slice(0, 6).padEnd(6, "0"), 10) : 0;
    const local = Date.UTC(y, mo - 1, d, h, mi, s, Math.floor(micros / 1000));
    const back = new Date(local);
    if (back.getUTCDate() !== d || back.getUTCMonth() !== mo - 1 || h > 23 || mi > 59 || s > 59) {
      throw new Invalid(`Invalid isoformat string: ${R.pyRepr(iso)}`);
    }
    if (m[8] === undefined) throw new Invalid(`time ${text} has no time zone`);
    const offset = (parseInt(m[9], 10) * 3600 + parseInt(m[10] || "0", 10) * 60 + parseInt(m[11] || "0", 10)) * 1000;
    return { ms: local - (m[8] === "-" ? -offset : offset), sub: micros % 1000 };
  }

  /** Python's a < b for two parsed times. */
  const earlier = (a, b) => a.ms < b.ms || (a.ms === b.ms && a.sub < b.sub);

  function field(document, name, kind) {
    const value = document.get(name);
    const ok = kind === "int" ? isInt(value) : typeof value === "string";
    if (!ok) throw new Invalid(`${name} is missing or not a ${kind === "int" ? "int" : "str"}`);
    return value;
  }

  /** parse_edition_info: the (already hash-verified) edition.json member. */
  function parseEditionInfo(bytes, ctx) {
    const document = R.strictjson.loads(bytes, "edition.json", ctx.json);
    try {
      const eid = field(document, "edition", "str");
      const version = field(document, "version", "int");
      const created = parseTime(field(document, "created", "str"));
      const expires = parseTime(field(document, "expires", "str"));
      return {
        eid,
        version,
        created: created.ms,
        expires: expires.ms,
        times: { created, expires },
        publisher: field(document, "publisher", "str"),
        title: field(document, "title", "str"),
      };
    } catch (error) {
      if (error instanceof Invalid) throw R.tampered(`edition.json is malformed (${error.message})`);
      throw error;
    }
  }

  /** verify.show_time: a moment as UTC to the minute, whatever offset it was written in. */
  function showTime(ms) {
    return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  /**
   * judge_edition: consistency, rollback and freshness of a verified edition.
   * `highestSeen` is [version, edition id] of the newest edition this browser
   * verified for the publisher, or null.
   */
  function judgeEdition(manifest, info, { now, highestSeen, allowExpired }, ctx) {
    if (info.eid !== manifest.eid) {
      throw R.tampered(`edition.json says ${info.eid} but the signed member list is for ${manifest.eid}`);
    }
    if (!manifest.eid.endsWith(`-v${info.version}`)) throw R.tampered(`edition ${manifest.eid} does not carry version ${info.version}`);
    if (earlier(info.times.expires, info.times.created)) throw R.tampered("the edition expires before it was created");
    if (highestSeen !== null) {
      const [seenVersion, seenEid] = highestSeen;
      if (BigInt(info.version) < BigInt(seenVersion)) {
        throw new R.Verdict(
          "rollback",
          `this is edition version ${info.version}, older than version ${seenVersion} that you already verified`,
        );
      }
      if (BigInt(info.version) === BigInt(seenVersion) && info.eid !== seenEid) {
        throw R.tampered(`version ${info.version} was already verified as ${seenEid}, not ${info.eid}`);
      }
    }
    if (info.created > now + ctx.clockSkewMs) {
      throw new R.Verdict(
        "not-yet-valid",
        `the edition says it was created at ${showTime(info.times.created.ms)}, after your clock's time ${showTime(now)}`,
      );
    }
    let expiredRoles = Array.from(manifest.expiries).filter(([, when]) => when <= now).map(([role]) => role).sort();
    if (info.expires <= now) expiredRoles = ["edition", ...expiredRoles];
    if (expiredRoles.length && !allowExpired) {
      // min(info.expires, *expiries), shown in UTC to the minute.
      const first = Math.min(info.times.expires.ms, ...manifest.expiries.values());
      throw new R.Verdict("expired", `the edition expired at ${showTime(first)}; your clock says ${showTime(now)}`);
    }
    return { expired: expiredRoles.length > 0, expiredRoles, ageMs: now - info.created };
  }

  /**
   * _judge_retired_key: a retired key vouches only for what it signed while it was the
   * publisher's own (`key` from retiredKeys, `info` from parseEditionInfo).
   */
  function judgeRetiredKey(key, info) {
    const created = info.times.created;
    if (key.compromisedSince !== null && created.ms >= key.compromisedSince) {
      throw new R.Verdict(
        "compromised-key",
        `this edition says it was created on ${showTime(created.ms)}, and the key that signed it is ` +
          `compromised since ${showTime(key.compromisedSince)}, as the publisher declared in a newer root`,
      );
    }
    if (created.ms > key.retired || (created.ms === key.retired && created.sub > 0)) {
      throw R.tampered(
        `this edition says it was created on ${showTime(created.ms)}, after the key that signed it ` +
          `was retired on ${showTime(key.retired)}`,
      );
    }
  }

  R.tuf = {
    parseMetadata,
    requireThreshold,
    signingKeys,
    sameDocument,
    retiredKeys,
    judgeRetiredKey,
    walkRootChain,
    verifyManifest,
    verifyManifestByRetiredKeys,
    withShards,
    isMemberShard,
    checkMembers,
    parseEditionInfo,
    judgeEdition,
    publisherOf,
    fnmatchcase,
  };
})((globalThis.MirrorReader = globalThis.MirrorReader || {}));
