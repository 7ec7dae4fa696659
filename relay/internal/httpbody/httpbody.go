// Package httpbody reads a request body the same way at the relay and at
// the collector: bounded before and after decompression, gzip or plain,
// and any other Content-Encoding refused (415) rather than read as JSON.
// It also writes their JSON answers (WriteJSON, WriteError).
package httpbody

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"outpost/relay/wire"
)

// ErrTooLarge: the body, or what it decompresses to, is above the limit.
var ErrTooLarge = errors.New("request body too large")

// ErrGzip: the body is not a valid gzip stream.
var ErrGzip = errors.New("malformed gzip body")

// EncodingError is an unsupported Content-Encoding: answer 415.
type EncodingError struct{ Encoding string }

func (e *EncodingError) Error() string {
	return fmt.Sprintf("Content-Encoding %q not supported (use gzip)", e.Encoding)
}

// Read returns the decoded body of r, at most limit bytes both on the wire
// and decompressed. A malformed gzip stream is an error other than the two
// above (a 400).
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return ReadBuf(w, r, limit, nil)
}

// ReadBuf is Read into buf's storage (reset to length 0), so a caller can
// reuse one buffer per request instead of growing a new one; a plain body
// of a known length is read in one allocation at most.
func ReadBuf(w http.ResponseWriter, r *http.Request, limit int64, buf []byte) ([]byte, error) {
	body := io.Reader(http.MaxBytesReader(w, r.Body, limit))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		if n := r.ContentLength; n > 0 && n <= limit && int64(cap(buf)) < n+1 {
			buf = make([]byte, 0, n+1) // +1: io.ReadAll-like EOF probe without growing
		}
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			if tooLarge(err) {
				return nil, ErrTooLarge
			}
			return nil, fmt.Errorf("%w: %v", ErrGzip, err)
		}
		defer zr.Close()
		body = io.LimitReader(zr, limit+1)
	default:
		return nil, &EncodingError{enc}
	}
	buf, err := readAll(body, buf[:0])
	if tooLarge(err) || int64(len(buf)) > limit {
		return nil, ErrTooLarge
	} else if err != nil {
		if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
			return nil, fmt.Errorf("%w: %v", ErrGzip, err)
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	return buf, nil
}

// readAll is io.ReadAll appending to buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// Status is the HTTP status and error code for a Read failure.
func Status(err error) (int, string) {
	var ee *EncodingError
	switch {
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, wire.CodeTooLarge
	case errors.As(err, &ee):
		return http.StatusUnsupportedMediaType, wire.CodeUnsupportedEncoding
	}
	return http.StatusBadRequest, "invalid"
}
