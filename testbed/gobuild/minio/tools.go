//go:build tools

// Package tools pins MinIO's server (the last community source release) so
// `go mod tidy` records its dependencies; the testbed builds it as its S3.
package tools

import _ "github.com/minio/minio"
