#!/usr/bin/env bash
# make dev: a local control plane, the operator, demo services, a worker and an example run,
# all left running.
#
#   hack/dev.sh          start everything (idempotent: what already runs is reused)
#   hack/dev.sh down     stop the operator, the services and the cluster
#
# The cluster is hack/controlplane.sh's (BATON_CLUSTER, default "baton"); the operator and the
# services run as local processes whose logs and pid files are in ~/.cache/baton/dev/.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${BATON_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/baton}"
DEV_DIR="$CACHE_DIR/dev/${BATON_CLUSTER:-baton}"
SERVICES_PORT="${BATON_DEV_PORT:-8900}"
WORKER_PORT="${BATON_DEV_WORKER_PORT:-8901}"
UI_PORT="${BATON_DEV_UI_PORT:-8980}"
cd "$REPO_DIR"

log() { printf '[dev] %s\n' "$*" >&2; }
die() { printf '[dev] error: %s\n' "$*" >&2; exit 1; }

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_process() {
	local pidfile="$DEV_DIR/$1.pid"
	if alive "$pidfile"; then
		kill "$(cat "$pidfile")" 2>/dev/null || true
		for _ in $(seq 50); do alive "$pidfile" || break; sleep 0.1; done
		alive "$pidfile" && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
		log "stopped the $1"
	fi
	rm -f "$pidfile"
}

start_process() {
	local name="$1"; shift
	local pidfile="$DEV_DIR/$name.pid" logfile="$DEV_DIR/$name.log"
	if alive "$pidfile"; then
		log "the $name is already running (pid $(cat "$pidfile"), log $logfile)"
		return
	fi
	nohup "$@" >>"$logfile" 2>&1 &
	echo $! >"$pidfile"
	log "started the $name (pid $!, log $logfile)"
}

# A worker outside the cluster gets its pool's token the way the kubelet gives it to a pod: the
# keys of the pool's token Secret as files of a directory (docs/install.md, "Worker tokens").
copy_tokens() {
	local pool key value
	for pool in "$@"; do
		for _ in $(seq 300); do
			kubectl get secret "$pool-worker-token" >/dev/null 2>&1 && break
			sleep 0.2
		done
		for key in current next previous; do
			value="$(kubectl get secret "$pool-worker-token" -o "jsonpath={.data.$key}")"
			if [ -n "$value" ]; then
				printf '%s' "$value" | base64 -d >"$DEV_DIR/tokens/$pool/$key"
			else
				rm -f "$DEV_DIR/tokens/$pool/$key"
			fi
		done
	done
	log "copied the token Secrets of the WorkerPools $* for the worker"
}

down() {
	stop_process ui
	stop_process operator
	stop_process worker
	stop_process services
	hack/controlplane.sh down
}

up() {
	command -v uv >/dev/null || die "uv is needed: pip install uv (then run make dev again)"
	mkdir -p "$DEV_DIR"
	uv sync --locked --quiet
	eval "$(hack/controlplane.sh dev)"
	start_process services uv run --locked python examples/dev/services.py --port "$SERVICES_PORT"
	# The worker accepts the tokens of both pools' token Secrets, copied into these directories
	# once the operator has created them (copy_tokens); until then it refuses tasks (401), which
	# the operator retries.
	mkdir -p "$DEV_DIR/tokens/payments" "$DEV_DIR/tokens/registry"
	start_process worker uv run --locked baton-worker realestate:worker \
		--app-dir activities/examples --host 127.0.0.1 --port "$WORKER_PORT" \
		--tokens "$DEV_DIR/tokens/payments" --tokens "$DEV_DIR/tokens/registry"
	# kwok.baton.dev/* steers kwok's simulated pods (docs/testing.md): Job steps may set those
	# pod annotations, nothing else (the operator's pod policy allows none by default).
	start_process operator uv run --locked baton operator --standalone --liveness "" \
		--metrics-port 0 --allow-job-pod-annotation 'kwok.baton.dev/*'
	# The web view, as the kubeconfig's user (the control plane's admin here), on 127.0.0.1.
	start_process ui uv run --locked baton ui --port "$UI_PORT"
	for port in "$SERVICES_PORT" "$WORKER_PORT"; do
		for _ in $(seq 300); do
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
			sleep 0.1
		done
	done
	sed "s|127.0.0.1:8901|127.0.0.1:$WORKER_PORT|g" examples/dev/pools.yaml | kubectl apply -f - >&2
	copy_tokens payments registry
	sed "s|127.0.0.1:8900|127.0.0.1:$SERVICES_PORT|g" examples/dev/workflow.yaml | kubectl apply -f - >&2
	kubectl wait --for=jsonpath='{.status.conditions[0].status}'=True --timeout=60s \
		workflow/property-purchase >&2
	log "starting a run of property-purchase and following it:"
	local name
	name="purchase-$(date +%H%M%S)"
	uv run --locked baton run property-purchase --name "$name" \
		--input @examples/dev/input.json --wait --timeout 5m >&2 ||
		die "the run did not succeed; see 'uv run baton get $name' and $DEV_DIR/operator.log"
	cat >&2 <<-TEXT

	[dev] Baton is running: control plane '${BATON_CLUSTER:-baton}', operator, demo services.

	      Web view: http://127.0.0.1:$UI_PORT/runs/default/$name

	      Use it from your shell:

	        eval "\$(hack/controlplane.sh env)"
	        kubectl get workflows,workflowruns
	        uv run baton get $name
	        uv run baton history $name
	        kubectl describe workflowrun $name           # the Events of every transition
	        kubectl get workerpools,deployments          # pools scaled from their backlog
	        uv run baton run property-purchase -i '{"propertyId": "loft-2", "buyer": "Sam", "payment": {"amount": 2500000}}'
	        uv run baton signal <run> manualApproval --payload '{"ok": true}'   # over 1M needs approval

	      Logs: $DEV_DIR/operator.log, ui.log, worker.log and services.log
	      Stop everything: make dev-down
	TEXT
}

case "${1:-up}" in
	up) up ;;
	down) down ;;
	*) die "usage: hack/dev.sh [up|down]" ;;
esac
