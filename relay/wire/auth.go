package wire

import "strings"

// bearerPrefix starts every Authorization value the project sends or reads.
// It is compared case-sensitively, as it always was: old agents send exactly
// these bytes.
const bearerPrefix = "Bearer "

// Bearer is the Authorization value carrying token.
func Bearer(token string) string { return bearerPrefix + token }

// AgentAuth is the Authorization value an agent sends: "Bearer id:secret".
func AgentAuth(id, secret string) string { return Bearer(id + ":" + secret) }

// ParseAgentAuth reads an AgentAuth value. ok is false unless both the id
// and the secret are non-empty; the secret may itself contain ':'.
func ParseAgentAuth(header string) (id, secret string, ok bool) {
	tok, found := strings.CutPrefix(header, bearerPrefix)
	if !found {
		return "", "", false
	}
	id, secret, ok = strings.Cut(tok, ":")
	return id, secret, ok && id != "" && secret != ""
}
