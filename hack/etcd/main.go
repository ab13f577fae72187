// Command etcd is etcd's server built from its Go module: etcd's own go.mod carries local
// replace directives, so it cannot be `go install`ed; this wrapper module builds it instead.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
