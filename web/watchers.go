package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gin-gonic/gin"
)

// A watcher is who votes: an identity the watch page (GET /b/{id})
// issues in an HttpOnly cookie, signed with the server's key and
// carrying when it was issued, so a vote counts only from an identity
// that existed before its round opened. A client cannot mint identities
// by leaving the cookie out, nor backdate one.

// watcherCookie names the watcher's cookie.
const watcherCookie = "singoff_watcher"

// watcherCookieAge is how long a browser keeps its watcher identity.
const watcherCookieAge = 365 * 24 * time.Hour

// WatcherKeySize is the size of the key that signs watcher identities.
const WatcherKeySize = 32

// Sizes in a watcher cookie: the identity, its issue time (Unix
// milliseconds), and the truncated HMAC-SHA256 of both.
const (
	watcherIDSize   = 16
	watcherTimeSize = 8
	watcherMACSize  = 16
	watcherSize     = watcherIDSize + watcherTimeSize + watcherMACSize
)

// watcher is a verified watcher identity.
type watcher struct {
	id     string // what the votes are stored under
	issued time.Time
}

// watcherKey signs and checks watcher cookies.
type watcherKey struct{ key []byte }

func newWatcherKey(key []byte) (watcherKey, error) {
	if len(key) != WatcherKeySize {
		return watcherKey{}, fmt.Errorf("the watcher key must be %d bytes, not %d", WatcherKeySize, len(key))
	}
	return watcherKey{key: key}, nil
}

func (k watcherKey) mac(payload []byte) []byte {
	h := hmac.New(sha256.New, k.key)
	h.Write(payload)
	return h.Sum(nil)[:watcherMACSize]
}

// issue makes a new identity issued at now, as a cookie value.
func (k watcherKey) issue(now time.Time) string {
	b := make([]byte, watcherSize)
	rand.Read(b[:watcherIDSize]) // never fails (crypto/rand)
	binary.BigEndian.PutUint64(b[watcherIDSize:], uint64(now.UnixMilli()))
	copy(b[watcherIDSize+watcherTimeSize:], k.mac(b[:watcherIDSize+watcherTimeSize]))
	return base64.RawURLEncoding.EncodeToString(b)
}

// verify reads a cookie value this server's key signed.
func (k watcherKey) verify(value string) (watcher, bool) {
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) != watcherSize {
		return watcher{}, false
	}
	payload, sum := b[:watcherIDSize+watcherTimeSize], b[watcherIDSize+watcherTimeSize:]
	if !hmac.Equal(sum, k.mac(payload)) {
		return watcher{}, false
	}
	ms := int64(binary.BigEndian.Uint64(b[watcherIDSize:]))
	return watcher{
		id:     base64.RawURLEncoding.EncodeToString(b[:watcherIDSize]),
		issued: time.UnixMilli(ms),
	}, true
}

// watcherOf is the request's verified watcher identity.
func (k watcherKey) watcherOf(c *gin.Context) (watcher, bool) {
	value, err := c.Cookie(watcherCookie)
	if err != nil {
		return watcher{}, false
	}
	return k.verify(value)
}

// issueWatcher is the watch page's middleware: a browser without a
// valid identity gets one. The page answer is then private to it.
func (s *Server) issueWatcher(c *gin.Context) {
	if _, ok := s.watchers.watcherOf(c); ok {
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: watcherCookie, Value: s.watchers.issue(time.Now()), Path: "/",
		MaxAge: int(watcherCookieAge / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: s.https(c),
	})
	c.Header("Cache-Control", "private, no-cache")
}

// LoadWatcherKey reads the key that signs watcher identities from path,
// making a random one there (mode 0600) the first time, so identities
// survive restarts. Origins that share their watchers share the file.
func LoadWatcherKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, WatcherKeySize)
		rand.Read(key)
		err = writeNewFile(path, key)
		if errors.Is(err, fs.ErrExist) {
			// Another process made it first: use theirs.
			key, err = os.ReadFile(path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the watcher key: %w", err)
	}
	if len(key) != WatcherKeySize {
		return nil, fmt.Errorf("the watcher key %s has %d bytes, want %d", path, len(key), WatcherKeySize)
	}
	return key, nil
}

// writeNewFile writes data to path, which must not exist yet, whole or
// not at all: a synced temporary file linked into place.
func writeNewFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}
