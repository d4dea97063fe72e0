package battle

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/singoff/singoff/storage"
)

// newToken returns a random bearer token (128 bits) and its SHA-256,
// which is all that is stored.
func newToken() (token string, hash []byte) {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// tokenMatches compares in constant time, so timing tells nothing of the
// stored hash.
func tokenMatches(token string, hash []byte) bool {
	return token != "" && subtle.ConstantTimeCompare(hashToken(token), hash) == 1
}

// IsHost tells whether token is battle b's host token.
func IsHost(b *storage.Battle, token string) bool { return tokenMatches(token, b.HostTokenHash) }

// MayPublish tells whether token may publish to slot of b: that slot's
// singer token.
func MayPublish(b *storage.Battle, slot int, token string) bool {
	return slot >= 1 && slot <= 2 && tokenMatches(token, b.SingerTokenHashs[slot-1])
}

// MaySubscribe tells whether token may watch slot of b over WebRTC: the
// other singer's token or the host token.
func MaySubscribe(b *storage.Battle, slot int, token string) bool {
	return slot >= 1 && slot <= 2 && (tokenMatches(token, b.SingerTokenHashs[2-slot]) || IsHost(b, token))
}
