// Command badbuild is a release that passes its self-test and then fails
// to run: it exits at once, or with -X main.mode=hang runs without ever
// reporting to the management host. The upgrade tests publish it to see
// the watcher roll it back.
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

var (
	version = "0.0.0" // set with -X main.version=
	mode    = "exit"  // or hang
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--self-test" {
		fmt.Printf(`{"version":%q,"os":%q,"arch":%q}`+"\n", version, runtime.GOOS, runtime.GOARCH)
		return
	}
	if mode == "hang" {
		fmt.Fprintf(os.Stderr, "badbuild %s: waiting for a configuration that never comes\n", version)
		time.Sleep(10 * time.Minute)
		return
	}
	fmt.Fprintf(os.Stderr, "badbuild %s: cannot start: the configuration format is unknown\n", version)
	os.Exit(1)
}
