package store

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"outpost/relay/wire"
)

// ParseBandwidth reads an upstream bandwidth limit and returns bytes/s;
// "unlimited" (or "0") is 0. Bit units (bit, Kbit, Mbit, Gbit, also "bps"
// forms) are per second and decimal; byte units (B, KB, MB, GB, KiB, MiB,
// GiB, optionally "/s") are bytes per second. A bare number is refused:
// "2" meant as 2 Mbit/s would otherwise silently be 2 bytes/s.
func ParseBandwidth(s string) (int64, error) {
	return parseRate("bandwidth", "2Mbit or 250KB/s", s)
}

// ParseLink reads a proxy host's link capacity and returns bits/s; "0" or
// "unknown" is 0 (unknown). Units as for ParseBandwidth.
func ParseLink(s string) (int64, error) {
	if strings.EqualFold(strings.TrimSpace(s), "unknown") {
		return 0, nil
	}
	if strings.EqualFold(strings.TrimSpace(s), "unlimited") {
		return 0, Errorf(EInvalid, "link %q: want the link capacity, e.g. 100Mbit or 1Gbit (0 = unknown)", s)
	}
	v, err := parseRate("link", "100Mbit or 1Gbit", s)
	return v * 8, err
}

func parseRate(what, example, s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" || strings.EqualFold(t, "unlimited") || t == "0" {
		return 0, nil
	}
	num, unit := splitNumber(t)
	v, err := strconv.ParseFloat(num, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, Errorf(EInvalid, "%s %q is too large (at most 1 Pbit/s)", what, s)
	}
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, Errorf(EInvalid, "%s %q: want a number with a unit, e.g. %s", what, s, example)
	}
	if unit == "" {
		if v == 0 {
			return 0, nil
		}
		return 0, Errorf(EInvalid, "%s %s needs a unit, e.g. %s", what, t, example)
	}
	v, err = rateValue(what, s, unit, v)
	if err != nil {
		return 0, err
	}
	if v > maxRate {
		return 0, Errorf(EInvalid, "%s %q is too large (at most 1 Pbit/s)", what, s)
	}
	return int64(v), nil
}

// maxRate bounds rates in bytes/s (1 Pbit/s) so that conversions to bits
// and int64 can never overflow into a negative limit.
const maxRate = 1e15 / 8

// rateValue converts a number and its rate unit to bytes/s.
func rateValue(what, s, unit string, v float64) (float64, error) {
	u := strings.TrimSuffix(unit, "/s")
	lower := strings.ToLower(u)
	prefix := map[string]float64{"": 1, "k": 1e3, "m": 1e6, "g": 1e9}
	switch {
	case strings.HasSuffix(lower, "bit") || strings.HasSuffix(lower, "bps"):
		if m, ok := prefix[lower[:len(lower)-3]]; ok {
			return math.Ceil(v * m / 8), nil
		}
	case strings.HasSuffix(u, "B"): // capital B: bytes
		bin := map[string]float64{"ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30}
		p := strings.TrimSuffix(lower, "b")
		if m, ok := prefix[p]; ok {
			return math.Floor(v * m), nil
		}
		if m, ok := bin[p]; ok {
			return math.Floor(v * m), nil
		}
	}
	return 0, Errorf(EInvalid, "%s %q: unknown unit %q (use bit, Kbit, Mbit, Gbit, B, KB, MB, GB or unlimited)", what, s, unit)
}

// maxFrequency bounds request rates: far beyond any relay, below overflow.
const maxFrequency = 1_000_000_000

// ParseFrequency reads an upstream request rate; "unlimited" is 0.
func ParseFrequency(s string) (int64, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if t == "" || strings.EqualFold(t, "unlimited") {
		return 0, nil
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if errors.Is(err, strconv.ErrRange) || v > maxFrequency {
		return 0, Errorf(EInvalid, "frequency %q is too large (at most %d requests/s)", s, maxFrequency)
	}
	if err != nil || v < 0 {
		return 0, Errorf(EInvalid, "frequency %q: want requests per second (a whole number) or unlimited", s)
	}
	return v, nil
}

// ParseSize reads a byte size such as 10GB, 512MiB or 1048576. Decimal
// units are powers of 1000 (the seed's "10 GB"), binary ones powers of 1024.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num, unit := splitNumber(t)
	v, err := strconv.ParseFloat(num, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, Errorf(EInvalid, "size %q is too large", s)
	}
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, Errorf(EInvalid, "size %q: want a number with a unit such as 512MB or 10GB", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"k": 1e3, "m": 1e6, "g": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
	m, ok := mult[strings.ToLower(unit)]
	if !ok {
		return 0, Errorf(EInvalid, "size %q: unknown unit %q (use B, KB, MB, GB, KiB, MiB or GiB)", s, unit)
	}
	f := v * m
	if f > math.MaxInt64/2 {
		return 0, Errorf(EInvalid, "size %q is too large", s)
	}
	return int64(f), nil
}

func splitNumber(s string) (num, unit string) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// FormatBytes renders a byte count the way the seed writes sizes (10 GB).
func FormatBytes(n int64) string { return wire.FormatBytes(n) }

// FormatBandwidth renders bytes/s as bits per second, "unlimited" for 0.
func FormatBandwidth(bps int64) string {
	if bps == 0 {
		return "unlimited"
	}
	return formatBits(bps * 8)
}

func formatBits(bits int64) string { return wire.FormatBits(bits) }

// AddressKind is what a cluster's address is: an IP address holds at most
// one proxy server, a domain name any number (seed 000).
type AddressKind string

// Address kinds.
const (
	AddressIP     AddressKind = "ip"
	AddressDomain AddressKind = "domain"
)

// ClassifyAddress says whether a cluster address is an IP address or a
// domain name; anything else is refused, because agents must be able to
// dial it.
func ClassifyAddress(addr string) (AddressKind, error) {
	a := strings.TrimSpace(addr)
	if a == "" {
		return "", Errorf(EInvalid, "address is required: an IP address or a domain name")
	}
	if ip := net.ParseIP(a); ip != nil {
		if ip.IsUnspecified() || ip.IsMulticast() {
			return "", Errorf(EInvalid, "address %q: not a reachable unicast IP address", addr)
		}
		return AddressIP, nil
	}
	if a != addr || len(a) > 253 {
		return "", Errorf(EInvalid, "address %q is not a valid IP address or domain name", addr)
	}
	labels := strings.Split(strings.TrimSuffix(a, "."), ".")
	allNumeric := true
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", Errorf(EInvalid, "address %q is not a valid IP address or domain name", addr)
		}
		for _, c := range l {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
			if !ok {
				return "", Errorf(EInvalid, "address %q is not a valid IP address or domain name", addr)
			}
			if c < '0' || c > '9' {
				allNumeric = false
			}
		}
	}
	// "10.0.0.256" or "10.0.0" are malformed IPs, not domain names.
	if allNumeric || isNumeric(labels[len(labels)-1]) {
		return "", Errorf(EInvalid, "address %q is not a valid IP address or domain name", addr)
	}
	return AddressDomain, nil
}

func isNumeric(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// maxDays is the longest whole-day duration a time.Duration holds.
const maxDays = math.MaxInt64 / int64(24*time.Hour)

// ParseDuration reads Go duration syntax (90s, 1h30m) or whole days (7d),
// the form every duration flag, setting and dashboard field takes. Days past
// what a duration holds (about 292 years) are too large instead of wrapping.
// The sign is kept: callers decide whether zero or negative make sense.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(t, "d"); ok {
		days, err := strconv.ParseInt(n, 10, 64)
		if errors.Is(err, strconv.ErrRange) || days > maxDays || days < -maxDays {
			return 0, Errorf(EInvalid, "duration %q is too large", s)
		}
		if err != nil {
			return 0, Errorf(EInvalid, "duration %q: want e.g. 30m, 24h or 7d", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, Errorf(EInvalid, "duration %q: want e.g. 30m, 24h or 7d", s)
	}
	return d, nil
}

// FormatFrequency renders a request rate, "unlimited" for 0.
func FormatFrequency(rps int64) string {
	if rps == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%d req/s", rps)
}

// FormatLink renders a link capacity given in bits/s, "unknown" for 0.
func FormatLink(bits int64) string {
	if bits == 0 {
		return "unknown"
	}
	if bits%8 == 0 {
		return FormatBandwidth(bits / 8) // FormatBandwidth takes bytes/s
	}
	return fmt.Sprintf("%d bit/s", bits)
}

// Describe is a cluster policy in an operator's words, the same in the
// command line and the dashboard.
func (p Policy) Describe() string {
	var parts []string
	switch p.Mode {
	case wire.ModeCache:
		parts = append(parts, "cache in "+p.CacheDir+" capped at "+FormatBytes(p.CacheMax)+" (oldest data overwritten)")
	default:
		up := p.Upstream
		if up == "" {
			up = "the built-in collector"
		}
		parts = append(parts, "forward to "+up, "bandwidth "+FormatBandwidth(p.BandwidthBps), "frequency "+FormatFrequency(p.FrequencyRPS))
	}
	if p.LinkBps > 0 {
		parts = append(parts, "link "+FormatLink(p.LinkBps))
	}
	return strings.Join(parts, ", ")
}

// FormatAgo renders a past time relative to now: "just now", "12s ago",
// "3h ago", "5d ago", "never" for the zero time.
func FormatAgo(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// FormatDuration renders a duration without zero units: 12h, 1m30s, 500ms.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
