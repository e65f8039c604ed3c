/* verify.js: `mirror verify FILE` in the page (mirror/reader/verify_file.py, verify_edition).
 *
 * The order is the point, and it is the CLI's: the archive's structure is
 * proven sane first (EditionArchive.open), then the archive's root 1 must name
 * the pinned publisher (else it is another publisher's edition) and every
 * embedded root this browser already trusts must be exactly that root, then
 * the embedded signed metadata is verified from the reader's trusted root
 * (the one embedded in this page, walked forward through roots this browser
 * accepted before; or, for an edition signed before a key rotation, the root
 * it was signed under, judged by the newest root's record of retired keys),
 * then every member is matched one to one against the signed list and
 * streamed through SHA-256 with the signed length as a hard cap, and only
 * then are times and versions judged. Nothing of the edition is shown before
 * all of that passed.
 */
"use strict";

(function (R) {
  function splitMembers(archive, ctx) {
    const embedded = new Map();
    const content = [];
    for (const member of archive.members) {
      if (member.name.startsWith(ctx.layout.archive_metadata_dir)) embedded.set(member.name, member);
      else content.push(member);
    }
    return { embedded, content };
  }

  const roleMember = (role, ctx) => `${ctx.layout.archive_metadata_dir}${role}.json`;
  const rootMember = (version, ctx) => `${ctx.layout.archive_metadata_dir}root/${version}.root.json`;

  async function readMetadata(archive, embedded, name, maxBytes) {
    const member = embedded.get(name);
    if (member === undefined) throw R.tampered(`the archive lacks its signed metadata ${name}`);
    return archive.read(member, maxBytes);
  }

  async function embeddedRoots(archive, embedded, ctx) {
    const prefix = `${ctx.layout.archive_metadata_dir}root/`;
    const roots = new Map();
    for (const name of embedded.keys()) {
      if (!name.startsWith(prefix)) continue;
      const text = name.slice(prefix.length);
      const version = text.endsWith(".root.json") ? text.slice(0, -".root.json".length) : text;
      if (!/^[0-9]+$/.test(version) || name !== rootMember(parseInt(version, 10), ctx)) {
        throw R.tampered(`the archive holds an unexpected metadata file ${name}`);
      }
      roots.set(parseInt(version, 10), await readMetadata(archive, embedded, name, ctx.caps.root_max_bytes));
    }
    return roots;
  }

  /** _embedded_shard: the member shard an embedded metadata file would be, or null. */
  function embeddedShard(name, ctx) {
    const dir = ctx.layout.archive_metadata_dir;
    const shard = name.startsWith(dir) ? name.slice(dir.length) : name;
    return R.tuf.isMemberShard(shard, ctx) ? shard : null;
  }

  /**
   * _with_embedded_shards: the verified member list with its shards, read from the archive; an
   * embedded shard the signed role does not list is as foreign as any unsigned metadata file.
   */
  async function withEmbeddedShards(archive, embedded, manifest, ctx) {
    for (const name of embedded.keys()) {
      const shard = embeddedShard(name, ctx);
      if (shard !== null && !manifest.shards.has(shard)) {
        throw R.tampered(`the archive holds an unexpected metadata file ${name}`);
      }
    }
    const dir = ctx.layout.archive_metadata_dir;
    const cap = ctx.caps.member_shard_max_bytes;
    return R.tuf.withShards(manifest, (shard) => readMetadata(archive, embedded, `${dir}${shard}`, cap), ctx);
  }

  /** Name of the one embedded edition role; any metadata file but its shards is foreign. */
  function singleEditionRole(embedded, ctx) {
    const known = new Set([roleMember("targets", ctx), roleMember(ctx.layout.manifests_role, ctx)]);
    const roles = [];
    for (const name of embedded.keys()) {
      if (known.has(name) || name.startsWith(`${ctx.layout.archive_metadata_dir}root/`)) continue;
      if (embeddedShard(name, ctx) !== null) continue; // judged against the signed role once it verified
      const base = name.slice(name.lastIndexOf("/") + 1);
      const stem = base.endsWith(".json") ? base.slice(0, -5) : base;
      if (name !== roleMember(stem, ctx) || !stem.startsWith(ctx.layout.edition_role_prefix)) {
        throw R.tampered(`the archive holds an unexpected metadata file ${name}`);
      }
      roles.push(stem);
    }
    if (roles.length !== 1) throw R.tampered(`the archive carries ${roles.length} edition member lists instead of one`);
    return roles[0];
  }

  /**
   * Stream one member through SHA-256, never past its signed length; return its bytes if asked.
   *
   * A member whose stream fails (its CRC-32, its deflate data, its length) holds bytes that are
   * not the ones signed: the archive reader throws that as tampered, like a wrong hash, for this
   * member as for embedded metadata (zip.js, `damaged`).
   */
  async function checkMember(archive, member, signed, ctx, keep = false) {
    const length = Number(signed.length);
    if (member.size !== length) {
      throw R.tampered(`${member.name} is ${member.size} bytes but the publisher signed ${signed.length}`);
    }
    let digest;
    let bytes = null;
    if (length > ctx.streamHashBytes && !keep) {
      const hash = new R.Sha256();
      await archive.stream(member, length, (chunk) => hash.update(chunk));
      digest = hash.hex();
    } else {
      bytes = await archive.read(member, length);
      digest = await R.sha256Hex(bytes);
    }
    if (digest !== signed.sha256) throw R.tampered(`${member.name} does not match the publisher's signed hash`);
    return bytes;
  }

  const isTampered = (error) => error instanceof R.Verdict && error.verdict === "tampered";

  /**
   * _require_publisher: the archive's own first root must name the pinned publisher, else it is
   * someone else's edition; checked before any signature, so the reader hears that, not "forged".
   */
  function requirePublisher(pinned, roots, ctx) {
    const first = roots.get(1);
    if (first === undefined) throw R.tampered("the archive lacks its root metadata version 1");
    const theirs = R.tuf.publisherOf(R.tuf.parseMetadata(first, "root", "the archive's root version 1", ctx).signed, ctx);
    const ours = R.tuf.publisherOf(pinned.signed, ctx);
    if (theirs.id !== ours.id) {
      // As mirror.trust.publisher.told_apart: two newsrooms of one name are told apart by id.
      const same = theirs.name === ours.name;
      const theirName = same ? `${theirs.name} (id ${theirs.id})` : theirs.name;
      const ourName = same ? `${ours.name} (id ${ours.id})` : ours.name;
      throw new R.Verdict(
        "other-publisher",
        `this edition is from ${theirName}, not from ${ourName}, whose root you pinned`,
      );
    }
  }

  /** _known_root: root `version` as this browser trusts it (pinned, or accepted before), or null. */
  function knownRoot(version, pinned, trust, ctx) {
    const known = trust.roots.get(version);
    if (known !== undefined) return R.tuf.parseMetadata(known, "root", `your stored root version ${version}`, ctx);
    return BigInt(version) === BigInt(pinned.signed.version) ? pinned : null;
  }

  /** _require_trusted_copies: every embedded root version this browser trusts is exactly that root. */
  function requireTrustedCopies(pinned, trust, roots, ctx) {
    for (const [version, data] of roots) {
      const embedded = R.tuf.parseMetadata(data, "root", `the archive's root version ${version}`, ctx);
      const trusted = knownRoot(version, pinned, trust, ctx);
      if (trusted !== null && !R.tuf.sameDocument(embedded, trusted)) {
        throw R.tampered(`the archive's copy of root version ${version} is not the root you trust`);
      }
    }
  }

  /**
   * _predecessor: an embedded older root, if the chain from it through trusted versions reaches
   * exactly the newest trusted root (a forged old root could not have signed the real next one).
   */
  async function predecessor(data, newest, pinned, trust, ctx) {
    const old = R.tuf.parseMetadata(data, "root", "the archive's newest root", ctx);
    const later = new Map();
    for (let version = BigInt(old.signed.version) + 1n; version <= BigInt(newest.signed.version); version++) {
      const known = knownRoot(Number(version), pinned, trust, ctx);
      if (known === null) return null;
      later.set(Number(version), known);
    }
    let reached;
    try {
      reached = (await R.tuf.walkRootChain(old, later, ctx)).root;
    } catch (error) {
      if (isTampered(error)) return null;
      throw error;
    }
    return R.tuf.sameDocument(reached, newest) ? old : null;
  }

  /**
   * _verify_signed: the member list, verified under the newest trusted root, or, for an edition
   * signed before a key rotation, by the retired key that signed it: vouched for by the newest
   * root's record of retired keys (the key itself and its threshold, ADR 0018), or, for older
   * records, by the archive's newest root when this browser trusts it (or the chain proves it)
   * and the edition verifies under it. Returns {manifest, superseded, retiredBy}; otherwise
   * the error under the newest root stands.
   */
  async function verifySigned(newest, proofs, roots, pinned, trust, ctx) {
    try {
      return { manifest: await R.tuf.verifyManifest(newest, proofs, ctx), superseded: null, retiredBy: null };
    } catch (underNewest) {
      if (!isTampered(underNewest)) throw underNewest;
      const signedUnder = roots.size ? Math.max(...roots.keys()) : 0;
      if (!(signedUnder > 0 && BigInt(signedUnder) < BigInt(newest.signed.version))) throw underNewest;
      const retired = R.tuf.retiredKeys(newest.signed, ctx);
      const found =
        (await R.tuf.verifyManifestByRetiredKeys(newest, retired, signedUnder, proofs, ctx)) ||
        (await verifyByChain(proofs, signedUnder, { roots, newest, pinned, trust, retired }, ctx));
      if (found === null) throw underNewest;
      // max(used, key=(compromised?, retired)): the first of the greatest.
      const rank = (k) => [k.compromisedSince !== null ? 1 : 0, k.retired];
      let key = found.used[0];
      for (const other of found.used.slice(1)) {
        const [a, b] = [rank(other), rank(key)];
        if (a[0] > b[0] || (a[0] === b[0] && a[1] > b[1])) key = other;
      }
      const superseded = {
        rootVersion: signedUnder,
        newestRootVersion: newest.signed.version,
        retired: key.retired,
      };
      return { manifest: found.manifest, superseded, retiredBy: key };
    }
  }

  /**
   * _verify_by_chain: the member list under root `signedUnder` (trusted, or proven by the chain),
   * if a key the newest root records as retired signed it: {manifest, used}, else null.
   */
  async function verifyByChain(proofs, signedUnder, { roots, newest, pinned, trust, retired }, ctx) {
    const old =
      knownRoot(signedUnder, pinned, trust, ctx) || (await predecessor(roots.get(signedUnder), newest, pinned, trust, ctx));
    if (old === null) return null;
    let manifest;
    try {
      manifest = await R.tuf.verifyManifest(old, proofs, ctx);
    } catch (error) {
      if (isTampered(error)) return null;
      throw error;
    }
    const targets = R.tuf.parseMetadata(proofs.targetsBytes, "targets", "the embedded targets metadata", ctx);
    const keys = await R.tuf.signingKeys(old.signed, "targets", targets);
    const used = Array.from(keys).sort(R.comparePython).filter((k) => retired.has(k)).map((k) => retired.get(k));
    if (!used.length) return null;
    manifest.expiries.set("root", newest.signed.expires); // the newest root's expiry is judged
    return { manifest, used };
  }

  /**
   * verify_edition(file, pinned, trust, now, allowExpired): a verified edition,
   * or a thrown Verdict naming what is wrong. `progress(done, total)` is told
   * how far the member check is.
   */
  async function verifyEdition(file, { pinned, trust, now, allowExpired, progress }, ctx) {
    const publisherId = R.tuf.publisherOf(pinned.signed, ctx).id;
    const start = (await R.tuf.walkRootChain(pinned, trust.roots, ctx)).root;
    const archive = await R.EditionArchive.open(file, ctx.limits, ctx.folding);
    const { embedded, content } = splitMembers(archive, ctx);
    const embeddedVersions = await embeddedRoots(archive, embedded, ctx);
    requirePublisher(pinned, embeddedVersions, ctx);
    requireTrustedCopies(pinned, trust, embeddedVersions, ctx);
    const chain = await R.tuf.walkRootChain(start, embeddedVersions, ctx);
    const editionRole = singleEditionRole(embedded, ctx);
    const cap = ctx.caps.targets_max_bytes;
    const targetsBytes = await readMetadata(archive, embedded, roleMember("targets", ctx), cap);
    const manifestsBytes = await readMetadata(archive, embedded, roleMember(ctx.layout.manifests_role, ctx), cap);
    const editionRoleBytes = await readMetadata(archive, embedded, roleMember(editionRole, ctx), cap);
    const proofs = { targetsBytes, manifestsBytes, editionRoleName: editionRole, editionRoleBytes };
    const signed = await verifySigned(chain.root, proofs, embeddedVersions, pinned, trust, ctx);
    const { superseded, retiredBy } = signed;
    const manifest = await withEmbeddedShards(archive, embedded, signed.manifest, ctx);
    R.tuf.checkMembers(manifest, content.map((member) => member.name));
    let total = 0;
    let done = 0;
    for (const member of content) {
      await checkMember(archive, member, manifest.members.get(member.name), ctx);
      total += member.size;
      if (progress && ++done % 64 === 0) progress(done, content.length);
    }
    const infoMember = archive.find(ctx.layout.edition_info_member);
    if (infoMember === undefined) throw R.tampered("the archive lacks edition.json");
    const info = R.tuf.parseEditionInfo(await archive.read(infoMember, ctx.caps.edition_info_max_bytes), ctx);
    if (retiredBy !== null) R.tuf.judgeRetiredKey(retiredBy, info);
    const freshness = R.tuf.judgeEdition(manifest, info, { now, highestSeen: trust.highest, allowExpired }, ctx);
    const first = Number(start.signed.version) + 1;
    const roots = new Map(chain.accepted.map((bytes, index) => [first + index, bytes]));
    return {
      publisher: manifest.publisher.name,
      publisherId,
      eid: info.eid,
      version: info.version,
      title: info.title,
      created: info.created,
      expires: info.expires,
      rootVersion: chain.root.signed.version,
      members: content.length,
      contentBytes: total,
      freshness,
      superseded,
      update: { publisherId, roots, highest: [info.version, info.eid] },
      archive,
      manifest,
    };
  }

  /** A verified member's bytes, read and checked again against its signed hash. */
  async function verifiedMember(result, name, ctx) {
    const member = result.archive.find(name);
    const signed = result.manifest.members.get(name);
    if (member === undefined || signed === undefined) return null;
    return checkMember(result.archive, member, signed, ctx, true);
  }

  R.verifyEdition = verifyEdition;
  R.verifiedMember = verifiedMember;
})((globalThis.MirrorReader = globalThis.MirrorReader || {}));
