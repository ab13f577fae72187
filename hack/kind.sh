#!/usr/bin/env bash
# kind for the end-to-end tests, built from hack/kind (pinned in its go.mod and go.sum) into
# ~/.cache/baton/tools/ on first use, never downloaded as a binary.
#   hack/kind.sh path        build if needed, print the binary's path
#   hack/kind.sh ARGS...     run kind
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/kind"
cache="${BATON_CACHE_DIR:-$HOME/.cache/baton}/tools"
if command -v go >/dev/null 2>&1; then
  go_bin="$(command -v go)"
elif [[ -x /usr/local/go/bin/go ]]; then
  go_bin=/usr/local/go/bin/go
else
  echo "kind.sh: Go is not installed; kind is built from its Go module" >&2
  exit 2
fi
hash="$(cat "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)"
binary="$cache/kind-$hash"
if [[ ! -x "$binary" ]]; then
  mkdir -p "$cache"
  echo "kind.sh: building kind into $binary" >&2
  (cd "$src" && CGO_ENABLED=0 "$go_bin" build -trimpath -ldflags "-s -w" -o "$binary.tmp" sigs.k8s.io/kind)
  mv "$binary.tmp" "$binary"
  find "$cache" -maxdepth 1 -name 'kind-*' ! -name "kind-$hash" -delete
fi
if [[ "${1:-}" == path ]]; then
  echo "$binary"
else
  exec "$binary" "$@"
fi
