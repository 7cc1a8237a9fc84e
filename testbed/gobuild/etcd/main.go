// Command etcd is etcd's own server entry point, wrapped in a module of ours
// because etcd's server module has relative replace directives that make
// `go install go.etcd.io/etcd/server/v3@version` impossible.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
