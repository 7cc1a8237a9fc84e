#!/bin/sh
# Records the go/ files of the Go diagnostics collectors (pprof-goroutineleak, flight-recorder) and
# of the runtime facts (see README.md, "Go diagnostics"). Needs root (unshare), curl and Go 1.26.
# Usage: tests/unit/collectors/data/record_go_diagnostics.sh
set -eu
DATA=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$DATA/../../../.." && pwd)
WORK=$(mktemp -d /tmp/debugcap-record-diag.XXXXXX)
G="$DATA/go"
mkdir -p "$G"
# As testbed/recipes.py builds them: goapp with the experiment and its flight recorder, goapp-nodiag without.
(cd "$REPO/tests/fixtures/goapp" && GOTOOLCHAIN=local CGO_ENABLED=0 GOEXPERIMENT=goroutineleakprofile \
  go build -trimpath -o "$WORK/goapp" . \
  && GOTOOLCHAIN=local CGO_ENABLED=0 GOEXPERIMENT= go build -tags nodiag -trimpath -o "$WORK/goapp-nodiag" .)

# Both apps in a network namespace of their own; goapp with 2 provable leaks a second.
cat > "$WORK/netns.sh" <<NETNS
#!/bin/sh
ip link set lo up
env -i PATH=/usr/bin:/bin GOMAXPROCS=2 GOMEMLIMIT=512MiB GOAPP_LISTEN=127.0.0.1:6060 \
  GOAPP_LEAK_UNREACHABLE=2 GOAPP_LEAK_GOROUTINES=1 $WORK/goapp > $WORK/goapp.log 2>&1 &
APP=\$!
env -i PATH=/usr/bin:/bin GOMAXPROCS=2 GOAPP_LISTEN=127.0.0.1:6062 GOAPP_LEAK_UNREACHABLE=2 \
  $WORK/goapp-nodiag > $WORK/goapp-nodiag.log 2>&1 &
NODIAG=\$!
sleep 4
get() {  # get NAME PORT URL-PATH
  curl -sS -D "$G/\$1.headers" -o "$G/\$1" "http://127.0.0.1:\$2\$3"
}
get pprof-index.html 6060 /debug/pprof/
get goroutineleak.pb.gz 6060 /debug/pprof/goroutineleak
get goroutineleak-debug1.txt 6060 "/debug/pprof/goroutineleak?debug=1"
get goroutineleak-debug2.txt 6060 "/debug/pprof/goroutineleak?debug=2"
get flightrecorder.out 6060 /debug/flightrecorder
get metrics-runtime.txt 6060 /metrics
get pprof-index-nodiag.html 6062 /debug/pprof/
get goroutineleak-nodiag.txt 6062 /debug/pprof/goroutineleak
get flightrecorder-nodiag.txt 6062 /debug/flightrecorder
kill \$APP \$NODIAG
wait
NETNS
chmod +x "$WORK/netns.sh"
unshare -n "$WORK/netns.sh"
for f in "$G"/pprof-index*.headers "$G"/goroutineleak*.headers "$G"/flightrecorder*.headers "$G"/metrics-runtime.txt.headers; do
  sed -i -e 's/\r$//' -e '/^Date: /d' "$f"
done
rm -rf "$WORK"
