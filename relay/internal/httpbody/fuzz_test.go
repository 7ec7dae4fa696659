package httpbody

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzRead: for any body and Content-Encoding the reader answers one of
// its four outcomes (body, too large, malformed gzip, unsupported
// encoding) without panicking, never returns more than the limit, returns
// a plain body unchanged, and returns what a gzip body decompresses to.
func FuzzRead(f *testing.F) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	f.Add([]byte(`{"records":[]}`), "", false)
	f.Add([]byte(`{"records":[]}`), "gzip", true)
	f.Add(bytes.Repeat([]byte("a"), 5000), "gzip", true) // decompresses past the limit
	f.Add([]byte("not gzip"), "gzip", false)
	f.Add([]byte(`{}`), "br", false)
	f.Add([]byte(`{}`), " Identity ", false)
	f.Fuzz(func(t *testing.T, payload []byte, enc string, compress bool) {
		const limit = 1024
		body := payload
		if compress {
			body = gz(payload)
		}
		r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		if enc != "" {
			r.Header.Set("Content-Encoding", enc)
		}
		got, err := Read(httptest.NewRecorder(), r, limit)
		var ee *EncodingError
		switch {
		case err == nil:
			if len(got) > limit {
				t.Fatalf("returned %d bytes, past the limit %d", len(got), limit)
			}
			if !compress && !isGzip(enc) && !bytes.Equal(got, payload) {
				t.Fatalf("plain body changed: got %q, want %q", got, payload)
			}
			if compress && isGzip(enc) && !bytes.Equal(got, payload) {
				t.Fatalf("gzip body: got %q, want %q", got, payload)
			}
		case errors.Is(err, ErrTooLarge):
			if code, _ := Status(err); code != http.StatusRequestEntityTooLarge {
				t.Fatalf("too large answered %d", code)
			}
		case errors.As(err, &ee):
			if code, _ := Status(err); code != http.StatusUnsupportedMediaType {
				t.Fatalf("unsupported encoding answered %d", code)
			}
		case errors.Is(err, ErrGzip):
			if code, _ := Status(err); code != http.StatusBadRequest {
				t.Fatalf("malformed gzip answered %d", code)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func isGzip(enc string) bool {
	switch string(bytes.ToLower(bytes.TrimSpace([]byte(enc)))) {
	case "gzip", "x-gzip":
		return true
	}
	return false
}
