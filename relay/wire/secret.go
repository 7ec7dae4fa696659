package wire

import (
	"crypto/subtle"
	"strings"
)

// BearerIs reports whether an Authorization header carries exactly the
// bearer token want, compared in constant time. An empty want matches
// nothing.
func BearerIs(header, want string) bool {
	got, ok := strings.CutPrefix(header, bearerPrefix)
	if !ok || want == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
