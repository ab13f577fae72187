#!/usr/bin/env bash
# Baton's local Kubernetes control plane: real etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler, plus kwok's simulated nodes, run as plain local processes by kwokctl's binary
# runtime. No Docker, no images, no downloads but Go modules. See docs/testing.md.
set -euo pipefail

usage() {
	cat <<EOF
Usage: hack/controlplane.sh <command>

Commands:
  build   Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok,
          kwokctl and helm from Go modules into the cache (nothing to do when they are there).
  up      Build if needed, start the cluster, wait until it is ready, print export lines:
            eval "\$(hack/controlplane.sh up)"
  dev     'up', then install the CRDs in crds/ (make dev); the cluster keeps running.
  env     Print the export lines of the running cluster (KUBECONFIG, PATH).
  status  Exit 0 when the cluster answers, 1 otherwise.
  down    Stop the cluster and remove its processes and files.
  list    Print the names of the clusters that exist (running or not).
  bin-dir Print the directory holding the binaries (built or not).

Environment:
  BATON_CLUSTER     cluster name (default: baton)
  BATON_NODES       number of fake nodes (default: 2)
  BATON_CACHE_DIR   cache root (default: \${XDG_CACHE_HOME:-\$HOME/.cache}/baton); binaries go to
                    \$BATON_CACHE_DIR/bin/<kubernetes version>-<pin hash>/, clusters to
                    \$BATON_CACHE_DIR/kwok/clusters/<name>/
  BATON_KWOK_STAGES kwok Stage file (default: hack/kwok/stages.yaml)
  BATON_KWOK_LOG_LEVEL log level of kwokctl and the components (DEBUG, INFO, WARN, ERROR;
                    default: WARN); component logs: \$BATON_CACHE_DIR/kwok/clusters/<name>/logs/
  BATON_KWOKCTL_ARGS extra arguments for 'kwokctl create cluster' (e.g. --disable-qps-limits)
EOF
}

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$HACK_DIR")"

# The pinned versions live in one place, hack/go.mod; the build stamps them into the binaries
# (`kubectl version`, the API server's /version, `helm version`) and tells kwokctl.
module_version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$HACK_DIR/go.mod"; }
KUBE_VERSION="$(module_version k8s.io/kubernetes)"   # v1.36.3
HELM_VERSION="$(module_version helm.sh/helm/v3)"     # v3.21.4
[[ "$KUBE_VERSION" =~ ^v([0-9]+)\.([0-9]+)\. ]] || {
	echo "hack/controlplane.sh: no k8s.io/kubernetes version in hack/go.mod" >&2
	exit 1
}
KUBE_MAJOR="${BASH_REMATCH[1]}"
KUBE_MINOR="${BASH_REMATCH[2]}"

CLUSTER="${BATON_CLUSTER:-baton}"
NODES="${BATON_NODES:-2}"
CACHE_DIR="${BATON_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/baton}"
STAGES="${BATON_KWOK_STAGES:-$HACK_DIR/kwok/stages.yaml}"
LOG_LEVEL="${BATON_KWOK_LOG_LEVEL:-WARN}"

# kwokctl keeps every cluster under $KWOK_WORKDIR/clusters/<name>. A directory of our own keeps
# a user's ~/.kwok (and its kwok.yaml, which kwokctl would load) out of the way.
export KWOK_WORKDIR="$CACHE_DIR/kwok"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$CLUSTER"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig.yaml"

VERSION_LDFLAGS="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
-X k8s.io/component-base/version.gitMajor=$KUBE_MAJOR \
-X k8s.io/component-base/version.gitMinor=$KUBE_MINOR \
-X k8s.io/component-base/version.gitTreeState=clean \
-X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v} \
-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
LDFLAGS="-s -w $VERSION_LDFLAGS"
GOFLAGS_BUILD="-mod=readonly -trimpath -buildvcs=false"

# Output names and the packages (relative to hack/go.mod) they are built from.
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwokctl helm)
PACKAGES=(
	./etcd
	k8s.io/kubernetes/cmd/kube-apiserver
	k8s.io/kubernetes/cmd/kube-controller-manager
	k8s.io/kubernetes/cmd/kube-scheduler
	k8s.io/kubernetes/cmd/kubectl
	sigs.k8s.io/kwok/cmd/kwok
	sigs.k8s.io/kwok/cmd/kwokctl
	helm.sh/helm/v3/cmd/helm
)

log() { printf '[controlplane] %s\n' "$*" >&2; }
die() {
	printf '[controlplane] error: %s\n' "$*" >&2
	exit 1
}

# The cache key: the Kubernetes version plus a hash of everything that decides the bytes built.
bin_dir() {
	local hash
	hash="$(cat "$HACK_DIR/go.mod" "$HACK_DIR/go.sum" "$HACK_DIR/etcd/main.go" <(echo "CGO_ENABLED=0 $GOFLAGS_BUILD $LDFLAGS") |
		sha256sum | cut -c1-12)"
	echo "$CACHE_DIR/bin/$KUBE_VERSION-$hash"
}
BIN_DIR="$(bin_dir)"

binaries_present() {
	local b
	for b in "${BINARIES[@]}"; do
		[[ -x "$BIN_DIR/$b" ]] || return 1
	done
}

find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		echo /usr/local/go/bin/go
	else
		return 1
	fi
}

# The lowest Go release that can build the pinned modules: hack/go.mod's `go` line.
required_go() { awk '$1 == "go" { print $2; exit }' "$HACK_DIR/go.mod"; }

check_go() {
	local go_bin have need
	go_bin="$(find_go)" || die "Go is not installed (looked on PATH and in /usr/local/go/bin).
  The control plane is built from Go modules: install Go $(required_go) or newer from
  https://go.dev/dl/ and put it on PATH, then run 'hack/controlplane.sh build' again."
	have="$(GOTOOLCHAIN=local "$go_bin" env GOVERSION)"
	have="${have#go}"
	need="$(required_go)"
	if [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]]; then
		die "Go $have at $go_bin is too old: the pinned Kubernetes needs Go $need or newer.
  Install a newer Go from https://go.dev/dl/ (or put it first on PATH) and run again."
	fi
	GO="$go_bin"
	log "using $("$GO" version) at $GO"
}

cmd_build() {
	if binaries_present; then
		log "binaries are up to date in $BIN_DIR"
		return 0
	fi
	check_go
	mkdir -p "$CACHE_DIR/bin"
	# One build at a time per cache: a second caller waits, then finds the binaries there.
	# (The lock's descriptor lives in this subshell only, so no daemon started later holds it.)
	(
		if ! flock -n 9; then
			log "another build is running; waiting for it"
			flock 9
		fi
		if binaries_present; then
			log "binaries are up to date in $BIN_DIR"
		else
			build_binaries
			prune_old_binaries
		fi
	) 9>"$CACHE_DIR/bin/.build.lock"
}

build_binaries() {
	local tmp="$BIN_DIR.tmp.$$" start=$SECONDS i
	rm -rf "$tmp"
	mkdir -p "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	log "building Kubernetes $KUBE_VERSION, etcd, kwok and helm into $BIN_DIR"
	log "a first build downloads ~200 MB of Go modules and takes ~10 minutes on 2 cores"
	for i in "${!BINARIES[@]}"; do
		log "go build ${PACKAGES[$i]} -> ${BINARIES[$i]} ($((SECONDS - start))s elapsed)"
		(
			cd "$HACK_DIR"
			GOTOOLCHAIN=local GOFLAGS="$GOFLAGS_BUILD" CGO_ENABLED=0 \
				"$GO" build -ldflags "$LDFLAGS" -o "$tmp/${BINARIES[$i]}" "${PACKAGES[$i]}"
		) || die "go build ${PACKAGES[$i]} failed (above); is the Go module proxy reachable?"
	done
	rm -rf "$BIN_DIR"
	mv "$tmp" "$BIN_DIR"
	trap - EXIT
	log "built ${#BINARIES[@]} binaries in $((SECONDS - start))s: $(du -sh "$BIN_DIR" | cut -f1) in $BIN_DIR"
}

# Binaries of other pins go, unless a cluster still runs them (kwokctl links to them).
prune_old_binaries() {
	local dir used
	used=""
	# On a fresh machine no cluster exists yet, and find on a missing directory fails.
	if [[ -d "$KWOK_WORKDIR/clusters" ]]; then
		used="$(find "$KWOK_WORKDIR/clusters" -path '*/bin/*' -type l -printf '%l\n' |
			sed 's#/[^/]*$##' | sort -u)"
	fi
	for dir in "$CACHE_DIR"/bin/v*/; do
		dir="${dir%/}"
		[[ "$dir" == "$BIN_DIR" ]] && continue
		if grep -qxF "$dir" <<<"$used"; then
			log "keeping $dir: a cluster still uses it"
		else
			log "removing binaries of another pin: $dir"
			rm -rf "$dir"
		fi
	done
}

# Everything kwokctl needs comes from BIN_DIR, passed explicitly, so it never downloads.
kwokctl_env() {
	export PATH="$BIN_DIR:$PATH" # kwokctl looks kubectl up on PATH for its readiness check
	export KWOK_KUBE_VERSION="$KUBE_VERSION"
	export KWOK_RUNTIME=binary
	export KWOK_ETCD_BINARY="$BIN_DIR/etcd"
	export KWOK_KUBE_APISERVER_BINARY="$BIN_DIR/kube-apiserver"
	export KWOK_KUBE_CONTROLLER_MANAGER_BINARY="$BIN_DIR/kube-controller-manager"
	export KWOK_KUBE_SCHEDULER_BINARY="$BIN_DIR/kube-scheduler"
	export KWOK_CONTROLLER_BINARY="$BIN_DIR/kwok"
	export KWOK_KUBECTL_BINARY="$BIN_DIR/kubectl"
}

kubectl_() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

print_env() {
	printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_PATH"
	# shellcheck disable=SC2016 # $PATH is for the shell that evals this line
	printf 'export PATH=%q:"$PATH"\n' "$BIN_DIR"
}

served() { [[ -f "$KUBECONFIG_PATH" ]] && kubectl_ get --raw /readyz >/dev/null 2>&1; }

# The fake nodes (a Node's status may be set on create: these addresses stay). kwok manages them
# (kwokctl runs it with --manage-all-nodes); having no taints, they take any pod.
node_manifest() {
	local i
	for ((i = 0; i < NODES; i++)); do
		cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
spec: {}
status:
  addresses:
    - {type: InternalIP, address: 10.1.0.$((i + 1))}
    - {type: Hostname, address: kwok-node-$i}
EOF
	done
}

wait_for() { # wait_for <seconds> <what> <command...>
	local timeout=$1 what=$2 deadline=$((SECONDS + $1))
	shift 2
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
		sleep 0.2
	done
}

cmd_up() {
	[[ "$NODES" =~ ^[1-9][0-9]*$ ]] || die "BATON_NODES must be a positive number, got '$NODES'"
	[[ -f "$STAGES" ]] || die "kwok stage file $STAGES does not exist"
	cmd_build
	kwokctl_env
	local start=$SECONDS
	if served; then
		log "cluster '$CLUSTER' is already running"
	else
		if [[ -d "$CLUSTER_DIR" ]]; then
			log "removing the stopped cluster '$CLUSTER' left in $CLUSTER_DIR"
			cmd_down
		fi
		log "starting cluster '$CLUSTER' (Kubernetes $KUBE_VERSION, kwok binary runtime)"
		# kwokctl picks free ports counting down from 32767, skipping those of the clusters it
		# has saved: two clusters created at once would pick the same ones. One at a time.
		mkdir -p "$KWOK_WORKDIR"
		(
			flock 8
			# shellcheck disable=SC2086 # BATON_KWOKCTL_ARGS is a list of arguments
			"$BIN_DIR/kwokctl" create cluster --name "$CLUSTER" --runtime binary --v "$LOG_LEVEL" \
				--config "$HACK_DIR/kwok/kwokctl.yaml" --config "$STAGES" \
				--quiet-pull --wait 60s --timeout 120s \
				--etcd-binary "$KWOK_ETCD_BINARY" \
				--kube-apiserver-binary "$KWOK_KUBE_APISERVER_BINARY" \
				--kube-controller-manager-binary "$KWOK_KUBE_CONTROLLER_MANAGER_BINARY" \
				--kube-scheduler-binary "$KWOK_KUBE_SCHEDULER_BINARY" \
				--kwok-controller-binary "$KWOK_CONTROLLER_BINARY" \
				${BATON_KWOKCTL_ARGS:-} 8>&- >&2
		) 8>"$KWOK_WORKDIR/.create.lock" || {
			log "kwokctl failed; its component logs are in $CLUSTER_DIR/logs (removing the cluster)"
			tail -n 20 "$CLUSTER_DIR"/logs/*.log >&2 2>/dev/null || true
			cmd_down
			exit 1
		}
	fi
	wait_for 60 "the API server to be ready" served
	node_manifest | kubectl_ apply -f - >/dev/null
	wait_for 60 "$NODES node(s) to be Ready" \
		kubectl_ wait --for=condition=Ready node --selector type=kwok --timeout=1s
	# The controller-manager is working once it has given the default namespace its account.
	wait_for 60 "the controller-manager (serviceaccount default/default)" \
		kubectl_ get serviceaccount default --namespace default
	log "cluster '$CLUSTER' is ready with $NODES nodes in $((SECONDS - start))s"
	log "kubeconfig: $KUBECONFIG_PATH"
	print_env
}

cmd_dev() {
	local exports f crds=()
	exports="$(cmd_up)"
	for f in "$REPO_DIR"/crds/*.yaml; do
		[[ -f "$f" ]] && crds+=("$f")
	done
	if ((${#crds[@]})); then
		log "installing the CRDs in crds/ (${#crds[@]} files)"
		# Server-side apply: a CRD's schema can outgrow kubectl's last-applied annotation.
		kubectl_ apply --server-side --force-conflicts --field-manager=baton-dev -f "$REPO_DIR/crds/" >&2
		kubectl_ wait --for=condition=Established --timeout=60s crd --all >&2
	else
		log "crds/ holds no CRDs yet (make crds generates them); none installed"
	fi
	log "cluster '$CLUSTER' keeps running; stop it with: hack/controlplane.sh down"
	log "use it from your shell with: eval \"\$(hack/controlplane.sh env)\""
	echo "$exports"
}

cmd_env() {
	[[ -f "$KUBECONFIG_PATH" ]] || die "cluster '$CLUSTER' is not running (start it with: hack/controlplane.sh up)"
	print_env
}

cmd_status() {
	if served; then
		log "cluster '$CLUSTER' is running; kubeconfig: $KUBECONFIG_PATH"
	else
		log "cluster '$CLUSTER' is not running"
		return 1
	fi
}

# The processes of the cluster: those in kwokctl's pid files, and any other process running a
# binary from the cluster's bin/ (kwokctl starts each component as <cluster dir>/bin/<name>), so
# that none outlives `down`, whatever happened to the pid files.
cluster_pids() {
	local f pid argv0
	for f in "$CLUSTER_DIR"/pids/*.pid; do
		[[ -f "$f" ]] && echo "$(<"$f")"
	done
	for f in /proc/[0-9]*/cmdline; do
		IFS= read -r -d '' argv0 <"$f" 2>/dev/null || continue
		if [[ "$argv0" == "$CLUSTER_DIR/bin/"* ]]; then
			pid="${f#/proc/}"
			echo "${pid%/cmdline}"
		fi
	done
	return 0
}

# A process that still runs: a killed one stays a zombie until init reaps it, and that is done.
running() {
	local stat
	if [[ -r "/proc/$1/stat" ]]; then
		stat="$(<"/proc/$1/stat")" 2>/dev/null || return 1
		stat="${stat##*) }"
		[[ "${stat%% *}" != Z ]]
	else
		kill -0 "$1" 2>/dev/null
	fi
}

cmd_down() {
	local pids pid
	pids="$(cluster_pids | sort -u)"
	if [[ ! -d "$CLUSTER_DIR" && -z "$pids" ]]; then
		log "cluster '$CLUSTER' does not exist"
		return 0
	fi
	if [[ -d "$CLUSTER_DIR" && -x "$BIN_DIR/kwokctl" ]]; then
		kwokctl_env
		log "deleting cluster '$CLUSTER'"
		"$BIN_DIR/kwokctl" delete cluster --name "$CLUSTER" --v "$LOG_LEVEL" >&2 ||
			log "kwokctl delete failed; cleaning up by hand"
	fi
	# Whatever kwokctl left running (or all of it, when kwokctl is gone) ends here.
	for pid in $pids; do
		if running "$pid"; then
			log "stopping leftover process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-100)"
			kill "$pid" 2>/dev/null || true
		fi
	done
	for pid in $pids; do
		for _ in $(seq 50); do
			running "$pid" || break
			sleep 0.1
		done
		if running "$pid"; then
			kill -9 "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$CLUSTER_DIR"
	log "cluster '$CLUSTER' removed"
}

cmd_list() {
	local d
	for d in "$KWOK_WORKDIR"/clusters/*/; do
		[[ -d "$d" ]] && basename "$d"
	done
	return 0
}

main() {
	[[ $# -eq 1 ]] || {
		usage >&2
		exit 2
	}
	case "$1" in
	build) cmd_build ;;
	up) cmd_up ;;
	dev) cmd_dev ;;
	env) cmd_env ;;
	status) cmd_status ;;
	down) cmd_down ;;
	list) cmd_list ;;
	bin-dir) echo "$BIN_DIR" ;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
