#!/usr/bin/env bash
# Lint Dockerfiles with buildkit's linter (the checks of `docker build --check`), built from
# hack/dockerfile-lint (pinned in its go.mod and go.sum) into ~/.cache/baton/tools/ on first use.
#   hack/dockerfile-lint.sh Dockerfile...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/dockerfile-lint"
cache="${BATON_CACHE_DIR:-$HOME/.cache/baton}/tools"
if command -v go >/dev/null 2>&1; then
  go_bin="$(command -v go)"
elif [[ -x /usr/local/go/bin/go ]]; then
  go_bin=/usr/local/go/bin/go
else
  echo "dockerfile-lint: Go is not installed; it builds buildkit's Dockerfile linter" \
    "(install Go $(awk '$1 == "go" {print $2}' "$src/go.mod") or newer)" >&2
  exit 2
fi
hash="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-12)"
binary="$cache/dockerfile-lint-$hash"
if [[ ! -x "$binary" ]]; then
  mkdir -p "$cache"
  echo "dockerfile-lint: building buildkit's linter into $binary" >&2
  (cd "$src" && CGO_ENABLED=0 "$go_bin" build -trimpath -ldflags "-s -w" -o "$binary.tmp" .)
  mv "$binary.tmp" "$binary"
  find "$cache" -maxdepth 1 -name 'dockerfile-lint-*' ! -name "dockerfile-lint-$hash" -delete
fi
exec "$binary" "$@"
