// Command badbuild is a release that passes its self-test and then fails
// to run: the upgrade tests publish it to see the watcher roll it back.
package main

import (
	"fmt"
	"os"
	"runtime"
)

var version = "0.0.0" // set with -X main.version=

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--self-test" {
		fmt.Printf(`{"version":%q,"os":%q,"arch":%q}`+"\n", version, runtime.GOOS, runtime.GOARCH)
		return
	}
	fmt.Fprintf(os.Stderr, "badbuild %s: cannot start: the configuration format is unknown\n", version)
	os.Exit(1)
}
