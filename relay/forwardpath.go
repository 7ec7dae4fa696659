package relay

import (
	"net/http"

	"outpost/relay/wire"
	"outpost/store"
)

// forwardPath is the management host path a joined relay may pass a call
// on to: exactly one of its agent paths, rebuilt from the decoded request
// rather than copied, and a package name only when it is a release
// version. Anything else ("..%2f" in a package name, a query) could steer
// the relay's credentials to another management endpoint.
func forwardPath(r *http.Request) (string, bool) {
	switch p := r.URL.Path; p {
	case wire.PathEnrol, wire.PathCheckin, wire.PathManifest:
		return p, true
	}
	v := r.PathValue("version")
	if v == "" || r.URL.Path != wire.PathPackage+v || !validVersion(v) {
		return "", false
	}
	return wire.PathPackage + v, true
}

// validVersion: a release version (store.ParseVersion), whose characters
// cannot name another path.
func validVersion(v string) bool {
	_, err := store.ParseVersion(v)
	return err == nil
}
