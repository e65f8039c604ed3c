/* verify.js: `mirror verify FILE` in the page (mirror/reader/verify_file.py, verify_edition).
 *
 * The order is the point, and it is the CLI's: the archive's structure is
 * proven sane first (EditionArchive.open), then the embedded signed metadata
 * is verified from the reader's trusted root (the one embedded in this page,
 * walked forward through roots this browser accepted before), then every
 * member is matched one to one against the signed list and streamed through
 * SHA-256 with the signed length as a hard cap, and only then are times and
 * versions judged. Nothing of the edition is shown before all of that passed.
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

  /** Name of the one embedded edition role; any other metadata file is foreign. */
  function singleEditionRole(embedded, ctx) {
    const known = new Set([roleMember("targets", ctx), roleMember(ctx.layout.manifests_role, ctx)]);
    const roles = [];
    for (const name of embedded.keys()) {
      if (known.has(name) || name.startsWith(`${ctx.layout.archive_metadata_dir}root/`)) continue;
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

  /** Stream one member through SHA-256, never past its signed length; return its bytes if asked. */
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
    const chain = await R.tuf.walkRootChain(start, await embeddedRoots(archive, embedded, ctx), ctx);
    const editionRole = singleEditionRole(embedded, ctx);
    const cap = ctx.caps.targets_max_bytes;
    const targetsBytes = await readMetadata(archive, embedded, roleMember("targets", ctx), cap);
    const manifestsBytes = await readMetadata(archive, embedded, roleMember(ctx.layout.manifests_role, ctx), cap);
    const editionRoleBytes = await readMetadata(archive, embedded, roleMember(editionRole, ctx), cap);
    const manifest = await R.tuf.verifyManifest(
      chain.root,
      { targetsBytes, manifestsBytes, editionRoleName: editionRole, editionRoleBytes },
      ctx,
    );
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
