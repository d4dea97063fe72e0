// Package httpjson writes the JSON bodies of the HTTP contract, errors
// included, the one way every handler of singoff does.
package httpjson

import (
	"encoding/json"
	"fmt"
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
