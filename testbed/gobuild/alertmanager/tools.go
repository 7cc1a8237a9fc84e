//go:build tools

// Package tools pins Alertmanager's command so `go mod tidy` records its dependencies.
package tools

import _ "github.com/prometheus/alertmanager/cmd/alertmanager"
