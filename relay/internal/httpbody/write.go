package httpbody

import (
	"encoding/json"
	"net/http"

	"outpost/relay/wire"
)

// WriteJSON answers code with v as JSON, the same at the relay and at the
// collector.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// WriteError answers code with a wire.Error of kind (a wire or store
// error code) and msg.
func WriteError(w http.ResponseWriter, code int, kind, msg string) {
	WriteJSON(w, code, wire.Error{Code: kind, Message: msg})
}
