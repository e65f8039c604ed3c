# Shell pieces shared by deploy/check.sh and deploy/podman-check.sh: sourced from the
# repository root, after `set -euo pipefail`.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this file

repo=$PWD
venv=$repo/.venv
py=$venv/bin/python
mirror_bin=$venv/bin/mirror

section() { printf '\n== deploy: %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
note() { printf 'NOTE: %s\n' "$*"; }
die() {
  printf '%s: FAILED: %s\n' "$(basename "$0")" "$*" >&2
  exit 1
}

[ -x "$mirror_bin" ] || die "$mirror_bin is missing: run bash .ci/run (or pip install -e .) first"

# write_config FILE ARTICLES KEYS PASSPHRASE_FILE STATE WWW
# The configuration every deploy check runs: a directory source, the online keys,
# the passphrase as a file: reference, and two local mirrors (WWW/a, WWW/b) with a
# quorum of 2. Paths are as the sync sees them (host, sandbox or container).
write_config() {
  cat >"$1" <<EOF
publisher:
  name: Example Newsroom
sources:
  - type: directory
    path: $2
keys:
  dir: $3
  passphrase: file:$4
output: $5
push:
  quorum: 2
mirrors:
  - name: disk-a
    type: local
    public_url: file://$6/a/
    local:
      path: $6/a
  - name: disk-b
    type: local
    public_url: file://$6/b/
    local:
      path: $6/b
EOF
}

# The samples a monitor of that configuration serves once both mirrors are healthy
# (arguments for deploy/checks/scrape.py).
healthy_samples=(
  'mirror_mirror_healthy{mirror="disk-a",vantage_point="direct"} 1.0'
  'mirror_mirror_healthy{mirror="disk-b",vantage_point="direct"} 1.0'
)

# free_port PYTHON: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  "$1" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
