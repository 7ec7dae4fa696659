package main

import (
	"net/url"
	"strings"

	"outpost/store"
)

// advertisedURLs is what a relay tells the management host (at join) and
// direct agents to use: --public when given, else its listeners. A plain
// http:// URL is advertised only with --allow-plain, since without it the
// relay refuses every authenticated agent call there ("needs TLS") and an
// agent handed that URL would only waste a try. --public values must be
// https://HOST:PORT (http:// too with --allow-plain).
func advertisedURLs(listening, public []string, allowPlain bool) ([]string, error) {
	if len(public) > 0 {
		var out []string
		for _, p := range public {
			p = strings.TrimRight(strings.TrimSpace(p), "/")
			u, err := url.Parse(p)
			if store.CheckRelayURL(p, allowPlain) != nil {
				if err == nil && u.Scheme == "http" {
					return nil, usageErrorf("invalid --public %q: agents need TLS (https://HOST:PORT) unless the relay runs with --allow-plain", p)
				}
				return nil, usageErrorf("invalid --public %q: want https://HOST:PORT, the address agents reach this relay at", p)
			}
			out = append(out, p)
		}
		return out, nil
	}
	var tls, plain []string
	for _, u := range listening {
		if strings.HasPrefix(u, "https://") {
			tls = append(tls, u)
		} else if allowPlain {
			plain = append(plain, u)
		}
	}
	return append(tls, plain...), nil
}
