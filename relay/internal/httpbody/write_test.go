package httpbody

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWrite: both writers answer JSON with the status given, one line.
func TestWrite(t *testing.T) {
	for _, tt := range []struct {
		name  string
		write func(http.ResponseWriter)
		code  int
		body  string
	}{
		{"value", func(w http.ResponseWriter) { WriteJSON(w, http.StatusOK, map[string]int{"n": 1}) }, 200, `{"n":1}` + "\n"},
		{"error", func(w http.ResponseWriter) { WriteError(w, http.StatusForbidden, "forbidden", "no") }, 403,
			`{"code":"forbidden","error":"no"}` + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.write(rec)
			if rec.Code != tt.code || rec.Body.String() != tt.body {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.code, tt.body)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", got)
			}
		})
	}
}
