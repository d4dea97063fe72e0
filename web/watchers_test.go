package web

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"
)

func testKey(b byte) watcherKey {
	k, err := newWatcherKey(bytes.Repeat([]byte{b}, WatcherKeySize))
	if err != nil {
		panic(err)
	}
	return k
}

// An identity reads back as issued; any change to it, or another
// server's key, makes it invalid.
func TestWatcherIdentitySigned(t *testing.T) {
	k := testKey(1)
	at := time.UnixMilli(1_800_000_000_123)
	value := k.issue(at)
	w, ok := k.verify(value)
	if !ok || !w.issued.Equal(at) || len(w.id) != 22 {
		t.Fatalf("verify(issue) = %+v, %v", w, ok)
	}
	if other := k.issue(at); other == value {
		t.Fatal("two identities issued alike")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(value)
	for i := range raw {
		forged := bytes.Clone(raw)
		forged[i] ^= 0x01
		if _, ok := k.verify(base64.RawURLEncoding.EncodeToString(forged)); ok {
			t.Fatalf("byte %d changed, still valid", i)
		}
	}
	for _, tc := range []struct{ name, value string }{
		{"another server's", testKey(2).issue(at)},
		{"empty", ""},
		{"truncated", value[:len(value)-2]},
		{"extended", value + "AA"},
		{"not base64", value[:len(value)-1] + "!"},
		{"an old unsigned identity", "AAAAAAAAAAAAAAAAAAAAAA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := k.verify(tc.value); ok {
				t.Fatalf("%q accepted", tc.value)
			}
		})
	}
	if _, err := newWatcherKey([]byte("short")); err == nil {
		t.Fatal("a short key accepted")
	}
}

// The cookie is untrusted bytes: verify never panics, and accepts only
// what the key issued.
func FuzzWatcherCookie(f *testing.F) {
	k := testKey(7)
	f.Add(k.issue(time.Now()))
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, value string) {
		w, ok := k.verify(value)
		if !ok {
			return
		}
		raw, _ := base64.RawURLEncoding.DecodeString(value)
		if !bytes.Equal(k.mac(raw[:watcherIDSize+watcherTimeSize]), raw[watcherIDSize+watcherTimeSize:]) || w.id == "" {
			t.Fatalf("accepted %q without its signature", value)
		}
	})
}
