#!/usr/bin/env bash
# Shipping the operator (issue 15): its image built from the repository's Dockerfile into the
# testbed's registry, the chart installed from it with two replicas of which one leads, `helm test`
# running a real capture, and the standby taking over when the leader is killed with SIGKILL.
# Called at the end of scripts/demo.sh; runs alone too, once the testbed is up.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(.venv/bin/python -m testbed env)"
export PATH="$PWD/.venv/bin:$PATH"
SYS=debugcap-system
RELEASE=debugcap

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
leader() { kubectl -n "$SYS" get pods -l debugcap.io/leader=true -o jsonpath='{.items[*].metadata.name}'; }
holder() { kubectl -n "$SYS" get lease "$RELEASE" -o jsonpath='{.spec.holderIdentity}'; }

step "Ship it: the Dockerfile built by buildah (on a base made by mmdebstrap) into the testbed's registry (make image)"
python -m testbed image

step "Installed with Helm from that registry: two replicas, one leads on a Lease (make deploy)"
python -m testbed deploy
kubectl -n "$SYS" get pods -L debugcap.io/leader
echo "Lease holder: $(holder)"

step "helm test: a hook pod starts a target pod, the operator captures it into MinIO"
helm test "$RELEASE" -n "$SYS" --logs

step "Kill the leader's process (SIGKILL, no clean-up): the standby takes the Lease once it expires"
pod=$(leader)
[ -n "$pod" ] || { echo "no pod carries debugcap.io/leader=true" >&2; exit 1; }
before=$(holder)
uid=$(kubectl -n "$SYS" get pod "$pod" -o jsonpath='{.metadata.uid}')
killed=0
# The kubelet's cgroups name the pod by its UID; the operator is the process running debugcap-operator.
for procs in $(find /sys/fs/cgroup/pids -path "*pod${uid}*" -name cgroup.procs 2>/dev/null); do
  for pid in $(cat "$procs"); do
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q debugcap-operator; then
      kill -9 "$pid" && killed=$((killed + 1))
    fi
  done
done
[ "$killed" -gt 0 ] || { echo "no debugcap-operator process found in pod $SYS/$pod" >&2; exit 1; }
echo "killed the operator in $pod (held by $before)"
start=$(date +%s%N)
for _ in $(seq 1 120); do
  now=$(holder)
  [ -n "$now" ] && [ "$now" != "$before" ] && break
  sleep 0.5
done
[ "$now" != "$before" ] || { echo "the Lease did not move within 60 s" >&2; exit 1; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "new Lease holder: $now, $((ms / 1000)).$(( ms % 1000 / 100 )) s after the kill (the chart's Lease: 15 s)"

step "helm test again: the new leader carries out the capture"
helm test "$RELEASE" -n "$SYS" --logs

helm uninstall "$RELEASE" -n "$SYS" --wait >/dev/null
echo "uninstalled (make deploy installs it again)"
