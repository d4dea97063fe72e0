package whipclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A WHIP server may send the client to another origin (307, RFC 9725):
// the offer and the token follow it there, even to another host name,
// but never from HTTPS down to HTTP.
func TestRedirectKeepsTheToken(t *testing.T) {
	var gotAuth, gotBody string
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		body, _ := io.ReadAll(r.Body)
		gotBody = string(body)
		w.WriteHeader(http.StatusCreated)
	}))
	defer owner.Close()
	// The same server by another name: Go drops the token for it unless
	// told otherwise.
	ownerByName := strings.Replace(owner.URL, "127.0.0.1", "localhost", 1)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", ownerByName+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer other.Close()

	req, _ := http.NewRequest(http.MethodPost, other.URL+"/api/battles/b/singers/1/whip", strings.NewReader("v=0"))
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || gotAuth != "Bearer secret" || gotBody != "v=0" {
		t.Fatalf("after the redirect: %d, Authorization %q, body %q", resp.StatusCode, gotAuth, gotBody)
	}

	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", owner.URL+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer secure.Close()
	client := *httpClient
	client.Transport = secure.Client().Transport
	gotAuth = ""
	req, _ = http.NewRequest(http.MethodPost, secure.URL+"/whip", strings.NewReader("v=0"))
	req.Header.Set("Authorization", "Bearer secret")
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a redirect from HTTPS to HTTP was followed: %d", resp.StatusCode)
	}
	if gotAuth != "" {
		t.Fatal("the token went over HTTP")
	}
}
