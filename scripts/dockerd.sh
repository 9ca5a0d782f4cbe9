#!/usr/bin/env bash
# Start/stop a private, rootful Docker engine (no bridge, no iptables) for debugtrace's sandbox.
#
#   scripts/dockerd.sh start   # install docker.io if needed, start dockerd, wait until ready
#   scripts/dockerd.sh stop    # remove its containers, stop dockerd, wait for it to exit
#   scripts/dockerd.sh env     # print the DOCKER_HOST export line
#
#   eval "$(scripts/dockerd.sh start | tail -n1)"   # -> export DOCKER_HOST=unix://...
#
# State lives in ${DEBUGTRACE_DOCKER_STATE:-/tmp/dt-docker} (socket, pidfile, log, data-root,
# exec-root). The data root is kept on stop so built images stay cached between runs.
set -euo pipefail

STATE="${DEBUGTRACE_DOCKER_STATE:-/tmp/dt-docker}"
SOCK="$STATE/docker.sock"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"
HOST="unix://$SOCK"
START_TIMEOUT="${DEBUGTRACE_DOCKER_START_TIMEOUT:-30}"
STOP_TIMEOUT="${DEBUGTRACE_DOCKER_STOP_TIMEOUT:-30}"

if [[ -x /usr/local/bin/docker ]]; then
    DOCKER=/usr/local/bin/docker
else
    DOCKER="$(command -v docker || true)"
fi

log() { printf 'dockerd.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

dk() { DOCKER_HOST="$HOST" "$DOCKER" "$@"; }

answering() { [[ -S "$SOCK" ]] && dk info >/dev/null 2>&1; }

# running and not a zombie waiting to be reaped
alive() { kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)" != Z ]]; }

daemon_pid() {
    local pid
    [[ -f "$PIDFILE" ]] || return 1
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    # make sure the pid was not reused by something other than dockerd
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == dockerd ]] || return 1
    echo "$pid"
}

# a dockerd that dies or is SIGKILLed can leave mounts (its data-root bind mount, overlay2 layers,
# container shm) under the state dir; unmount them so the dir can be removed and reused.
unmount_leftovers() {
    local m
    while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: could not unmount $m"
    done < <(awk -v d="$STATE/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
}

print_env() { echo "export DOCKER_HOST=$HOST"; }

ensure_installed() {
    if ! command -v dockerd >/dev/null 2>&1; then
        [[ "$(id -u)" == 0 ]] || die "dockerd is missing and we are not root (apt-get install docker.io)"
        log "installing docker.io from Debian (about 30 s)..."
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq docker.io >/dev/null
        command -v dockerd >/dev/null 2>&1 || die "docker.io installed but dockerd not on PATH"
    fi
    [[ -n "$DOCKER" ]] || DOCKER="$(command -v docker || true)"
    [[ -n "$DOCKER" ]] || die "no docker CLI found"
}

cmd_start() {
    ensure_installed
    mkdir -p "$STATE"
    if answering; then
        log "dockerd already answering on $SOCK"
        print_env
        return 0
    fi
    local pid
    if pid="$(daemon_pid)"; then
        # a dockerd owns this state dir but is not answering (yet): wait for it rather than start another
        log "dockerd (pid $pid) exists but is not answering yet; waiting"
    else
        unmount_leftovers # from a dockerd that was killed without cleaning up
        log "starting dockerd (state $STATE, log $LOG)"
        # setsid: own session, so the caller's Ctrl-C / process-group kill does not take it down;
        # all fds redirected so `$(dockerd.sh start)` does not wait for it.
        setsid dockerd \
            --data-root "$STATE/data" \
            --exec-root "$STATE/exec" \
            -H "$HOST" \
            --pidfile "$PIDFILE" \
            --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
            </dev/null >>"$LOG" 2>&1 &
        pid=$!
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    until answering; do
        if ! alive "$pid"; then
            log "dockerd exited during startup; last log lines:"
            tail -n 30 "$LOG" >&2 || true
            unmount_leftovers
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "dockerd did not become ready within ${START_TIMEOUT}s; last log lines:"
            tail -n 30 "$LOG" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    log "dockerd ready (pid $(cat "$PIDFILE" 2>/dev/null || echo '?'))"
    print_env
}

cmd_stop() {
    local pid
    if answering; then
        local ids
        ids="$(dk ps -aq)"
        if [[ -n "$ids" ]]; then
            log "removing $(wc -w <<<"$ids") container(s)"
            # shellcheck disable=SC2086  # word-splitting the id list is intended
            dk rm -f $ids >/dev/null || log "warning: could not remove some containers"
        fi
    fi
    if ! pid="$(daemon_pid)"; then
        log "no dockerd running for $STATE"
        unmount_leftovers
        return 0
    fi
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while alive "$pid"; do
        if ((SECONDS >= deadline)); then
            log "dockerd did not exit within ${STOP_TIMEOUT}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.2
    done
    # a SIGKILLed dockerd leaves its managed containerd behind: stop it by its pidfile too
    local cpidfile="$STATE/exec/containerd/containerd.pid"
    if [[ -f "$cpidfile" ]]; then
        local cpid
        cpid="$(cat "$cpidfile" 2>/dev/null || true)"
        if [[ "$cpid" =~ ^[0-9]+$ ]] && alive "$cpid" &&
            [[ "$(cat "/proc/$cpid/comm" 2>/dev/null || true)" == containerd ]]; then
            log "stopping leftover containerd (pid $cpid)"
            kill -TERM "$cpid" 2>/dev/null || true
            for _ in $(seq 50); do alive "$cpid" || break; sleep 0.2; done
        fi
    fi
    unmount_leftovers
    # dockerd was re-parented to init; give init a moment to reap it so no <defunct> entry is left
    for _ in $(seq 25); do [[ -e "/proc/$pid" ]] || break; sleep 0.2; done
    log "dockerd stopped"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) print_env ;;
    *)
        echo "usage: $0 start|stop|env" >&2
        exit 2
        ;;
esac
