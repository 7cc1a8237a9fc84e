//go:build tools

// Package tools pins krew's command so `go mod tidy` records its dependencies.
package tools

import _ "sigs.k8s.io/krew/cmd/krew"
