#!/usr/bin/env bash
# Build debugtrace's sandbox images into the Docker engine at $DOCKER_HOST (no registry needed):
#
#   debugtrace-base:bookworm  Debian bookworm minbase + python3, venv, pip, git, ca-certificates, patch,
#                             made with debootstrap from the Debian mirror apt already uses, then
#                             `docker import`ed. The rootfs tarball is cached in the state dir.
#   debugtrace-python:3.11    FROM the base: venv /opt/venv with pytest (on PATH), user sandbox (uid 1000).
#
# Each image carries a label debugtrace.key = hash of what went into it; an image that is present with
# the right key is reused, so a second run takes about a second.
#
#   eval "$(scripts/dockerd.sh start | tail -n1)" && scripts/build-base-image.sh
#
# Environment:
#   DOCKER_HOST                  engine to build into (default: the one scripts/dockerd.sh env prints)
#   DEBUGTRACE_DOCKER_STATE      state dir shared with dockerd.sh (default /tmp/dt-docker); cache in ./cache
#   DEBUGTRACE_DEBIAN_MIRROR     Debian mirror URL (default: from apt's sources, else deb.debian.org)
#   DEBUGTRACE_SANDBOX_PACKAGES  pip requirements for the python image (default "pytest")
#   DEBUGTRACE_FORCE_REBUILD=1   ignore present images and the cached rootfs
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${DEBUGTRACE_DOCKER_STATE:-/tmp/dt-docker}"
CACHE="$STATE/cache"
SUITE=bookworm
INCLUDE=python3,python3-venv,python3-pip,git,ca-certificates,patch
BASE_IMAGE=debugtrace-base:bookworm
PY_IMAGE=debugtrace-python:3.11
PY_VERSION=3.11 # Debian bookworm's python3
PACKAGES="${DEBUGTRACE_SANDBOX_PACKAGES:-pytest}"
FORCE="${DEBUGTRACE_FORCE_REBUILD:-0}"
SYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [[ -x /usr/local/bin/docker ]]; then
    DOCKER=/usr/local/bin/docker
else
    DOCKER="$(command -v docker || true)"
fi
[[ -n "$DOCKER" ]] || { echo "build-base-image.sh: error: no docker CLI found" >&2; exit 1; }
if [[ -z "${DOCKER_HOST:-}" ]]; then
    eval "$("$SCRIPT_DIR/dockerd.sh" env)"
fi
export DOCKER_HOST

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
T_START=$(now_ms)
log() {
    local ms=$(($(now_ms) - T_START))
    printf '[build-base-image +%3d.%ds] %s\n' "$((ms / 1000))" "$((ms % 1000 / 100))" "$*"
}
die() { printf 'build-base-image.sh: error: %s\n' "$*" >&2; exit 1; }
sha() { sha256sum | cut -c1-16; }

image_key() { # prints the image's debugtrace.key label, or nothing if the image is missing
    "$DOCKER" image inspect -f '{{index .Config.Labels "debugtrace.key"}}' "$1" 2>/dev/null || true
}

"$DOCKER" info >/dev/null 2>&1 ||
    die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST (start one: eval \"\$(scripts/dockerd.sh start | tail -n1)\")"

mkdir -p "$CACHE"
# one build at a time per state dir (CI and a test fixture may both call us)
exec 9>"$STATE/build.lock"
flock 9

# ---------------------------------------------------------------------------------------------------
# keys: what goes into each image
BASE_KEY="$(printf 'v1|%s|minbase|%s|%s' "$SUITE" "$INCLUDE" "$(dpkg --print-architecture 2>/dev/null || uname -m)" | sha)"

WORK="$(mktemp -d "$CACHE/work.XXXXXX")"
ROOTFS=""
cleanup() {
    # never rm -rf a rootfs that still has /proc or /sys mounted inside it
    if [[ -n "$ROOTFS" && -d "$ROOTFS" ]]; then
        local m
        while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
            awk -v r="$ROOTFS" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r)
        if awk -v r="$ROOTFS" '$2 == r || index($2, r "/") == 1 { f = 1 } END { exit !f }' /proc/mounts; then
            echo "build-base-image.sh: warning: mounts left under $ROOTFS, not removing it" >&2
            return
        fi
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/Dockerfile" <<EOF
FROM $BASE_IMAGE
COPY requirements.txt /tmp/build/requirements.txt
COPY wheels/ /tmp/build/wheels/
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \\
        --find-links /tmp/build/wheels -r /tmp/build/requirements.txt \\
 && rm -rf /tmp/build \\
 && useradd --uid 1000 --user-group --create-home --home-dir /home/sandbox --shell /bin/bash sandbox
ENV PATH=/opt/venv/bin:$SYS_PATH \\
    VIRTUAL_ENV=/opt/venv \\
    LANG=C.UTF-8 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /home/sandbox
CMD ["python3"]
EOF
printf '%s\n' "$PACKAGES" | tr ' ' '\n' | sed '/^$/d' >"$WORK/requirements.txt"

# ---------------------------------------------------------------------------------------------------
debian_mirror() {
    if [[ -n "${DEBUGTRACE_DEBIAN_MIRROR:-}" ]]; then
        echo "$DEBUGTRACE_DEBIAN_MIRROR"
        return
    fi
    local m="" f
    # deb822 sources: first URI of an enabled "deb" stanza whose Suites has plain "$SUITE"
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        m="$(awk -v suite="$SUITE" '
            function flush() {
                if (uri != "" && types ~ /(^| )deb( |$)/ && suites ~ ("(^| )" suite "( |$)") && enabled != "no" && !found) {
                    print uri; found = 1
                }
                uri = ""; types = ""; suites = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:"   { $1 = ""; types = $0 " " }
            tolower($1) == "uris:"    { uri = $2 }
            tolower($1) == "suites:"  { $1 = ""; suites = $0 " " }
            tolower($1) == "enabled:" { enabled = tolower($2) }
            END { flush() }' "$f")"
        [[ -n "$m" ]] && break
    done
    # one-line sources: "deb [opts] URI SUITE COMPONENTS..."
    if [[ -z "$m" ]]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -f "$f" ]] || continue
            m="$(awk -v suite="$SUITE" '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == suite) { print $i; exit }
                }' "$f")"
            [[ -n "$m" ]] && break
        done
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

ensure_debootstrap() {
    command -v debootstrap >/dev/null 2>&1 && return
    [[ "$(id -u)" == 0 ]] || die "debootstrap is missing and we are not root"
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq debootstrap >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq debootstrap >/dev/null
    fi
}

build_base() {
    local tarball="$CACHE/rootfs-$SUITE-$BASE_KEY.tar"
    if [[ "$FORCE" == 1 || ! -s "$tarball" ]]; then
        ensure_debootstrap
        [[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
        local mirror
        mirror="$(debian_mirror)"
        ROOTFS="$WORK/rootfs"
        log "debootstrap --variant=minbase $SUITE from $mirror (about 90 s; log: $CACHE/debootstrap.log)"
        local t0=$SECONDS
        if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTFS" "$mirror" \
            >"$CACHE/debootstrap.log" 2>&1; then
            tail -n 30 "$CACHE/debootstrap.log" >&2 || true
            [[ -f "$ROOTFS/debootstrap/debootstrap.log" ]] && tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2
            die "debootstrap failed"
        fi
        log "debootstrap done in $((SECONDS - t0)) s; trimming and packing rootfs"
        rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
            "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/debootstrap
        : >"$ROOTFS/etc/resolv.conf"
        echo sandbox >"$ROOTFS/etc/hostname"
        rm -f "$CACHE"/rootfs-"$SUITE"-*.tar # older keys
        tar -C "$ROOTFS" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$ROOTFS"
        ROOTFS=""
    else
        log "using cached rootfs $tarball"
    fi
    log "docker import -> $BASE_IMAGE ($(du -h "$tarball" | cut -f1) tarball)"
    local t0=$SECONDS
    "$DOCKER" import \
        --change "ENV PATH=$SYS_PATH" \
        --change "ENV LANG=C.UTF-8" \
        --change 'CMD ["/bin/bash"]' \
        --change "LABEL debugtrace.key=$BASE_KEY" \
        - "$BASE_IMAGE" <"$tarball" >/dev/null
    log "imported in $((SECONDS - t0)) s"
}

build_python() {
    local wheels="$WORK/wheels" t0=$SECONDS
    mkdir -p "$wheels"
    local pip=(python3 -m pip)
    if ! "${pip[@]}" --version >/dev/null 2>&1; then
        [[ "$(id -u)" == 0 ]] || die "no pip on the host (python3 -m pip)"
        log "installing python3-pip on the host (to download wheels)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
    log "pip download --only-binary=:all: --python-version $PY_VERSION: $(tr '\n' ' ' <"$WORK/requirements.txt")"
    if ! "${pip[@]}" download --disable-pip-version-check --only-binary=:all: \
        --python-version "$PY_VERSION" --implementation cp -d "$wheels" -r "$WORK/requirements.txt" \
        >"$CACHE/pip-download.log" 2>&1; then
        tail -n 30 "$CACHE/pip-download.log" >&2
        die "pip download failed"
    fi
    log "docker build -> $PY_IMAGE ($(find "$wheels" -name '*.whl' | wc -l) wheels)"
    # legacy builder: the CLI here has no buildx plugin, and the context is tiny
    if ! DOCKER_BUILDKIT=0 "$DOCKER" build --quiet --label "debugtrace.key=$PY_KEY" -t "$PY_IMAGE" "$WORK" \
        >"$CACHE/python-build.log" 2>&1; then
        tail -n 30 "$CACHE/python-build.log" >&2
        die "docker build of $PY_IMAGE failed"
    fi
    log "built $PY_IMAGE in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------------------------------
if [[ "$FORCE" != 1 && "$(image_key "$BASE_IMAGE")" == "$BASE_KEY" ]]; then
    log "$BASE_IMAGE is present (key $BASE_KEY)"
else
    build_base
fi

BASE_ID="$("$DOCKER" image inspect -f '{{.Id}}' "$BASE_IMAGE")"
PY_KEY="$(cat "$WORK/Dockerfile" "$WORK/requirements.txt" <(echo "$BASE_ID") | sha)"
if [[ "$FORCE" != 1 && "$(image_key "$PY_IMAGE")" == "$PY_KEY" ]]; then
    log "$PY_IMAGE is present (key $PY_KEY)"
else
    build_python
fi

log "done: $("$DOCKER" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^debugtrace-' | tr '\n' ' ')"
