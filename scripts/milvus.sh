#!/usr/bin/env bash
# A real Milvus standalone server for tests and benchmarks: PyPI's `milvus==2.3.5` wheel ships
# the server binary (built-in etcd, message queue and local storage) behind a small Python
# launcher. Nothing here mocks Milvus.
#
#   scripts/milvus.sh install   venv with milvus==2.3.5 (once; ~58 MB from PyPI)
#   scripts/milvus.sh start     fresh data dir, loopback only, wait for /healthz, print the URI
#   scripts/milvus.sh restart   start again on the same data dir (after `kill`: a crash)
#   scripts/milvus.sh kill      SIGKILL the server's process group (a crash, for fault tests)
#   scripts/milvus.sh pause     SIGSTOP it: a server that hangs, accepting and never answering
#   scripts/milvus.sh resume    SIGCONT it
#   scripts/milvus.sh stop      SIGINT by PID, then SIGKILL if it lingers
#   scripts/milvus.sh status    running or not, with the URI
#   scripts/milvus.sh uri       the gRPC URI
#
# Environment: MILVUS_HOME (state: data, pid, log; default .milvus), MILVUS_PORT (gRPC proxy,
# default 19530), MILVUS_VENV (default .venv-milvus). Other internal ports are chosen free by
# the launcher; every component is bound to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=2.3.5
VENV=${MILVUS_VENV:-.venv-milvus}
HOME_DIR=${MILVUS_HOME:-.milvus}
PORT=${MILVUS_PORT:-19530}
PIDFILE=$HOME_DIR/pid
LOG=$HOME_DIR/server.log
DATA=$HOME_DIR/data
START_TIMEOUT=${MILVUS_START_TIMEOUT:-120}

install() {
    if [[ -x $VENV/bin/milvus-server ]] &&
        "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('milvus') != '$VERSION')" 2>/dev/null; then
        return
    fi
    echo "milvus.sh: installing milvus==$VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "milvus==$VERSION"
}

pid() { [[ -f $PIDFILE ]] && cat "$PIDFILE"; }

running() {
    local p
    p=$(pid) || return 1
    [[ -n $p ]] && kill -0 "$p" 2>/dev/null
}

# The launcher picks the health (metrics) port itself (9091 or the next free one) and hands it
# to the server binary in METRICS_PORT; read it from the child's environment.
health_port() {
    local p child
    p=$(pid) || return 1
    for child in $(pgrep -P "$p" 2>/dev/null); do
        tr '\0' '\n' <"/proc/$child/environ" 2>/dev/null | sed -n 's/^METRICS_PORT=//p' && return
    done
    return 1
}

launch() {
    install
    if running; then
        echo "milvus.sh: already running (pid $(pid)) at $(uri)" >&2
        return
    fi
    mkdir -p "$HOME_DIR"
    local extra=()
    for c in rootCoord proxy queryCoord queryNode indexCoord indexNode dataCoord dataNode; do
        extra+=(--extra-config "$c.ip=127.0.0.1")
    done
    # After a crash the new coordinators wait for the dead ones' etcd sessions to expire; a
    # 10 s lease (Milvus' default is 30 s) brings a restart from ~55 s down to ~20 s.
    extra+=(--extra-config "common.session.ttl=10")
    # The launcher takes --proxy-port as a first try and moves to the next free port when it
    # cannot bind it, which it cannot for a minute after a crash (its clients' connections sit
    # in TIME_WAIT). Written into the config this way, the server binds it itself (with
    # SO_REUSEADDR), and the URI stays the same across restarts.
    extra+=(--extra-config "proxy.port=$PORT")
    # Its own session (setsid): the launcher and the server binary are one process group, so a
    # crash can be simulated by killing the group, and nothing is left behind.
    setsid "$VENV/bin/milvus-server" --data "$(realpath "$DATA")" --proxy-port "$PORT" "${extra[@]}" \
        >"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    local waited=0 hp="" t0=$SECONDS
    while ((waited < START_TIMEOUT * 10)); do
        if ! running; then
            echo "milvus.sh: the server exited while starting; last lines of $LOG:" >&2
            tail -n 20 "$LOG" >&2
            rm -f "$PIDFILE"
            return 1
        fi
        hp=${hp:-$(health_port || true)}
        # /healthz can say OK before the proxy listens (after a crash, by ~10 s): wait for both.
        if [[ -n $hp ]] && curl -fsS "http://127.0.0.1:$hp/healthz" 2>/dev/null | grep -q OK &&
            proxy_listening; then
            echo "$hp" >"$HOME_DIR/health-port"
            echo "milvus.sh: Milvus $VERSION up at $(uri) (pid $(pid), health :$hp, $((SECONDS - t0)) s)" >&2
            uri
            return
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "milvus.sh: not healthy after ${START_TIMEOUT}s; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    stop
    return 1
}

uri() { echo "http://127.0.0.1:$PORT"; }

proxy_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

stop() {
    local p
    p=$(pid) || return 0
    if running; then
        # The launcher stops the server binary on SIGINT (about a second).
        kill -INT "$p" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$p" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
}

crash() {
    local p
    p=$(pid) || { echo "milvus.sh: not running" >&2; return 1; }
    kill -KILL -- "-$p" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$PIDFILE"
}

# SIGSTOP / SIGCONT to the whole process group: the sockets stay open, nothing answers.
signal() {
    local p
    p=$(pid) || { echo "milvus.sh: not running" >&2; return 1; }
    kill "-$1" -- "-$p"
}

case "${1:-}" in
    install) install ;;
    start)
        stop
        # A fresh data dir every time: dropped collections are not reclaimed at once.
        rm -rf "$DATA"
        launch
        ;;
    restart) launch ;;
    kill) crash ;;
    pause) signal STOP ;;
    resume) signal CONT ;;
    stop) stop ;;
    status)
        if running; then echo "running (pid $(pid)) at $(uri)"; else echo "stopped"; exit 1; fi
        ;;
    uri) uri ;;
    *)
        sed -n '2,19p' "$0" >&2
        exit 2
        ;;
esac
