package wire

// Error codes: the Error.Code values relays and collectors answer with.
// They are protocol bytes that agents and scripts compare: never change a
// value, only add. The store's codes (store.ENotFound ...) are the same
// strings, as its refusals reach the wire unchanged; a relay test holds
// the two lists equal.
const (
	CodeNotFound            = "not_found"
	CodeConflict            = "conflict"
	CodeInvalid             = "invalid"
	CodeForbidden           = "forbidden"
	CodeLimit               = "limit"
	CodeUnauthorized        = "unauthorized"
	CodeInternal            = "internal"
	CodeBadRequest          = "bad_request"
	CodeBadRecord           = "bad_record"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodeTooLarge            = "too_large"
	CodeUnsupportedEncoding = "unsupported_encoding"
	CodeUnavailable         = "unavailable"
	// CodeNeedsTLS is the code of a 403 for an authenticated call on a
	// plain listener: the URL is wrong, not the caller, so agents try the
	// next one (other 403s refuse the key or the account and are final).
	CodeNeedsTLS = "needs_tls"
)

// HealthOK is the "status" of a healthy PathHealth answer, from a relay or
// a collector; doctor checks for it.
const HealthOK = "ok"
