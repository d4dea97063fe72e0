// Package httpjson writes the JSON bodies of the HTTP contract, errors
// included, the one way every handler of singoff does.
package httpjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxBody is the largest request body any endpoint reads (64 KiB); a
// larger one is answered 413.
const MaxBody = 64 << 10

// Write answers status with v as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error answers status with {"error": msg}, msg formatted like fmt.Sprintf.
func Error(w http.ResponseWriter, status int, format string, args ...any) {
	Write(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// ReadBody reads r's body up to MaxBody. When it fails it has already
// answered: 413 for a body over the limit, 400 for one that broke off.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			Error(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", MaxBody)
		} else {
			Error(w, http.StatusBadRequest, "reading request body: %v", err)
		}
		return nil, false
	}
	return body, true
}
