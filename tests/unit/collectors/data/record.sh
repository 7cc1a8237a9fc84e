#!/bin/sh
# Re-records the files in this directory (see README.md). Needs root (unshare/nsenter), busybox,
# procps, lsof, iproute2 (ss), curl and Go. Usage: tests/unit/collectors/data/record.sh
set -eu
DATA=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$DATA/../../../.." && pwd)
WORK=$(mktemp -d /tmp/debugcap-record.XXXXXX)
mkdir -p "$WORK/leak" "$WORK/empty" "$DATA/exec" "$DATA/go"
(cd "$REPO/tests/fixtures/goapp" && CGO_ENABLED=0 go build -trimpath -o "$WORK/goapp" .)

# A pod-like container: the fixture app is PID 1 of new PID, network and mount namespaces,
# with a fixed environment (two planted secrets) and a few pathologies switched on.
cat > "$WORK/pid1.sh" <<PID1
#!/bin/sh
ip link set lo up
cd /usr/local/go
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  HOSTNAME=api-7d9f8c6b5-x2x4q KUBERNETES_SERVICE_HOST=10.96.0.1 KUBERNETES_SERVICE_PORT=443 \
  GOMAXPROCS=2 APP_MODE=demo APP_DB_PASSWORD=hunter2 GOAPP_SECRET_FILE=/etc/app/secret TMPDIR=$WORK/leak \
  GOAPP_LISTEN=127.0.0.1:6060 GOAPP_IDLE_CONNS=2 GOAPP_FD_LEAK=1 GOAPP_LEAK_GOROUTINES=1 \
  $WORK/goapp
PID1
chmod +x "$WORK/pid1.sh"
setsid unshare -p -n -m -f --mount-proc "$WORK/pid1.sh" > "$WORK/goapp.log" 2>&1 &
sleep 4
PID=$(pgrep -f "^$WORK/goapp\$")
X="nsenter -t $PID -p -n -m"
rm -f "$WORK"/leak/*   # the leaked files stay open: "(deleted)" in /proc/1/fd

# ---- exec collectors: stdout (.txt) / stderr (.err) of the commands they run ----
E="$DATA/exec"
$X busybox ps > "$E/busybox-ps.txt"
$X ps aux > "$E/ps-aux.txt"
$X cat /proc/1/status > "$E/proc-1-status.txt"
$X cat /proc/1/limits > "$E/proc-1-limits.txt"
$X busybox sh -c 'ls /proc/1/fd | wc -l' > "$E/fd-count.txt"
$X busybox ls -l /proc/1/fd > "$E/ls-l-proc-1-fd.txt"
$X lsof -n -P -i > "$E/lsof-i.txt"
$X lsof -n -P -p 1 > "$E/lsof-p1.txt"
$X ss -tunap > "$E/ss-tunap.txt"
$X busybox netstat -tunap > /dev/null 2> "$E/busybox-netstat-tunap.err" || echo "busybox netstat -tunap: exit $?"
$X busybox netstat -tuna > "$E/busybox-netstat-tuna.txt"
$X cat /proc/net/tcp > "$E/proc-net-tcp.txt"
$X cat /proc/net/tcp6 > "$E/proc-net-tcp6.txt"
$X cat /proc/net/sockstat > "$E/proc-net-sockstat.txt"
$X cat /etc/resolv.conf > "$E/resolv.conf"
# df of the root and a few mounts only: the full list names this machine's host mounts.
$X busybox df -h / /dev /dev/shm /sys/fs/cgroup > "$E/busybox-df-h.txt"
$X busybox df -i / /dev /dev/shm /sys/fs/cgroup > "$E/busybox-df-i.txt"
$X busybox sh -c "$(cd "$REPO" && .venv/bin/python -c 'from debugcap.collectors import disk; print(disk.du_script(5))')" \
  > "$E/du-top5.txt"
$X busybox sh -c "$(cd "$REPO" && .venv/bin/python -c 'from debugcap.collectors import deleted_files; print(deleted_files.SCRIPT)')" \
  > "$E/deleted-open.txt"
$X busybox sh -c "tr '\\0' '\\n' < /proc/1/environ" > "$E/proc-1-environ.txt"
$X cat /proc/loadavg > "$E/proc-loadavg.txt"
# A slim image without the tool: the shell's own answer, exit 127.
$X env PATH="$WORK/empty" /bin/busybox sh -c 'lsof -n -P -i' 2> "$E/sh-lsof-not-found.err" || echo "lsof missing: exit $?"
$X env PATH="$WORK/empty" /bin/busybox sh -c 'ss -tunap' 2> "$E/sh-ss-not-found.err" || echo "ss missing: exit $?"
$X cat /proc/1/nosuch 2> "$E/cat-nosuch.err" || echo "cat nosuch: exit $?"

# ---- Go runtime endpoints: body, and headers (status line first) as curl -D writes them ----
G="$DATA/go"
get() {  # get NAME URL-PATH
  $X curl -sS -D "$G/$1.headers" -o "$G/$1" "http://127.0.0.1:6060$2"
}
get heap.pb.gz /debug/pprof/heap
get allocs.pb.gz /debug/pprof/allocs
get block.pb.gz /debug/pprof/block
get mutex.pb.gz /debug/pprof/mutex
get threadcreate.pb.gz /debug/pprof/threadcreate
get goroutine.pb.gz /debug/pprof/goroutine
get goroutine-debug1.txt "/debug/pprof/goroutine?debug=1"
get goroutine-debug2.txt "/debug/pprof/goroutine?debug=2"
get vars.json /debug/vars
get metrics.txt /metrics
get cpu.pb.gz "/debug/pprof/profile?seconds=1"
get trace.out "/debug/pprof/trace?seconds=1"
get no-such-page.txt /prometheus
get no-such-profile.txt /debug/pprof/nosuch
# Busy: Go allows one CPU profile and one trace at a time per process.
get cpu-long.pb.gz "/debug/pprof/profile?seconds=3" & LONG1=$!
get trace-long.out "/debug/pprof/trace?seconds=3" & LONG2=$!
sleep 1
get cpu-busy.txt "/debug/pprof/profile?seconds=1"
get trace-busy.txt "/debug/pprof/trace?seconds=1"
wait "$LONG1" "$LONG2" || true
rm -f "$G/cpu-long.pb.gz"* "$G/trace-long.out"*
for f in "$G"/*.headers; do sed -i -e 's/\r$//' -e '/^Date: /d' "$f"; done

kill "$PID"
sleep 1
# The container log as GET .../pods/NAME/log?timestamps=true returns it: the app's stdout, each
# line prefixed with its time in RFC 3339 (taken from the app's own UTC log time here).
mkdir -p "$DATA/kube"
sed -E 's#^([0-9]{4})/([0-9]{2})/([0-9]{2}) ([0-9:]{8})\.([0-9]{6}) #\1-\2-\3T\4.\5000Z &#' "$WORK/goapp.log" \
  > "$DATA/kube/goapp.log"
rm -rf "$WORK"
