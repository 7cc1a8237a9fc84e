#!/bin/sh
# Baseline for benchmarks/bench_capture.py: the evidence of debugcap's debug-full template,
# collected the way the seed article does it, one command after the other:
# a `kubectl exec` per command, `kubectl port-forward` in the background + `curl` per pprof
# endpoint, `kubectl logs/get`, then `sha256sum` of the files, `tar czf` and `sha256sum` of the
# archive. The commands are the ones debugcap's collectors run (debugcap/collectors/*.py).
#
# Usage: baseline_capture.sh NAMESPACE POD OUTDIR [CPU_SECONDS] [TRACE_SECONDS] [PPROF_PORT]
#   ONLY_EXEC="cat /tmp/big.txt" baseline_capture.sh ...   # only that one exec, then tar + sha256sum
# Needs kubectl and curl on PATH and KUBECONFIG set. Prints the bundle path.
set -u

NS=$1
POD=$2
OUT=$3
CPU=${4:-1}
TRACE=${5:-1}
PORT=${6:-6060}
ONLY_EXEC=${ONLY_EXEC:-}

STEM="${NS}_${POD}_$(date -u +%Y%m%dT%H%M%SZ)"
D="$OUT/$STEM"
mkdir -p "$D/k8s" "$D/logs" "$D/proc" "$D/net" "$D/fs" "$D/env" "$D/pprof" "$D/trace" "$D/metrics" "$D/errors"

# x FILE COMMAND...: one `kubectl exec` whose stdout becomes FILE; fails like the command.
x() {
    out=$1
    shift
    kubectl -n "$NS" exec "$POD" -- "$@" >"$D/$out" 2>>"$D/errors/exec.txt"
}

if [ -n "$ONLY_EXEC" ]; then
    # shellcheck disable=SC2086 # word splitting of the command is intended
    x proc/exec-output.txt $ONLY_EXEC
else
    # Kubernetes state and logs.
    kubectl -n "$NS" get pod "$POD" -o yaml >"$D/k8s/pod.yaml"
    kubectl -n "$NS" get events --field-selector "involvedObject.name=$POD" -o yaml >"$D/k8s/events.yaml"
    NODE=$(sed -n 's/^  nodeName: //p' "$D/k8s/pod.yaml")
    kubectl get node "$NODE" -o yaml >"$D/k8s/node-conditions.yaml"
    kubectl -n "$NS" logs "$POD" --tail=1000 >"$D/logs/app.log"
    kubectl -n "$NS" logs "$POD" --tail=1000 --previous >"$D/logs/app.previous.log" 2>/dev/null \
        || rm -f "$D/logs/app.previous.log"

    # One kubectl exec per command, as the collectors run them.
    x proc/ps.txt ps aux || x proc/ps.txt ps -ef
    x proc/status.txt cat /proc/1/status
    x proc/limits.txt cat /proc/1/limits
    x proc/fd-count.txt sh -c 'ls /proc/1/fd | wc -l'
    x proc/fd.txt ls -l /proc/1/fd
    if x proc/lsof-i.txt lsof -n -P -i; then
        x proc/lsof-p1.txt lsof -n -P -p 1
    else
        rm -f "$D/proc/lsof-i.txt"
    fi
    x net/sockets.txt ss -tunap || x net/sockets.txt netstat -tunap || x net/sockets.txt netstat -tun
    x net/proc-net-tcp.txt cat /proc/net/tcp
    x net/proc-net-tcp6.txt cat /proc/net/tcp6
    x net/sockstat.txt cat /proc/net/sockstat
    x net/resolv.conf cat /etc/resolv.conf
    x fs/df.txt df -h
    x fs/df-inodes.txt df -i
    x fs/du-top20.txt sh -c 'cd /proc/1/cwd 2>/dev/null || cd /; du -xsk * .[!.]* 2>/dev/null | sort -rn | head -n 20'
    x fs/deleted-open.txt sh -c 'for f in /proc/[0-9]*/fd/*; do l=$(readlink "$f" 2>/dev/null) || continue; case "$l" in *"(deleted)") echo "$f -> $l";; esac; done'
    x env/environment.txt sh -c "tr '\\0' '\\n' < /proc/1/environ"

    # Go runtime: port-forward in the background, curl each endpoint.
    kubectl -n "$NS" port-forward "pod/$POD" ":$PORT" >"$D/errors/port-forward.txt" 2>&1 &
    PF=$!
    LOCAL=""
    i=0
    while [ -z "$LOCAL" ] && [ $i -lt 300 ]; do
        LOCAL=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$D/errors/port-forward.txt")
        [ -n "$LOCAL" ] || sleep 0.05
        i=$((i + 1))
    done
    B="http://127.0.0.1:$LOCAL"
    c() { curl -sS --fail -o "$D/$1" "$B$2" 2>>"$D/errors/curl.txt"; }
    c pprof/cpu.pb.gz "/debug/pprof/profile?seconds=$CPU"
    c pprof/goroutine.pb.gz /debug/pprof/goroutine
    c pprof/goroutine-debug1.txt "/debug/pprof/goroutine?debug=1"
    c pprof/goroutine-debug2.txt "/debug/pprof/goroutine?debug=2"
    c trace/trace.out "/debug/pprof/trace?seconds=$TRACE"
    c pprof/heap.pb.gz /debug/pprof/heap
    c pprof/allocs.pb.gz /debug/pprof/allocs
    c pprof/block.pb.gz /debug/pprof/block
    c pprof/mutex.pb.gz /debug/pprof/mutex
    c pprof/threadcreate.pb.gz /debug/pprof/threadcreate
    c metrics/expvar.json /debug/vars
    c metrics/prometheus.txt /metrics
    kill "$PF" 2>/dev/null
    wait "$PF" 2>/dev/null
fi

# Checksums of the members, the archive, the archive's checksum.
find "$D/errors" -type f -size 0 -delete
(cd "$D" && find . -type f ! -name SHA256SUMS | sort | xargs sha256sum >SHA256SUMS)
(cd "$OUT" && tar czf "$STEM.tar.gz" "$STEM" && sha256sum "$STEM.tar.gz" >"$STEM.tar.gz.sha256")
echo "$OUT/$STEM.tar.gz"
