//go:build tools

// Package tools pins kind (built with `go build sigs.k8s.io/kind` from this module).
package tools

import _ "sigs.k8s.io/kind"
