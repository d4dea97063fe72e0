// Package battleid makes and checks battle ids, the one part of a
// request path that names files and muxers: whatever does not match is
// refused before it reaches either.
package battleid

import (
	"crypto/rand"
	"encoding/base64"
)

// New returns a short URL-safe id: 10 characters, 60 random bits.
func New() string {
	b := make([]byte, 8)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)[:10]
}

// Valid tells whether id has the form of a battle id: [A-Za-z0-9_-]{1,32}.
func Valid(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
