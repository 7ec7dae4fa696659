package store

import (
	"strconv"
	"strings"

	"outpost/relay/wire"
)

// Version is a semantic version MAJOR.MINOR.PATCH with an optional
// -prerelease (semver.org 2.0.0). Build metadata (+...) is not accepted:
// it plays no part in ordering, so two releases could not be told apart.
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string // dot-separated pre-release identifiers
}

// String is the canonical form, without a leading "v".
func (v Version) String() string {
	s := strconv.FormatUint(v.Major, 10) + "." + strconv.FormatUint(v.Minor, 10) + "." + strconv.FormatUint(v.Patch, 10)
	if len(v.Pre) > 0 {
		s += "-" + strings.Join(v.Pre, ".")
	}
	return s
}

// ParseVersion reads a release version. A leading "v" is accepted and
// dropped ("v1.2.3" is 1.2.3); anything but MAJOR.MINOR.PATCH[-PRE] is
// refused, so "v1.0" or "1.2" never becomes a release.
func ParseVersion(s string) (Version, error) {
	bad := func(why string) (Version, error) {
		return Version{}, Errorf(EInvalid, "version %q: %s: want MAJOR.MINOR.PATCH with an optional -prerelease, such as 1.2.0 or 1.3.0-rc.1", s, why)
	}
	t := strings.TrimPrefix(s, "v")
	if t == "" {
		return bad("empty")
	}
	if strings.Contains(t, "+") {
		return bad("build metadata (+...) is not accepted")
	}
	core, pre, hasPre := strings.Cut(t, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return bad("three numbers are needed")
	}
	var n [3]uint64
	for i, p := range parts {
		if !numericID(p) {
			return bad("each of MAJOR, MINOR and PATCH is a number without leading zeros")
		}
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return bad("number too large")
		}
		n[i] = v
	}
	v := Version{Major: n[0], Minor: n[1], Patch: n[2]}
	if hasPre {
		for _, id := range strings.Split(pre, ".") {
			if id == "" || strings.Trim(id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") != "" {
				return bad("pre-release identifiers are [0-9A-Za-z-], separated by dots")
			}
			if wire.AllDigits(id) && !numericID(id) {
				return bad("numeric pre-release identifiers have no leading zeros")
			}
			v.Pre = append(v.Pre, id)
		}
	}
	return v, nil
}

// numericID: digits without a leading zero (0 itself is fine).
func numericID(s string) bool {
	return wire.AllDigits(s) && (s == "0" || s[0] != '0')
}

// Compare orders versions by semver precedence: numbers first, then a
// pre-release sorts before its release (1.0.0-rc.1 < 1.0.0), and
// pre-release identifiers compare numerically when numeric, in ASCII order
// otherwise, numeric before alphanumeric, a shorter list first.
func (v Version) Compare(w Version) int {
	for _, d := range [][2]uint64{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		if d[0] != d[1] {
			return cmpInt(d[0] < d[1])
		}
	}
	switch {
	case len(v.Pre) == 0 && len(w.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1
	case len(w.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(w.Pre); i++ {
		a, b := v.Pre[i], w.Pre[i]
		if a == b {
			continue
		}
		an, bn := wire.AllDigits(a), wire.AllDigits(b)
		switch {
		case an && bn:
			if len(a) != len(b) {
				return cmpInt(len(a) < len(b))
			}
			return cmpInt(a < b)
		case an:
			return -1
		case bn:
			return 1
		}
		return cmpInt(a < b)
	}
	if len(v.Pre) != len(w.Pre) {
		return cmpInt(len(v.Pre) < len(w.Pre))
	}
	return 0
}

func cmpInt(less bool) int {
	if less {
		return -1
	}
	return 1
}

// CompareVersions compares two versions by semver precedence (see
// Version.Compare). A version that does not parse, such as a relay built
// without a version ("dev"), is read leniently: missing numbers are 0 and
// whatever follows the first "-" is its pre-release.
func CompareVersions(a, b string) int {
	return lenientVersion(a).Compare(lenientVersion(b))
}

func lenientVersion(s string) Version {
	s = strings.TrimSpace(s)
	if v, err := ParseVersion(s); err == nil {
		return v
	}
	s = strings.TrimPrefix(s, "v")
	if i := strings.Index(s, "+"); i >= 0 {
		s = s[:i]
	}
	core, pre, hasPre := strings.Cut(s, "-")
	var n [3]uint64
	for i, p := range strings.SplitN(core, ".", 3) {
		n[i], _ = strconv.ParseUint(p, 10, 64)
	}
	v := Version{Major: n[0], Minor: n[1], Patch: n[2]}
	if hasPre {
		v.Pre = strings.Split(pre, ".")
	}
	return v
}
