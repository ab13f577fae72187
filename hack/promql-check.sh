#!/usr/bin/env bash
# Check PromQL expressions (a JSON list on stdin) with Prometheus' own parser, built from
# hack/promql-check (pinned in its go.mod and go.sum) into ~/.cache/baton/tools/ on first use.
#   hack/promql-check.sh < expressions.json
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/promql-check"
cache="${BATON_CACHE_DIR:-$HOME/.cache/baton}/tools"
if command -v go >/dev/null 2>&1; then
  go_bin="$(command -v go)"
elif [[ -x /usr/local/go/bin/go ]]; then
  go_bin=/usr/local/go/bin/go
else
  echo "promql-check: Go is not installed; it builds Prometheus' PromQL parser" \
    "(install Go $(awk '$1 == "go" {print $2}' "$src/go.mod") or newer)" >&2
  exit 2
fi
hash="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-12)"
binary="$cache/promql-check-$hash"
if [[ ! -x "$binary" ]]; then
  mkdir -p "$cache"
  echo "promql-check: building Prometheus' PromQL parser into $binary" >&2
  (cd "$src" && CGO_ENABLED=0 "$go_bin" build -trimpath -ldflags "-s -w" -o "$binary.tmp" .)
  mv "$binary.tmp" "$binary"
  find "$cache" -maxdepth 1 -name 'promql-check-*' ! -name "promql-check-$hash" -delete
fi
exec "$binary" "$@"
