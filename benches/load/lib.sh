# Helpers shared by memory.sh and hitratio.sh (sourced, not run). run.sh keeps its own:
# it also pins, logs and checks each server's sockets.

# Kills every pid in the array `pids` on exit.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# A port nothing listens on now (the kernel's pick).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_ready PORT [redis|memcache]: retries a protocol-level ping for up to 10 s.
wait_ready() {
    for _ in $(seq 1 200); do
        if [ "${2:-redis}" = memcache ]; then
            python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$1),0.2); s.sendall(b'version\r\n'); sys.exit(0 if s.recv(64).startswith(b'VERSION') else 1)" 2>/dev/null && return 0
        else
            [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
        fi
        sleep 0.05
    done
    echo "$(basename "$0"): server on port $1 did not become ready" >&2
    exit 1
}
