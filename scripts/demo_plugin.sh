#!/usr/bin/env bash
# The user's loop, as a Kubernetes user types it: install the plugin with krew from the generated
# manifest (offline), then create a capture and watch it, download and verify its bundle, read the
# report and delete it, with no S3 credentials and no YAML. Called by scripts/demo.sh (testbed up,
# the pod leaky running in $NS).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(.venv/bin/python -m testbed env)"
NS=${NS:-debugcap-demo}
OUT=${OUT:-out/demo}
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The admission policy first: the operator answers only requests made once the API server applies it.
kubectl apply -f crds/ -f deploy/admission/debugcap-downloads.yaml >/dev/null

step "The plugin as users get it: one file per platform and a krew manifest (make dist)"
make -s dist 2>&1 | grep -E "^dist: .*(sha256|manifest)"
ARCHIVE=$(ls dist/kubectl-debugcap-*-linux-amd64.tar.gz)
grep -E '^  (version|shortDescription):' deploy/krew/debugcap.yaml
grep -E 'sha256:' deploy/krew/debugcap.yaml | sed -n '1p'

step "krew installs it offline, and kubectl finds it: a shell with only kubectl, krew and the system python3"
TOOLS=$(mktemp -d)
export KREW_ROOT="$TOOLS/krew"
trap 'rm -rf "$TOOLS"; kill "${OPERATOR:-}" 2>/dev/null || true' EXIT
.venv/bin/python - "$TOOLS" <<'PY'
import sys
from pathlib import Path
from testbed import builds
for name in ("kubernetes", "krew"):
    builds.build(builds.component(name))
Path(sys.argv[1], "kubectl").symlink_to(builds.binary("kubernetes", "kubectl"))
Path(sys.argv[1], "kubectl-krew").symlink_to(builds.binary("krew"))
PY
# What the user's shell has: no virtualenv, no DEBUGCAP_S3_* (the bundles are read through URLs
# the operator presigns for minutes, for users who may read the capture).
user() { env -u DEBUGCAP_S3_ENDPOINT -u DEBUGCAP_S3_ACCESS_KEY -u DEBUGCAP_S3_SECRET_KEY \
  -u DEBUGCAP_S3_BUCKET -u DEBUGCAP_S3_SECURE -u VIRTUAL_ENV \
  PATH="$KREW_ROOT/bin:$TOOLS:/usr/bin:/bin" HOME="$TOOLS" "$@"; }
user kubectl krew install --manifest=deploy/krew/debugcap.yaml --archive="$ARCHIVE" </dev/null 2>&1 | grep -v '^$' | sed -n '1,4p'
user kubectl plugin list 2>/dev/null | grep debugcap
user kubectl debugcap --help | sed -n '1,3p'

step "The operator, run here with the bucket's keys (the user has none)"
kubectl -n "$NS" delete debugcaptures --all --timeout=120s >/dev/null 2>&1 || true
DEBUGCAP_OPERATOR_NAMESPACES="$NS" DEBUGCAP_OPERATOR_TRANSPORT=direct \
  DEBUGCAP_OPERATOR_WORK_DIR="$OUT/operator" .venv/bin/debugcap-operator > "$OUT/operator-plugin.log" 2>&1 &
OPERATOR=$!

step "kubectl debugcap create --wait --download: a live line per pod, the outcome as exit code, the bundle verified"
rm -rf "$OUT/user" "$OUT/user-again"
user kubectl debugcap create pod/leaky -n "$NS" -t debug-full -p cpu_seconds=2 -p trace_seconds=1 \
  --name leaky-full --wait --download -d "$OUT/user"
ls "$OUT/user"

step "kubectl debugcap describe: spec, phase, per pod its bundle, failed collectors, findings, Events, what next"
user kubectl debugcap describe leaky-full -n "$NS"

step "kubectl debugcap download again, elsewhere: each bundle checked against the status's SHA-256 and its manifest"
user kubectl debugcap download leaky-full -n "$NS" -d "$OUT/user-again"
(cd "$OUT/user-again" && sha256sum -c ./*.sha256)

step "kubectl debugcap report NAME: the analysis reads a capture by its name (downloaded into a cache, verified)"
user kubectl debugcap report leaky-full -n "$NS" | sed -n '/^Findings/,/^$/p'

step "kubectl debugcap logs: the capture's Events and each pod's progress"
user kubectl debugcap logs leaky-full -n "$NS" | sed -n '1,8p'

step "kubectl debugcap delete: the capture and its bundles in S3"
KEY=$(kubectl -n "$NS" get debugcapture leaky-full -o jsonpath='{.status.pods[0].bundle.key}')
user kubectl debugcap delete leaky-full -n "$NS" --yes
.venv/bin/python - "$KEY" <<'PY'
import sys
from debugcap.settings import S3Settings
from debugcap.storage.s3 import S3Backend
print("in S3 after delete:", "still there" if S3Backend(S3Settings.from_env()).exists(key=sys.argv[1]) else "gone")
PY
user kubectl debugcap describe leaky-full -n "$NS" 2>&1 || echo "(exit $?)"
