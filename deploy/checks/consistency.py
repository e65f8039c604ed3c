"""Cross-checks of deploy/ that no linter does (run by deploy/check.sh with the project's venv).

Each check states one promise the deploy files make and fails with a sentence
when a file breaks it: the hardening the units claim, the example configs
loading with mirror's own config loader, every secret a config refers to being
delivered where the config looks for it, and the workloads' paths, user and
shard count agreeing with each other and with the image.

    python consistency.py REPO [--init-script OUT]   # OUT: the keys-layout script
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mirror.config import load_config

SERVICES = ("mirror-sync.service", "mirror-monitor.service")
HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallFilter": "@system-service",
    "UMask": "0077",
    "StateDirectory": "mirror",
    "User": "mirror",
}
SYNC_CREDENTIALS = "/run/credentials/mirror-sync.service/"
K8S_SECRETS = "/etc/mirror/secrets/"

failures: list[str] = []


def check(condition: bool, promise: str) -> None:
    """Record a broken promise; print kept ones."""
    if condition:
        print(f"ok: {promise}")
    else:
        failures.append(promise)
        print(f"FAIL: {promise}", file=sys.stderr)


def unit_settings(*paths: Path) -> dict[str, list[str]]:
    """Every assignment of the [Service] sections of a unit and its drop-ins, in order."""
    settings: dict[str, list[str]] = {}
    for path in paths:
        section = ""
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                settings.setdefault(key, []).append(value)
    return settings


def strings(node: Any) -> Iterator[str]:
    """Every string in a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def check_systemd(repo: Path) -> None:
    folder = repo / "deploy" / "systemd"
    for name in SERVICES:
        settings = unit_settings(folder / name)
        broken = [
            key for key, value in HARDENING.items() if value not in settings.get(key, ["<unset>"])
        ]
        check(not broken, f"{name} sets the promised hardening ({', '.join(broken) or 'all'})")
    sync = unit_settings(
        folder / "mirror-sync.service", folder / "mirror-sync.service.d/credentials.conf.example"
    )
    argv = shlex.split(sync["ExecStart"][0])
    textfile = Path(argv[argv.index("--metrics-textfile") + 1])
    check(
        f"-{textfile.parent}" in sync["ReadWritePaths"],
        f"mirror-sync.service may write its metrics textfile folder {textfile.parent}",
    )
    config_path = folder / "mirror.yaml.example"
    config = load_config(config_path)
    check(True, f"{config_path.relative_to(repo)} loads with mirror's config loader")
    check(
        str(config.output_dir) == "/var/lib/mirror",
        "the systemd config writes its output to StateDirectory=mirror (/var/lib/mirror)",
    )
    check(
        str(config.keys.dir).startswith("/etc/mirror/"),
        "the systemd config reads keys from /etc/mirror (read-only to the units)",
    )
    loaded = {value.split(":", 1)[0] for value in sync.get("LoadCredential", [])}
    wanted = {
        text.removeprefix(f"file:{SYNC_CREDENTIALS}")
        for text in strings(yaml.safe_load(config_path.read_text(encoding="utf-8")))
        if text.startswith(f"file:{SYNC_CREDENTIALS}")
    }
    check(
        wanted <= loaded,
        f"every credential the systemd config reads is loaded by the unit or its drop-in "
        f"(missing: {', '.join(sorted(wanted - loaded)) or 'none'})",
    )
    writable = {p.lstrip("-") for p in sync.get("ReadWritePaths", [])}
    local_paths = {str(m.settings.path) for m in config.mirrors if m.type == "local"}  # type: ignore[attr-defined]
    check(
        local_paths <= writable,
        "every local mirror folder of the systemd config is in ReadWritePaths (drop-in)",
    )


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    spec = document["spec"]
    if document["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]  # type: ignore[no-any-return]


def image_uid(repo: Path) -> int:
    users = re.findall(
        r"^USER\s+(\d+)", (repo / "deploy/container/Containerfile").read_text(), re.MULTILINE
    )
    return int(users[-1])


def check_kubernetes(repo: Path, init_script_out: Path | None) -> None:
    folder = repo / "deploy" / "kubernetes"
    uid = image_uid(repo)
    workloads = {
        d["metadata"]["name"]: d
        for name in ("cronjob-sync.yaml", "job-shards.yaml", "deployment-monitor.yaml")
        for d in documents(folder / name)
        if d["kind"] in ("CronJob", "Job", "Deployment")
    }
    config_map = documents(folder / "configmap.example.yaml")[0]
    config_text = config_map["data"]["mirror.yaml"]
    secrets = {d["metadata"]["name"]: d for d in documents(folder / "secret.example.yaml")}
    init_scripts = set()
    for name, workload in workloads.items():
        spec = pod_spec(workload)
        pod = spec["securityContext"]
        check(
            pod.get("runAsNonRoot") is True
            and pod.get("runAsUser") == uid
            and pod.get("seccompProfile", {}).get("type") == "RuntimeDefault",
            f"{name}: non-root as the image's UID {uid}, seccomp RuntimeDefault",
        )
        check(
            spec.get("automountServiceAccountToken") is False,
            f"{name}: no service account token",
        )
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container.get("securityContext", {})
            check(
                context.get("readOnlyRootFilesystem") is True
                and context.get("allowPrivilegeEscalation") is False
                and context.get("capabilities", {}).get("drop") == ["ALL"]
                and "memory" in container.get("resources", {}).get("limits", {})
                and "cpu" in container.get("resources", {}).get("requests", {}),
                f"{name}/{container['name']}: read-only root, no privilege escalation, "
                "ALL capabilities dropped, requests and a memory limit",
            )
        for container in spec.get("initContainers", []):
            if container["name"] == "keys-layout":
                init_scripts.add(container["command"][2])
        main = spec["containers"][0]
        mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
        env = {e["name"]: e.get("value") for e in main.get("env", [])}
        check(
            env.get("MIRROR_CONFIG") == f"{mounts['config']}/mirror.yaml",
            f"{name}: MIRROR_CONFIG points into the mounted ConfigMap",
        )
        check(
            mounts.get("state") == "/var/lib/mirror" and "/tmp" in mounts.values(),  # noqa: S108
            f"{name}: state PVC at /var/lib/mirror, a writable /tmp",
        )
    cron = workloads["mirror-sync"]
    check(cron["spec"]["concurrencyPolicy"] == "Forbid", "mirror-sync: concurrencyPolicy Forbid")
    shards = workloads["mirror-sync-shards"]
    args = shards["spec"]["template"]["spec"]["containers"][0]["args"]
    shard = args[args.index("--shard") + 1]
    count = shards["spec"]["completions"]
    check(
        shards["spec"]["completionMode"] == "Indexed"
        and shards["spec"]["parallelism"] == count
        and shard == f"$(JOB_COMPLETION_INDEX)/{count}",
        f"mirror-sync-shards: Indexed, completions = parallelism = N of --shard ({shard})",
    )
    check(len(init_scripts) == 1, "the keys-layout init script is the same in every workload")
    if init_script_out is not None and init_scripts:
        init_script_out.write_text(next(iter(init_scripts)), encoding="utf-8")

    with tempfile.TemporaryDirectory() as folder:
        config_file = Path(folder) / "mirror.yaml"
        config_file.write_text(config_text, encoding="utf-8")
        config = load_config(config_file)
    check(True, "the ConfigMap's mirror.yaml loads with mirror's config loader")
    sync_mounts = {
        m["name"]: m["mountPath"] for m in pod_spec(cron)["containers"][0]["volumeMounts"]
    }
    check(
        str(config.keys.dir) == sync_mounts["keys"] and str(config.output_dir) == "/var/lib/mirror",
        "the ConfigMap's keys.dir and output match the sync pod's mounts",
    )
    wanted = {
        text.removeprefix(f"file:{K8S_SECRETS}")
        for text in strings(yaml.safe_load(config_text))
        if text.startswith(f"file:{K8S_SECRETS}")
    }
    provided = set(secrets["mirror-secrets"]["stringData"])
    check(
        sync_mounts["secrets"] == K8S_SECRETS.rstrip("/") and wanted <= provided,
        f"every secret the ConfigMap reads is a key of Secret mirror-secrets at {K8S_SECRETS} "
        f"(missing: {', '.join(sorted(wanted - provided)) or 'none'})",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--init-script", type=Path, metavar="OUT")
    args = parser.parse_args()
    check_systemd(args.repo)
    check_kubernetes(args.repo, args.init_script)
    if failures:
        print(f"{len(failures)} deploy consistency checks failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
