#!/usr/bin/env bash
# The main job end to end on the local testbed: a Go pod with a goroutine leak
# and a growing heap, captured without a restart, verified, stored in S3 and read.
# Run through `make demo` (which brings the testbed up first).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(.venv/bin/python -m testbed env)"
export PATH="$PWD/.venv/bin:$PATH"
NS=debugcap-demo
OUT=out/demo
mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The cluster: one node, built from source on this machine"
kubectl get nodes -o wide

step "A Go service (Go 1.26, flight recorder on) with goroutine leaks, a growing cache, lock contention and a hot loop"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$NS" delete pod leaky --ignore-not-found --grace-period=0 >/dev/null
kubectl -n "$NS" apply -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: leaky
  labels: {app: leaky}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: debugcap.test/goapp:dev
    imagePullPolicy: Never
    env:
    - {name: GOAPP_LEAK_GOROUTINES, value: "40"}
    - {name: GOAPP_LEAK_UNREACHABLE, value: "5"}   # a leak the Go 1.26 runtime proves (goroutineleak)
    - {name: GOAPP_HEAP_GROWTH_KB, value: "2048"}
    - {name: GOAPP_CONTENTION, value: "1"}
    - {name: GOAPP_CPU_HOT, value: "1"}
    - {name: APP_DB_PASSWORD, value: "demo-secret-never-in-a-bundle"}
YAML
kubectl -n "$NS" wait --for=condition=Ready pod/leaky --timeout=90s
kubectl -n "$NS" get pods -o wide

step "Capture everything (debug-full) without restarting the pod, and store it in S3"
kubectl debugcap create pod/leaky -n "$NS" -t debug-full -p cpu_seconds=5 -p trace_seconds=2 \
  --local --upload --output-dir "$OUT" | tee "$OUT/full.txt"
FULL=$(awk '/^bundle:/ {print $2}' "$OUT/full.txt")

step "Leak hunt (go-leak): heap and goroutine snapshots 5 s apart"
kubectl debugcap create pod/leaky -n "$NS" -t go-leak -p snapshots=3 -p interval_seconds=5 \
  --local --upload --output-dir "$OUT" | tee "$OUT/leak.txt"
LEAK=$(awk '/^bundle:/ {print $2}' "$OUT/leak.txt")

step "A deadline bounds a capture and keeps what it collected (a 60 s CPU profile, cut at 5 s)"
kubectl debugcap create pod/leaky -n "$NS" -t go-profile -p cpu_seconds=60 --deadline 5 \
  --local --output-dir "$OUT" 2>&1 | grep -E "pprof-cpu|pprof-heap|phase:"

step "A flag that does not apply is refused before anything runs, naming it"
kubectl debugcap create pod/leaky -n "$NS" -t debug-full --upload 2>&1 || echo "(exit $?)"

step "A distroless pod (no shell, non-root, restricted Pod Security): process, file, socket and disk evidence through an ephemeral debug container"
DL_NS=$NS-restricted
kubectl create namespace "$DL_NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace "$DL_NS" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
kubectl -n "$DL_NS" delete pod slim --ignore-not-found --grace-period=0 >/dev/null
kubectl -n "$DL_NS" apply -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: slim}
spec:
  terminationGracePeriodSeconds: 0
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  volumes: [{name: tmp, emptyDir: {}}]
  containers:
  - name: app
    image: debugcap.test/goapp-nonroot:dev   # no shell; USER 65532 in the image only
    imagePullPolicy: Never
    env:
    - {name: GOAPP_FD_LEAK, value: "1"}
    - {name: APP_DB_PASSWORD, value: "demo-secret-never-in-a-bundle"}
    volumeMounts: [{name: tmp, mountPath: /tmp}]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
YAML
kubectl -n "$DL_NS" wait --for=condition=Ready pod/slim --timeout=90s
for i in 1 2; do
  kubectl debugcap create pod/slim -n "$DL_NS" -t debug-full -p cpu_seconds=1 -p trace_seconds=1 \
    --local --output-dir "$OUT" > "$OUT/slim-$i.txt" 2> "$OUT/slim-$i.err"
  grep -E "note:|phase:" "$OUT/slim-$i.err"
done
SLIM=$(awk '/^bundle:/ {print $2}' "$OUT/slim-2.txt")
echo "skipped collectors: $(grep -c '^  skipped' "$OUT/slim-1.err" || true)"
echo "manifest access: $(tar xzf "$SLIM" --wildcards -O '*/manifest.json' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')"
echo "ephemeral containers in the pod after two captures: $(kubectl -n "$DL_NS" get pod slim -o jsonpath='{.spec.ephemeralContainers[*].name}')"
tar xzf "$SLIM" --wildcards -O '*/proc/ps.txt'
tar xzf "$SLIM" --wildcards -O '*/proc/fd.txt' | grep -E "fdleak|socket" | sed -n '1,3p'
tar xzf "$SLIM" --wildcards -O '*/net/sockets.txt' | grep LISTEN
tar xzf "$SLIM" --wildcards -O '*/fs/df.txt' | sed -n '1,2p'
tar xzf "$SLIM" --wildcards -O '*/env/environment.txt' | grep APP_DB_PASSWORD

step "Verify both bundles (every file's SHA-256, and the bundle's own)"
kubectl debugcap verify "$FULL"
kubectl debugcap verify "$LEAK"
(cd "$(dirname "$FULL")" && sha256sum -c "$(basename "$FULL").sha256")

step "What the debug-full bundle holds, and how it was gathered"
tar tzf "$FULL" | sed 's|^[^/]*/||' | sort | column -c 120
tar xzf "$FULL" --wildcards -O '*/manifest.json' | python3 -c 'import json,sys; m=json.load(sys.stdin); print("access:", m["access"]); print("runtime:", m["runtime"])'

step "The secret planted in the pod's environment is nowhere in the bundle"
hits=$( (tar xzf "$FULL" -O; tar xzf "$SLIM" -O) | grep -c "demo-secret-never-in-a-bundle" || true)
echo "$hits occurrences"
[ "$hits" = 0 ] || { echo "SECRET LEAKED" >&2; exit 1; }

step "Company-specific secrets: an admin's RE2 pattern masks what no built-in detector knows (and keeps look-alikes)"
printf 'INFO order 42 paid with voucher ACME-VCH-7Q2W9E4R8T1Y5U3I by user 7\nINFO token_ttl=300 cache_key=orders:42\n' \
  > "$OUT/shop.log"
printf -- '- name: acme-voucher\n  regex: ACME-VCH-[0-9A-Z]{16}\n' > "$OUT/acme-patterns.yaml"
kubectl debugcap redact "$OUT/shop.log" --patterns "$OUT/acme-patterns.yaml" --out - --report "$OUT/shop-masked.json"
python3 -c 'import json,sys; print("masked:", json.load(open(sys.argv[1]))["totals"]["rules"])' "$OUT/shop-masked.json"

step "A hostile pod (its profiles are 1 MiB gzip bombs of 1 GiB): stored unchecked, never inflated, the capture stays small"
kubectl -n "$NS" delete pod hostile --ignore-not-found --grace-period=0 >/dev/null
kubectl -n "$NS" run hostile --image=debugcap.test/goapp:dev --image-pull-policy=Never --restart=Never \
  --env=GOAPP_HOSTILE=bomb --overrides='{"spec":{"terminationGracePeriodSeconds":0}}' >/dev/null
kubectl -n "$NS" wait --for=condition=Ready pod/hostile --timeout=90s >/dev/null
/usr/bin/time -f "peak RSS of the capture: %M KiB" kubectl debugcap create pod/hostile -n "$NS" -t go-heap \
  --local --output-dir "$OUT" 2>&1 | grep -E "pprof-heap|phase:|peak RSS" || true
kubectl -n "$NS" delete pod hostile --grace-period=0 >/dev/null

step "Reading the evidence: the leak hunt's findings"
kubectl debugcap report "$LEAK" --html "$OUT/leak-report.html" | sed -n '1,25p'

step "Findings name the application's own functions (not runtime or standard-library frames), rated by rates"
kubectl debugcap report "$FULL" --html "$OUT/full-report.html" --speedscope "$OUT/full.speedscope.json" \
  > "$OUT/full-report.txt"
sed -n '/^Findings/,/^$/p' "$OUT/full-report.txt"

step "The execution trace, read: its summary, and what go tool trace -pprof=sync shows"
kubectl debugcap trace "$FULL"
kubectl debugcap trace "$FULL" --pprof sync | sed -n '1,12p'

step "A damaged bundle is refused, naming the member; --force reads what is readable"
python3 - "$FULL" "$OUT/damaged.tar.gz" <<'PY'
import gzip, io, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
raw = bytearray(gzip.decompress(open(src, "rb").read()))
with tarfile.open(fileobj=io.BytesIO(bytes(raw))) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("pprof/heap.pb.gz"))
raw[member.offset_data + 40] ^= 0xFF  # one flipped byte inside the stored heap profile
open(dst, "wb").write(gzip.compress(bytes(raw)))
PY
kubectl debugcap report "$OUT/damaged.tar.gz" 2>&1 || echo "(exit $?)"
kubectl debugcap report "$OUT/damaged.tar.gz" --force 2>&1 | sed -n '/^Problems/,$p' | sed -n '1,3p'

step "A health sweep in git: a DebugSchedule over three pods, carried out by the operator"
kubectl apply -f crds/ >/dev/null
for name in web-1 web-2; do
  kubectl -n "$NS" delete pod "$name" --ignore-not-found --grace-period=0 >/dev/null
  kubectl -n "$NS" run "$name" --image=debugcap.test/goapp:dev --image-pull-policy=Never \
    --labels=sweep=demo --overrides='{"spec":{"terminationGracePeriodSeconds":0}}' >/dev/null
done
kubectl -n "$NS" label pod leaky sweep=demo --overwrite >/dev/null
kubectl -n "$NS" wait --for=condition=Ready pod/web-1 pod/web-2 --timeout=90s >/dev/null
DEBUGCAP_OPERATOR_NAMESPACES="$NS" DEBUGCAP_OPERATOR_METRICS_PORT=9464 \
  DEBUGCAP_OPERATOR_WORK_DIR="$OUT/operator" debugcap-operator > "$OUT/operator.log" 2>&1 &
OPERATOR=$!
trap 'kill $OPERATOR 2>/dev/null || true' EXIT
# A previous demo's schedule and captures: the operator, now running, deletes their bundles first.
kubectl -n "$NS" delete debugschedules,debugcaptures --all --timeout=120s >/dev/null
kubectl -n "$NS" apply -f - <<'YAML'
apiVersion: debugcap.io/v1alpha1
kind: DebugCaptureTemplate
metadata: {name: health-sweep}
spec:
  description: What the health rules read, light enough for a fleet
  parameters: {cpu_seconds: {type: int, default: 1, min: 1}}
  steps:
  - {collector: pprof-cpu, params: {seconds: "${cpu_seconds}"}, window: profile}
  - {collector: pprof-goroutine, params: {formats: [debug2]}, window: profile}
  - {collector: pprof-heap}
  - {collector: expvar}
---
apiVersion: debugcap.io/v1alpha1
kind: DebugSchedule
metadata: {name: nightly-health}
spec:
  schedule: "* * * * *"   # every minute for the demo; "0 3 * * *" for a nightly sweep
  captureTemplate:
    spec:
      target: {selector: {matchLabels: {sweep: demo}}}
      template: health-sweep
YAML
echo "waiting for the next minute's run..."
for _ in $(seq 1 50); do
  run=$(kubectl -n "$NS" get debugcaptures -l debugcap.io/schedule=nightly-health -o name 2>/dev/null | sed -n 1p)
  [ -n "$run" ] && break
  sleep 2
done
[ -n "$run" ] || { echo "the schedule made no capture; operator log:" >&2; tail -20 "$OUT/operator.log" >&2; exit 1; }
kubectl -n "$NS" patch debugschedule nightly-health --type=merge -p '{"spec":{"suspend":true}}' >/dev/null
kubectl -n "$NS" wait --for=condition=Ready "$run" --timeout=180s
kubectl -n "$NS" get debugcaptures
kubectl -n "$NS" get "$run" -o jsonpath='{range .status.pods[*]}{.name}{"\t"}{.conditions[?(@.type=="Healthy")].status}{"\t"}{.findings[0].message}{"\n"}{end}'
kubectl -n "$NS" wait --for=condition=Healthy=False "$run" --timeout=10s
for _ in $(seq 1 30); do
  kubectl -n "$NS" get debugschedule nightly-health -o jsonpath='{.status.lastRun.capture}' | grep -q . && break
  sleep 1
done
kubectl -n "$NS" get debugschedules
echo "last run: $(kubectl -n "$NS" get debugschedule nightly-health -o jsonpath='{.status.lastRun}')"
kubectl -n "$NS" get events --field-selector reason=PodUnhealthy -o custom-columns=POD:.involvedObject.name,MESSAGE:.message | sed -n '1,3p'
echo "Prometheus (the operator's /metrics):"
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9464/metrics").read().decode())' \
  | grep -E '^debugcap_pod_(finding_severity|goroutines)' | sed -n '1,6p'
echo "Argo CD health check (deploy/argocd): resource_customizations/debugcap.io/DebugCapture/health.lua"
echo "A light sweep for a fleet (built-in template go-vitals: goroutines, heap, expvar, /metrics; no"
echo "commands, no window: a few ms of API-server CPU per pod, measured in docs/performance.md):"
kubectl -n "$NS" apply -f - <<'YAML' >/dev/null
apiVersion: debugcap.io/v1alpha1
kind: DebugCapture
metadata: {name: vitals}
spec: {target: {selector: {matchLabels: {sweep: demo}}}, template: go-vitals}
YAML
kubectl -n "$NS" wait --for=condition=Ready debugcapture/vitals --timeout=120s >/dev/null
kubectl -n "$NS" get debugcapture vitals \
  -o jsonpath='{range .status.pods[*]}{.name}{"\t"}{.phase}{"\tgoroutines="}{.readings.goroutines}{"\theap="}{.readings.heapInuseBytes}{"\n"}{end}'
kubectl -n "$NS" delete debugschedules,debugcaptures --all --timeout=120s >/dev/null  # bundles too
kill $OPERATOR 2>/dev/null || true

step "Capture at the moment it matters: a DebugTrigger catches a hoarding pod's heap before the OOM kill"
wait $OPERATOR 2>/dev/null || true
kubectl -n "$NS" delete pod hoarder --ignore-not-found --grace-period=0 >/dev/null  # a previous demo's
# The operator runs on the node here, which routes to pod IPs: it reads the trigger's signals (and
# takes its captures) direct, as an operator pod does, with no API server request per pod.
DEBUGCAP_OPERATOR_NAMESPACES="$NS" DEBUGCAP_OPERATOR_TRANSPORT=direct \
  DEBUGCAP_OPERATOR_WORK_DIR="$OUT/operator" debugcap-operator > "$OUT/operator-trigger.log" 2>&1 &
OPERATOR=$!
# A previous demo's trigger and its captures: the operator, now running, deletes their bundles.
kubectl -n "$NS" delete debugtriggers,debugcaptures --all --timeout=120s >/dev/null
kubectl -n "$NS" apply -f - <<'YAML'
apiVersion: debugcap.io/v1alpha1
kind: DebugTrigger
metadata: {name: hoarder-pre-oom}
spec:
  target: {selector: {matchLabels: {app: hoarder}}}
  template: go-heap            # heap first, no CPU profile or trace: done in well under a second
  when:
    memoryPercentOfLimit: 80   # what the Go runtime holds against the container's limit
    restarted: true            # and the post-mortem once the kernel has killed it
  checkIntervalSeconds: 2
  cooldown: 15m
  maxCapturesPerHour: 6
---
apiVersion: v1
kind: Pod
metadata: {name: hoarder, labels: {app: hoarder}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: debugcap.test/goapp:dev
    imagePullPolicy: Never
    env: [{name: GOAPP_HEAP_GROWTH_KB, value: "3072"}]   # 3 MiB a second, never freed
    resources: {limits: {memory: 128Mi}, requests: {memory: 128Mi}}
YAML
echo "3 MiB/s into 128 MiB: 80% after ~35 s, the kernel's OOM kill ~8 s later; the trigger checks every 2 s..."
killed=""
for _ in $(seq 1 60); do
  reason=$(kubectl -n "$NS" get pod hoarder -o jsonpath='{.status.containerStatuses[0].lastState.terminated.reason}')
  [ "$reason" = OOMKilled ] && { killed=1; break; }
  sleep 2
done
[ -n "$killed" ] || { echo "hoarder not OOMKilled within 120 s" >&2; tail -20 "$OUT/operator-trigger.log" >&2; exit 1; }
for reason in memoryPercentOfLimit restarted; do
  cap=""
  for _ in $(seq 1 30); do
    cap=$(kubectl -n "$NS" get dcap -l "debugcap.io/trigger=hoarder-pre-oom,debugcap.io/trigger-reason=$reason" \
      -o name | sed -n 1p)
    [ -n "$cap" ] && break
    sleep 1
  done
  [ -n "$cap" ] || { echo "no $reason capture; operator log:" >&2; tail -20 "$OUT/operator-trigger.log" >&2; exit 1; }
  kubectl -n "$NS" wait --for=condition=Ready "$cap" --timeout=60s >/dev/null
  key=$(kubectl -n "$NS" get "$cap" -o jsonpath='{.status.pods[0].bundle.key}')
  python - "$key" "$OUT/hoarder-$reason.tar.gz" <<'PY'
import sys
from pathlib import Path
from debugcap.settings import S3Settings
from debugcap.storage.s3 import S3Backend
S3Backend(S3Settings.from_env()).get(key=sys.argv[1], dest=Path(sys.argv[2]))
PY
done
kubectl -n "$NS" get dtrig hoarder-pre-oom
echo "status.firings:"
kubectl -n "$NS" get dtrig hoarder-pre-oom \
  -o jsonpath='{range .status.firings[*]}  {.time}  {.reason}: {.value}{"\n"}    -> {.capture}{"\n"}{end}'
kubectl -n "$NS" get dcap -l debugcap.io/trigger=hoarder-pre-oom
echo "The memory capture's heap, taken before the kill (in-use bytes):"
kubectl debugcap top "$OUT/hoarder-memoryPercentOfLimit.tar.gz" --profile heap --sample-index inuse_space \
  --limit 4 > "$OUT/hoarder-heap-top.txt"
cat "$OUT/hoarder-heap-top.txt"
grep -q 'main\.(\*growingCache)\.add' "$OUT/hoarder-heap-top.txt" \
  || { echo "the heap does not name the hoarding function" >&2; exit 1; }
kubectl -n "$NS" get pod hoarder -o json > "$OUT/hoarder-pod.json"
python - "$OUT/hoarder-memoryPercentOfLimit.tar.gz" "$OUT/hoarder-pod.json" <<'PY'
import json, sys, tarfile
from datetime import datetime
with tarfile.open(sys.argv[1]) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("/manifest.json"))
    manifest = json.load(tar.extractfile(member))
heap = next(c for c in manifest["collectors"] if c["name"] == "pprof-heap")
stamp = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
taken = stamp(manifest["started_at"]) + heap["duration_ms"] / 1000
ended = json.load(open(sys.argv[2]))["status"]["containerStatuses"][0]["lastState"]["terminated"]
steps = ", ".join(c["name"] for c in manifest["collectors"] if c["status"] != "skipped")
print(f"heap profile taken in {heap['duration_ms']} ms ({steps}); container {ended['reason']} at "
      f"{ended['finishedAt']}: {stamp(ended['finishedAt']) - taken:.0f} s later (whole seconds)")
PY
echo "The post-mortem capture, fired by the restart: the exit reason and the previous container's last lines"
tar xzf "$OUT/hoarder-restarted.tar.gz" --wildcards -O '*/k8s/pod.yaml' | grep -A6 'lastState:' | grep -E 'reason|exitCode'
tar xzf "$OUT/hoarder-restarted.tar.gz" --wildcards -O '*/logs/app.previous.log' | tail -n 2
kubectl -n "$NS" delete debugtriggers --all >/dev/null   # its captures go with it (owned); their bundles too
kubectl -n "$NS" delete pod hoarder --grace-period=0 >/dev/null
for _ in $(seq 1 60); do
  [ -z "$(kubectl -n "$NS" get dcap -o name)" ] && break
  sleep 1
done
kill $OPERATOR 2>/dev/null || true
wait $OPERATOR 2>/dev/null || true

NS="$NS" OUT="$OUT" bash scripts/demo_plugin.sh

bash scripts/demo_ship.sh

step "Done"
echo "bundles:     $FULL"
echo "             $LEAK"
echo "S3:          http://$DEBUGCAP_S3_ENDPOINT bucket $DEBUGCAP_S3_BUCKET"
echo "HTML report: $PWD/$OUT/leak-report.html (and full-report.html; open in a browser, works offline)"
