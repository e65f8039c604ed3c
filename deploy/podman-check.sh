#!/usr/bin/env bash
# Runs the deploy artifacts for real under podman (deploy/check.sh lints them):
#
#   container  the sh blocks of deploy/container/README.md marked `checked:`, with
#              this machine's paths: a Debian base made with mmdebstrap (no registry
#              needed), wheels made on the host, the image built from them; `mirror
#              sync` in it as UID 10001 with a read-only root, config and online keys
#              mounted read-only, the passphrase as a podman secret, a state volume
#              and a local mirror folder from the host, which is then verified from
#              the host by a stock python-tuf client and by `mirror fetch`; `config
#              check`; `mirror status --watch` in it, scraped from the host; the
#              HEALTHCHECK
#   systemd    the units under a real systemd (PID 1 of a container made by
#              deploy/checks/systemd-host.Containerfile), installed by the sh block
#              of deploy/systemd/README.md marked `checked: install`: a sync started
#              by hand, one started by the timer, their journal, the monitor's
#              metrics, the node-exporter reading the sync's textfile, the sandbox
#              as the kernel applies it
#
# Run by .ci/run after deploy/check.sh, as root (rootful podman; the containers run
# mirror as UID 10001). Where podman cannot run here (not root, podman not
# installed, the kernel refuses the namespaces a container needs) it prints one
# `skipped: ...` line and exits 0; after those checks, anything failing is a failure.
# Everything, podman's store and configuration included, lives in one work folder
# the run owns, under $DEPLOY_CHECK_DIR (default ~/.cache), removed at the end; only
# podman's blob-info cache (/var/lib/containers/cache, shared and locked) is outside.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=deploy/checks/lib.sh
. deploy/checks/lib.sh

skip() {
  printf 'skipped: deploy/podman-check.sh: %s\n' "$*"
  exit 0
}
started=$SECONDS
elapsed() { printf '%d s' $((SECONDS - started)); }

# --- can podman run here? -----------------------------------------------------------
section "podman: can it run here"
[ "$(id -u)" = 0 ] || skip "needs root (rootful podman, as in CI); run as root or rely on CI"
for tool in podman runc mmdebstrap slirp4netns; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (.ci/run installs it as root: apt-get install podman runc mmdebstrap slirp4netns)"
done
# The namespaces rootful podman makes, and the user namespace the units' PrivateUsers=
# needs inside the systemd container.
if ! reason=$(unshare --user --map-root-user --mount --uts --ipc --net --pid --fork true 2>&1); then
  skip "the kernel refuses the namespaces a container needs (unshare: ${reason:-no reason given})"
fi
printf '%s; %s; %s\n' "$(podman --version)" "$(runc --version | head -n 1)" "$(mmdebstrap --version)"

cache=${DEPLOY_CHECK_DIR:-${HOME:-/root}/.cache}
mkdir -p "$cache"
work=$(mktemp -d "$cache/mirror-podman-check.XXXXXX")
store=$work/podman
mkdir -p "$store/tmp" "$store/networks" "$work/tmp"
# mmdebstrap's, podman's and buildah's temporary files too (they default to /tmp, /var/tmp).
export TMPDIR=$work/tmp

# This machine's podman settings, in files of this run (the README's commands stay
# as they are): no default ulimits (setrlimit is refused here), runc (crun refuses this
# host's hybrid cgroup layout), cgroupfs and a file for events (no systemd as PID 1),
# the store in the work folder. Containers get user-mode networking (slirp4netns) and
# builds the host's network, so nothing is added to the host's network set-up.
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$store/graph"
runroot = "$store/run"
EOF
podman_conf() { # podman_conf NETNS: a containers.conf whose containers use NETNS
  cat <<EOF
[containers]
default_ulimits = []
netns = "$1"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$store/tmp"
image_copy_tmp_dir = "$work/tmp"
[network]
network_config_dir = "$store/networks"
EOF
}
podman_conf slirp4netns >"$work/run.conf"
podman_conf host >"$work/build.conf"
export CONTAINERS_STORAGE_CONF=$work/storage.conf CONTAINERS_CONF=$work/run.conf

background=()
kill_tree() { # kill_tree PID: PID and every process below it, children first
  local children child
  read -r -a children < <(cat /proc/"$1"/task/*/children 2>/dev/null)
  for child in "${children[@]}"; do kill_tree "$child"; done
  kill "$1" 2>/dev/null
}
cleanup() {
  set +e
  for pid in "${background[@]}"; do kill_tree "$pid"; done
  wait 2>/dev/null
  podman ps -aq | xargs -r podman rm -f -t 0 >/dev/null 2>&1
  # Whatever a crash left mounted under the work folder, deepest first.
  awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l
  rm -rf "$work"
}
trap cleanup EXIT
podman info --format '{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}' >/dev/null ||
  die "podman cannot use its configuration ($work/run.conf, $work/storage.conf)"
ok "podman runs here: runc, overlay store in $store"

# readme_block FILE NAME: the sh block after the line `<!-- checked: NAME -->`.
readme_block() {
  awk -v mark="<!-- checked: $2 -->" '
    $0 == mark { armed = 1; next }
    armed && $0 == "```sh" { inside = 1; next }
    inside && $0 == "```" { exit }
    inside { print }
  ' "$1"
}
# block_script FILE NAME [FROM TO]...: that block with this machine's paths; every
# FROM must be in the block, so a changed README fails here instead of drifting.
block_script() {
  local file=$1 name=$2 text
  text=$(readme_block "$file" "$name")
  [ -n "$text" ] || die "$file has no sh block marked <!-- checked: $name -->"
  shift 2
  while [ "$#" -ge 2 ]; do
    [[ $text == *"$1"* ]] || die "$file, block $name: '$1' is gone; update deploy/podman-check.sh"
    text=${text//"$1"/"$2"}
    shift 2
  done
  printf '%s\n' "$text"
}
# run_block LOG FILE NAME [FROM TO]...: print the block as run, run it, log to LOG.
run_block() {
  local log=$1 file=$2 name=$3 script
  shift
  script=$(block_script "$@")
  printf '%s\n' "$script" | sed 's/^/   $ /'
  if ! bash -euo pipefail -c "$script" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "the block '$name' of $file failed (log above)"
  fi
}

# verify_mirror DIR ROOT_JSON EDITION_ZIP: read a published mirror folder from the
# host as readers do, with a stock python-tuf client and with `mirror fetch`.
verify_mirror() {
  "$py" deploy/checks/stock_client.py "$1" "$2" "$3" | sed 's/^/   /' ||
    die "a stock python-tuf client could not read edition $(basename "$3" .zip) from $1"
  local reader
  reader=$(mktemp -d "$work/reader.XXXXXX")
  "$mirror_bin" fetch --root "$2" --mirror "file://$1/" --state "$reader" >"$reader.log" 2>&1 ||
    {
      cat "$reader.log" >&2
      die "mirror fetch refused $1"
    }
  grep "^verified: .*edition $(basename "$3" .zip) " "$reader.log" | sed 's/^/   /' ||
    die "mirror fetch did not verify edition $(basename "$3" .zip) from $1: $(cat "$reader.log")"
}

container_readme=deploy/container/README.md
systemd_readme=deploy/systemd/README.md
passphrase_file=examples/keys/PASSPHRASE-EXAMPLE-ONLY
host=$work/host # stands for /srv/mirror in the README's blocks
mkdir -p "$host"

edits=$work/edits
mkdir -p "$edits"
# $EDITOR in the README's blocks: the edits an operator makes, from files prepared here.
cat >"$edits/editor" <<'EOF'
#!/bin/sh
# $EDITOR FILE for the checked README blocks: writes the prepared FILE; of the
# credentials drop-in it keeps the lines this configuration needs (no secrets, the
# local mirrors' folder).
set -eu
case $1 in
  */credentials.conf) grep -E '^(\[Service\]|ReadWritePaths=)' "$1" >"$1.kept"; cat "$1.kept" >"$1"; rm "$1.kept" ;;
  *) cat "$(dirname "$0")/$(basename "$1")" >"$1" ;;
esac
EOF
chmod 0755 "$edits/editor"

# --- systemd: the units under a real systemd ---------------------------------------------
# systemd_checks: runs in the background beside the container checks (it needs only the
# base image and the wheels); its output is printed when both are done.
systemd_checks() {
  section "systemd: the units under systemd as PID 1 of a container"
  CONTAINERS_CONF=$work/build.conf podman build -f deploy/checks/systemd-host.Containerfile \
      --build-arg BASE_IMAGE=localhost/debian-base:bookworm -t mirror-systemd-host deploy/checks \
      >"$work/systemd-host-build.log" 2>&1 || {
    tail -n 30 "$work/systemd-host-build.log" >&2
    die "the systemd host image did not build"
  }
  sd=$work/systemd
  mkdir -p "$sd/ci" "$sd/articles" "$sd/www"
  cp -R examples/articles/. "$sd/articles/"
  cp "$edits/editor" "$sd/ci/editor"
  write_config "$sd/ci/mirror.yaml" /srv/mirror/articles /etc/mirror/keys \
    /run/credentials/mirror-sync.service/passphrase /var/lib/mirror /srv/www/news
  podman run -d --name mirror-systemd --systemd=always \
    -v "$repo:/src:ro" -v "$work/wheelhouse:/root/wheelhouse:ro" \
    -v "$repo/examples/keys:/media/offline/keys:ro" -v "$sd/ci:/ci:ro" \
    -v "$sd/articles:/srv/mirror/articles:ro" -v "$sd/www:/srv/www/news" \
    mirror-systemd-host >/dev/null
  in_systemd() { podman exec mirror-systemd "$@"; }
  for _ in $(seq 1 30); do # until PID 1 answers; then until it has finished booting
    boot=$(in_systemd systemctl is-system-running --wait 2>&1) || true
    case $boot in *"Failed to connect"*) sleep 1 ;; *) break ;; esac
  done
  printf '   %s, system state: %s\n' "$(in_systemd systemctl --version | head -n 1)" "$boot"
  case $boot in running | degraded) ;; *) die "systemd did not come up in the container: $boot" ;; esac

  script=$(block_script "$systemd_readme" install "ssh-keyscan vps.example.org > /etc/mirror/known_hosts" \
    ": ssh-keyscan skipped: no sftp mirror in this configuration")
  printf '%s\n' "$script" | sed 's/^/   $ /'
  if ! podman exec -i -w /src -e EDITOR=/ci/editor -e DEBIAN_FRONTEND=noninteractive mirror-systemd \
    bash -euo pipefail -c "$script" <"$passphrase_file" >"$work/install.log" 2>&1; then
    tail -n 40 "$work/install.log" >&2
    in_systemd journalctl -u mirror-sync.service -o short-precise --no-pager -n 40 >&2 || true
    in_systemd systemctl show mirror-sync.service -p TimeoutStartUSec -p ExecMainStatus -p Result >&2 || true
    die "the install steps of $systemd_readme failed in the systemd container"
  fi
  sed -n '/^NEXT\|mirror-sync.timer/p' "$work/install.log" | head -n 3 | sed 's/^/   /'
  result=$(in_systemd systemctl show -p Result --value mirror-sync.service)
  [ "$result" = success ] || die "mirror-sync.service started by hand: $result"
  ok "README install steps; mirror-sync.service started by hand: success; timer and monitor enabled"

  # The timer fires at :00 and :30 plus up to 5 minutes: for this run only, it fires 1 s
  # after it starts. One more article, so that run has an edition to publish.
  cp "$repo/examples/articles/en/reading-offline.md" "$sd/articles/en/reading-offline-again.md"
  sed -i 's/^title: .*/title: Reading offline, again/' "$sd/articles/en/reading-offline-again.md"
  before=$(in_systemd systemctl show -p InvocationID --value mirror-sync.service)
  in_systemd sh -c 'mkdir -p /run/systemd/system/mirror-sync.timer.d &&
    printf "[Timer]\nOnActiveSec=1s\nRandomizedDelaySec=0\n" >/run/systemd/system/mirror-sync.timer.d/ci.conf &&
    systemctl daemon-reload && systemctl restart mirror-sync.timer'
  fired=no
  for _ in $(seq 1 90); do
    invocation=$(in_systemd systemctl show -p InvocationID --value mirror-sync.service)
    active=$(in_systemd systemctl show -p ActiveState --value mirror-sync.service)
    if [ "$invocation" != "$before" ] && { [ "$active" = inactive ] || [ "$active" = failed ]; }; then
      fired=yes
      break
    fi
    sleep 1
  done
  [ "$fired" = yes ] || die "mirror-sync.timer did not start (and finish) mirror-sync.service within 90 s"
  result=$(in_systemd systemctl show -p Result --value mirror-sync.service)
  [ "$result" = success ] || die "mirror-sync.service started by the timer: $result"
  in_systemd journalctl -u mirror-sync.service -o cat --no-pager >"$work/journal.log"
  grep -c '^{' "$work/journal.log" | xargs printf '   journal of mirror-sync.service: %s JSON log lines from both runs; the last:\n'
  grep '^{' "$work/journal.log" | tail -n 2 | cut -c1-200 | sed 's/^/   /'
  ok "mirror-sync.timer started mirror-sync.service: success ($(in_systemd systemctl show -p LastTriggerUSec --value mirror-sync.timer))"

  edition=$(in_systemd sh -c 'ls /var/lib/mirror/editions/*.zip' | sort | tail -n 1)
  case $edition in *-v2.zip) ;; *) die "the timer's run published no second edition (newest: $edition)" ;; esac
  podman cp "mirror-systemd:$edition" "$sd/"
  verify_mirror "$sd/www/a" "$repo/examples/keys/root.json" "$sd/$(basename "$edition")"
  ok "from the host: the timer's edition $(basename "$edition") verified on the unit's local mirror"

  if ! in_systemd python3 /src/deploy/checks/scrape.py http://127.0.0.1:9464/metrics "${healthy_samples[@]}"; then
    in_systemd journalctl -u mirror-monitor.service -o cat --no-pager -n 30 >&2
    die "mirror-monitor.service did not report both mirrors healthy"
  fi
  ok "mirror-monitor.service: both mirrors healthy on 127.0.0.1:9464"
  if ! in_systemd python3 /src/deploy/checks/scrape.py http://127.0.0.1:9100/metrics 'mirror_sync_success 1'; then
    in_systemd ls -l /var/lib/prometheus/node-exporter >&2
    die "node-exporter does not serve the sync's textfile metrics"
  fi
  ok "prometheus-node-exporter reads the sync's textfile (the README's ACL recipe under UMask=0077)"
  pid=$(in_systemd systemctl show -p MainPID --value mirror-monitor.service)
  in_systemd sh -c "grep -E '^(Uid|NoNewPrivs|Seccomp|CapEff|CapBnd):' /proc/$pid/status" | sed 's/^/   /'
  in_systemd systemd-analyze security mirror-sync.service mirror-monitor.service --no-pager |
    grep -E '^(UNIT|mirror-)' | sed 's/^/   /'
  ok "the units' sandbox as systemd applied it (the monitor's process, online exposure)"
  podman rm -f -t 5 mirror-systemd >/dev/null
}

# --- container: base image and wheels ----------------------------------------------------
section "container: base image (mmdebstrap) and wheels"
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
[ -f "$sources" ] || die "no apt sources here for mmdebstrap (/etc/apt/sources.list.d/debian.sources)"
# The wheels build while mmdebstrap runs: the two wait on different things.
(
  run_block "$work/wheels.log" "$container_readme" wheels \
    "wheelhouse/" "$work/wheelhouse/" >"$work/wheels.out" 2>&1
) &
background+=($!)
wheels_pid=$!
t0=$SECONDS
run_block "$work/base.log" "$container_readme" base \
  "debian-base.tar" "$work/debian-base.tar" \
  "/etc/apt/sources.list.d/debian.sources" "$sources"
base_s=$((SECONDS - t0))
ok "base image localhost/debian-base:bookworm: $(podman image inspect --format '{{.Size}}' localhost/debian-base:bookworm | awk '{printf "%.0f MB", $1 / 1e6}') in $base_s s"
wait "$wheels_pid" || {
  cat "$work/wheels.out" >&2
  die "the wheels did not build"
}
cat "$work/wheels.out"
ok "wheelhouse: $(find "$work/wheelhouse" -name '*.whl' | wc -l) wheels, ready $((SECONDS - t0)) s after the base began"
(systemd_checks) >"$work/systemd.out" 2>&1 &
background+=($!)
systemd_pid=$!

# --- container: the image --------------------------------------------------------------
section "container: build the image"
t0=$SECONDS
CONTAINERS_CONF=$work/build.conf run_block "$work/build.log" "$container_readme" build \
  "wheelhouse/" "$work/wheelhouse/"
build_s=$((SECONDS - t0))
size_mb=$(podman image inspect --format '{{.Size}}' mirror:0.1.0 | awk '{printf "%.0f", $1 / 1e6}')
ok "image mirror:0.1.0: $size_mb MB, built in $build_s s from the base and the wheels (apt-get of git and ssh included)"
podman history --format '{{.Size}}\t{{.CreatedBy}}' mirror:0.1.0 | awk -F '\t' '$1 != "0 B" {
  printf "   layer %9s  %s\n", $1, substr($2, 1, 60) }'
[ "$size_mb" -le 250 ] || note "the image is over the 250 MB target ($size_mb MB): bench/RESULTS.md says where the bytes are"
# (podman logs that it cannot schedule the health check without systemd: not shown)
podman run --rm mirror:0.1.0 --version 2>"$work/version.log" | sed 's/^/   /' || {
  cat "$work/version.log" >&2
  die "mirror --version failed in the image"
}
podman image inspect --format '   user {{.Config.User}}, entrypoint {{.Config.Entrypoint}}, healthcheck {{.Config.Healthcheck.Test}}' mirror:0.1.0
# The image drops git's perl and all of botocore's models but S3's: what the git and S3
# backends run must still work there (the git commands of mirror/backends/git.py; an S3
# client made from the kept model and endpoint rules).
git_smoke='set -e; cd /tmp; git init -q --bare r.git; git init -q w; cd w
git config remote.origin.url /tmp/r.git; echo x > f; git add --all --force -- .
git diff --cached --quiet --no-ext-diff || true
git -c user.name=m -c user.email=m@example.org commit -q --no-verify -m x
git push -q origin HEAD:refs/heads/main; git ls-remote --heads origin refs/heads/main
git read-tree --empty; git clean -q -ffdx; git rev-parse -q --verify HEAD >/dev/null'
podman run --rm --read-only --tmpfs /tmp --entrypoint /bin/sh mirror:0.1.0 -c "$git_smoke" \
  >"$work/git-smoke.log" 2>&1 || {
  cat "$work/git-smoke.log" >&2
  die "git in the image cannot run the git backend's commands"
}
s3_smoke='import aiobotocore.session as s, asyncio
async def main():
    async with s.get_session().create_client("s3", region_name="auto", endpoint_url="http://127.0.0.1:9", aws_access_key_id="k", aws_secret_access_key="s") as c:
        print(len(c.meta.service_model.operation_names), "operations")
asyncio.run(main())'
podman run --rm --read-only --entrypoint /opt/mirror/bin/python mirror:0.1.0 -c "$s3_smoke" \
  >"$work/s3-smoke.log" 2>"$work/s3-smoke.err" || {
  cat "$work/s3-smoke.log" "$work/s3-smoke.err" >&2
  die "the S3 client cannot be made in the image"
}
ok "in the image: git runs the backend's commands without perl; an S3 client has $(cat "$work/s3-smoke.log")"

# --- container: sync, verify from the host ---------------------------------------------
section "container: mirror sync in the image"
write_config "$edits/mirror.yaml" /srv/articles /etc/mirror/keys /run/secrets/passphrase \
  /var/lib/mirror /srv/www
EDITOR=$edits/editor run_block "$work/layout.log" "$container_readme" layout \
  "/media/offline/keys" "$repo/examples/keys" "/srv/mirror/" "$host/"
cp -R examples/articles/. "$host/articles/"
PASSPHRASE=$(cat "$passphrase_file") run_block "$work/sync.log" "$container_readme" sync \
  "/srv/mirror/" "$host/"
grep -h '"message"' "$work/sync.log" | tail -n 3 | cut -c1-200 | sed 's/^/   /' || true
state=$(podman volume inspect --format '{{.Mountpoint}}' mirror-state)
edition=$(ls "$state"/editions/*.zip)
owner=$(stat -c %u "$host/www/a/metadata/timestamp.json")
[ "$owner" = 10001 ] || die "the sync did not run as UID 10001 (the mirror's files belong to $owner)"
ok "sync in the container, as UID 10001 with a read-only root: $(basename "$edition") in the state volume, pushed to both local mirrors"
for mirror in a b; do
  verify_mirror "$host/www/$mirror" "$host/etc/keys/root.json" "$edition"
done
ok "from the host: both mirror folders verified by python-tuf and by mirror fetch"

# --- container: config check, monitor, health check -------------------------------------
section "container: config check and the monitor"
port=$(free_port "$py")
run_block "$work/monitor.log" "$container_readme" monitor \
  "/srv/mirror/" "$host/" "127.0.0.1:9464:9464" "127.0.0.1:$port:9464"
grep -E '^│ disk-' "$work/monitor.log" | sed 's/^/   /' || true
ok "config check in the container: both mirrors writable and public"
if ! "$py" deploy/checks/scrape.py "http://127.0.0.1:$port/metrics" "${healthy_samples[@]}"; then
  podman logs --tail 30 mirror-monitor >&2
  die "the monitor in the container did not report both mirrors healthy"
fi
ok "monitor in the container, scraped from the host at 127.0.0.1:$port"
podman healthcheck run mirror-monitor >"$work/health.log" 2>&1 || {
  cat "$work/health.log" >&2
  die "the image's HEALTHCHECK failed in the monitor container"
}
ok "podman healthcheck run mirror-monitor: the image's HEALTHCHECK passes"
podman rm -f -t 0 mirror-monitor >"$work/rm.log" 2>&1 || {
  cat "$work/rm.log" >&2
  die "could not remove the monitor container"
}

if wait "$systemd_pid"; then systemd_status=0; else systemd_status=$?; fi
cat "$work/systemd.out"
[ "$systemd_status" = 0 ] || die "the systemd checks failed (above)"

section "podman checks passed in $(elapsed) (base $base_s s, image build $build_s s)"
