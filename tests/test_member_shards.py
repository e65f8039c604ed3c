"""An edition's member list in shards (ADR 0020): small roles, small updates, every check kept.

The edition role lists the edition's pages and one member shard per hash
bin; the shards list the articles and assets. What a reader and a
publisher notice: the role stays small however large the archive, a new
article changes only its own bin's shard (so an update downloads that shard,
not the whole list), and every way a shard could lie — changed bytes, a
member in the wrong shard or in two places, pages or unsafe names in a
shard, an unsigned shard slipped into the archive — is tampering (exit 10),
signed by the publisher's own key or not. Editions from before shards (the
role lists every member) still verify.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tuf.api.metadata import Metadata, TargetFile, Targets

from mirror import publish_tree
from mirror.build import BuildResult
from mirror.cli import main
from mirror.errors import StorageError, TamperedError
from mirror.trust import layout
from mirror.trust.members import MemberList, SignedFile, bin_suffix, write_shards
from mirror.trust.metadata import serializer
from tests.censor import running_mirrors, snapshot_tree
from tests.conftest import Publisher, write_articles
from tests.test_attacks import TAMPERED, assert_clean_rejection, members, run_verify, write_zip
from tests.test_rotation import targets_signer

Shards = dict[str, dict[str, Any]]
"""Shard name (``members/<bin>.json``) -> its JSON document."""


def _role(publisher: Publisher, eid: str) -> Targets:
    state = publish_tree.load_state(publisher.config.publish_dir)
    return state.roles[layout.edition_role(eid)].metadata().signed


def _listed(publisher: Publisher, eid: str) -> dict[str, str]:
    """What the edition role lists: member name -> SHA-256."""
    prefix = f"manifests/{eid}/"
    role = _role(publisher, eid)
    return {p.removeprefix(prefix): t.hashes["sha256"] for p, t in role.targets.items()}


def test_the_role_lists_pages_and_shards_and_the_shards_every_article(
    new_publisher: Callable[..., Publisher],
) -> None:
    publisher = new_publisher(40)
    result = publisher.build()
    listed = _listed(publisher, result.eid)
    pages = {name for name in listed if not layout.is_member_shard(name)}
    assert pages == {"index.html", "about.html", "feed.xml", "style.css", "edition.json"} | {
        layout.MIRROR_LIST_PATH
    }
    assert len(listed) - len(pages) > 20  # 41 members over 256 bins: many shards
    state = publish_tree.load_state(publisher.config.publish_dir)
    every = publish_tree.edition_members(publisher.config.publish_dir, state, result.eid)
    in_zip = {n for n in members(result.zip_path) if not n.startswith(layout.ARCHIVE_METADATA_DIR)}
    assert set(every) == in_zip
    assert {f"articles/article-{i:03d}.html" for i in range(40)} <= set(every)


def test_a_new_article_changes_only_its_own_shard(
    new_publisher: Callable[..., Publisher],
) -> None:
    publisher = new_publisher(40)
    first = publisher.build()
    write_articles(publisher.articles, 1, start=40)
    second = publisher.build(version=first.version + 1)
    before = {n: h for n, h in _listed(publisher, first.eid).items() if layout.is_member_shard(n)}
    after = {n: h for n, h in _listed(publisher, second.eid).items() if layout.is_member_shard(n)}
    bits = publisher.config.trust.hash_bin_bits
    new_shard = layout.member_shard(bin_suffix("articles/article-040.html", bits))
    changed = {n for n in after if before.get(n) != after[n]}
    assert changed == {new_shard}
    assert set(before) <= set(after)


def test_a_readers_update_downloads_only_what_changed(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The changed shard, the new article and the edition's pages: nothing else."""
    publisher = new_publisher(40)
    first = publisher.build()
    tree = publisher.config.publish_dir
    url = tree.resolve().as_uri() + "/"
    before = {p for p in (tree / "targets").rglob("*") if p.is_file()}
    state = tmp_path / "reader"
    argv = ["fetch", "--archive", "--root", str(publisher.root_json), "--mirror", url]
    argv += ["--only", "--state", str(state), "--json"]
    assert main(argv) == 0
    capsys.readouterr()
    write_articles(publisher.articles, 1, start=40)
    publisher.build(version=first.version + 1)
    known = {p.name.split(".", 1)[0] for p in before}  # consistent-snapshot names: <sha256>.<name>
    wanted = [
        p
        for p in (tree / "targets").rglob("*")
        if p.is_file()
        and p.name.split(".", 1)[0] not in known
        and not p.is_relative_to(tree / "targets" / "editions")
    ]
    assert main(argv) == 0
    update = json.loads(capsys.readouterr().out)
    assert update["downloaded_bytes"] == sum(p.stat().st_size for p in wanted)
    shards = [p for p in wanted if p.parent.name == "members"]
    assert len(shards) == 1


# --- shards that lie, signed by the publisher's key --------------------------------------------


def resigned_shards(
    publisher: Publisher, m: dict[str, bytes], edit: Callable[[Shards], None]
) -> dict[str, bytes]:
    """The edition with its shards edited and its role re-signed with the publisher's key."""
    role_member = next(n for n in m if n.startswith(f"{layout.ARCHIVE_METADATA_DIR}edition-"))
    eid = role_member.removeprefix(f"{layout.ARCHIVE_METADATA_DIR}edition-").removesuffix(".json")
    prefix = f"manifests/{eid}/"
    shards = {
        n.removeprefix(layout.ARCHIVE_METADATA_DIR): json.loads(data)
        for n, data in m.items()
        if layout.is_member_shard(n.removeprefix(layout.ARCHIVE_METADATA_DIR))
    }
    edit(shards)
    result = {
        n: d for n, d in m.items() if not n.startswith(f"{layout.ARCHIVE_METADATA_DIR}members/")
    }
    role = Metadata[Targets].from_bytes(m[role_member])
    targets = {
        path: target
        for path, target in role.signed.targets.items()
        if not layout.is_member_shard(path.removeprefix(prefix))
    }
    for name, document in shards.items():
        data = (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode()
        result[layout.archive_shard_name(name)] = data
        targets[prefix + name] = TargetFile(
            len(data), {"sha256": hashlib.sha256(data).hexdigest()}, prefix + name
        )
    role.signed.targets = targets
    role.signatures.clear()
    role.sign(targets_signer(publisher))
    result[role_member] = role.to_bytes(serializer())
    return result


def _first_two(shards: Shards) -> tuple[dict[str, Any], dict[str, Any]]:
    names = sorted(shards)
    return shards[names[0]]["members"], shards[names[1]]["members"]


def _moved_to_another_bin(shards: Shards) -> None:
    one, other = _first_two(shards)
    name = next(iter(one))
    other[name] = one.pop(name)


def _a_page_in_a_shard(shards: Shards) -> None:
    one, _ = _first_two(shards)
    one["index.html"] = next(iter(one.values()))


def _an_unsafe_name(shards: Shards) -> None:
    one, _ = _first_two(shards)
    one["articles/../../evil.html"] = next(iter(one.values()))


def _another_field(shards: Shards) -> None:
    shards[sorted(shards)[0]]["signed_by"] = "someone"


def _a_bad_hash(shards: Shards) -> None:
    one, _ = _first_two(shards)
    name = next(iter(one))
    one[name] = {"length": one[name]["length"], "sha256": "AB" * 32}


SIGNED_LIES: dict[str, tuple[Callable[[Shards], None], str]] = {
    "a member moved to another bin's shard": (_moved_to_another_bin, "not a member of its bin"),
    "a page listed in a shard": (_a_page_in_a_shard, "not a member of its bin"),
    "a name that leaves the edition's folder": (_an_unsafe_name, "not a member of its bin"),
    "a shard with a field of its own": (_another_field, "is not a member shard"),
    "a hash in capitals": (_a_bad_hash, "has no SHA-256 hash"),
}


@pytest.mark.parametrize("lie", sorted(SIGNED_LIES))
def test_a_shard_that_lies_is_tampering_even_when_signed(
    new_publisher: Callable[..., Publisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    lie: str,
) -> None:
    publisher = new_publisher(12)
    result = publisher.build()
    edit, words = SIGNED_LIES[lie]
    hostile = write_zip(
        tmp_path / "hostile.zip", resigned_shards(publisher, members(result.zip_path), edit)
    )
    code, out, err = run_verify(capsys, hostile, publisher, tmp_path / "state")
    assert_clean_rejection(code, TAMPERED, out, err)
    assert words in err


def _resigned_role(
    publisher: Publisher, m: dict[str, bytes], edit: Callable[[str, dict[str, TargetFile]], None]
) -> dict[str, bytes]:
    """The edition with its role's targets edited (``edit(eid, targets)``) and re-signed."""
    role_member = next(n for n in m if n.startswith(f"{layout.ARCHIVE_METADATA_DIR}edition-"))
    eid = role_member.removeprefix(f"{layout.ARCHIVE_METADATA_DIR}edition-").removesuffix(".json")
    role = Metadata[Targets].from_bytes(m[role_member])
    edit(eid, role.signed.targets)
    role.signatures.clear()
    role.sign(targets_signer(publisher))
    return {**m, role_member: role.to_bytes(serializer())}


def listed_twice(publisher: Publisher, m: dict[str, bytes]) -> dict[str, bytes]:
    """An article listed by its shard and by the role as well (both signed)."""

    def edit(eid: str, targets: dict[str, TargetFile]) -> None:
        name = next(n for n in m if n.startswith("articles/"))
        path = layout.manifest_path(eid, name)
        targets[path] = TargetFile.from_data(path, m[name])

    return _resigned_role(publisher, m, edit)


def listed_whole(publisher: Publisher, m: dict[str, bytes]) -> dict[str, bytes]:
    """The edition as before shards: its role lists every member, and it has no shards."""

    def edit(eid: str, targets: dict[str, TargetFile]) -> None:
        targets.clear()
        for name, data in m.items():
            if not name.startswith(layout.ARCHIVE_METADATA_DIR):
                path = layout.manifest_path(eid, name)
                targets[path] = TargetFile.from_data(path, data)

    whole = _resigned_role(publisher, m, edit)
    shard_dir = f"{layout.ARCHIVE_METADATA_DIR}members/"
    return {n: d for n, d in whole.items() if not n.startswith(shard_dir)}


def test_a_member_in_the_role_and_a_shard_is_tampering(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One member, two signed entries: which hash would count? Neither: tampered."""
    publisher = new_publisher(12)
    result = publisher.build()
    hostile = write_zip(tmp_path / "hostile.zip", listed_twice(publisher, members(result.zip_path)))
    code, out, err = run_verify(capsys, hostile, publisher, tmp_path / "state")
    assert_clean_rejection(code, TAMPERED, out, err)
    assert " twice" in err


def test_an_edition_listing_every_member_in_its_role_still_verifies(
    built: tuple[Publisher, BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Editions from before shards: the role is the whole member list."""
    publisher, result = built
    old = write_zip(tmp_path / "old.zip", listed_whole(publisher, members(result.zip_path)))
    code, _, err = run_verify(capsys, old, publisher, tmp_path / "state")
    assert code == 0, err


# --- the member list itself (mirror.trust.members) -----------------------------------------


def _signed(data: bytes) -> SignedFile:
    return SignedFile(len(data), hashlib.sha256(data).hexdigest())


def _shards_of(names: list[str], bits: int) -> dict[str, bytes]:
    entries = [(n, 10, hashlib.sha256(n.encode()).hexdigest()) for n in names]
    return {shard.name: shard.data for shard in write_shards(entries, bits=bits)}


def test_shards_cut_with_two_bit_lengths_are_refused() -> None:
    names = [f"articles/a-{i}.html" for i in range(400)]
    eight = _shards_of(names[:200], 8)
    seven = _shards_of(names[200:], 7)
    name, data = next((n, d) for n, d in sorted(seven.items()) if n not in eight)
    given = {**eight, name: data}
    member_list = MemberList({n: _signed(d) for n, d in given.items()})
    for shard in sorted(eight):
        member_list.add_shard(shard, eight[shard])
    with pytest.raises(TamperedError, match="cut with another bit length"):
        member_list.add_shard(name, data)


def test_a_shard_must_be_the_signed_one_and_is_added_once() -> None:
    shards = _shards_of(["articles/a.html", "articles/b.html"], 8)
    name = sorted(shards)[0]
    member_list = MemberList({n: _signed(d) for n, d in shards.items()})
    with pytest.raises(TamperedError, match="not the one the publisher signed"):
        member_list.add_shard(name, shards[name] + b" ")
    member_list.add_shard(name, shards[name])
    with pytest.raises(TamperedError, match="given twice"):
        member_list.add_shard(name, shards[name])
    with pytest.raises(TamperedError, match="is missing"):
        member_list.complete()


def test_the_same_members_give_the_same_shards_byte_for_byte() -> None:
    names = [f"articles/a-{i}.html" for i in range(50)]
    assert _shards_of(names, 8) == _shards_of(list(reversed(names)), 8)


def test_a_shard_names_no_edition(built: tuple[Publisher, BuildResult]) -> None:
    _, result = built
    for name, data in members(result.zip_path).items():
        if name.startswith(f"{layout.ARCHIVE_METADATA_DIR}members/"):
            assert result.eid.encode() not in data


def test_the_publish_tree_keeps_each_shard_under_its_hash(
    built: tuple[Publisher, BuildResult], tmp_path: Path
) -> None:
    publisher, result = built
    copy = tmp_path / "publish"
    shutil.copytree(publisher.config.publish_dir, copy)
    state = publish_tree.load_state(copy)
    shard = next(n for n in _listed(publisher, result.eid) if layout.is_member_shard(n))
    signed = _role(publisher, result.eid).targets[layout.manifest_path(result.eid, shard)]
    damaged = publish_tree.target_file_path(
        copy, layout.manifest_path(result.eid, shard), signed.hashes["sha256"]
    )
    damaged.write_bytes(damaged.read_bytes().replace(b'"bits":8', b'"bits":7'))
    with pytest.raises(StorageError, match="damaged"):
        publish_tree.edition_members(copy, state, result.eid)


def test_a_first_fetch_reads_the_edition_zip_once_and_its_shards_from_it(
    new_publisher: Callable[..., Publisher], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new reader takes the ZIP (its hash is signed) and caches every member and shard
    from it in one pass: no shard and no article is asked of the mirror on its own."""
    publisher = new_publisher(40)
    built = publisher.build()
    tree = snapshot_tree(publisher.config.publish_dir, tmp_path / "tree")
    state = tmp_path / "reader"
    with running_mirrors([("honest", tree)]) as (mirror,):
        argv = ["fetch", "--archive", "--only", "--root", str(publisher.root_json)]
        argv += ["--mirror", mirror.url, "--state", str(state), "--json"]
        capsys.readouterr()
        assert main(argv) == 0, capsys.readouterr()
        asked = [served.path for served in mirror.served()]
    assert sum(path.endswith(f"{built.eid}.zip") for path in asked) == 1
    assert not [p for p in asked if "/members/" in p or "/articles/" in p or "/assets/" in p]
    assert any(state.rglob("library/*/articles/article-039.html"))
