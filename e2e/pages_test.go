package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestHomeHostsABattle creates a battle with the home page's form, finds
// the singers' invite links and the host's control, keeps them across a
// reload, and ends the battle from there.
func TestHomeHostsABattle(t *testing.T) {
	s := startServer(t, false)
	br := newBrowser(t, false)
	home := br.open("home", s.base+"/")
	home.waitStatus("live", 15*time.Second)

	home.run(
		chromedp.SendKeys("#title", "Home page duel", chromedp.ByID),
		chromedp.Click(`#create button[type=submit]`, chromedp.ByQuery),
	)
	home.waitStatus("is ready", 15*time.Second)
	var invites []string
	home.eval(`[...document.querySelectorAll("#mine input")].map((i) => i.value)`, &invites)
	if len(invites) != 3 {
		t.Fatalf("home shows %d links after creating, want 2 invites and the host link: %q", len(invites), invites)
	}
	id := battleID(t, invites[0])
	for slot, link := range invites[:2] {
		want := "/b/" + id + "/sing/" + strconv.Itoa(slot+1) + "#token="
		if !strings.HasPrefix(link, s.base+want) || len(link) <= len(s.base+want) {
			t.Errorf("invite %d is %q, want %s<token>", slot+1, link, s.base+want)
		}
	}
	if got := s.battle(t, id); got.Title != "Home page duel" {
		t.Errorf("created battle is titled %q", got.Title)
	}
	home.screenshot("created")

	// The host keeps the control across a reload, and ends the battle.
	home.run(chromedp.Reload())
	home.waitStatus("live", 15*time.Second)
	var after []string
	home.eval(`[...document.querySelectorAll("#mine input")].map((i) => i.value)`, &after)
	if len(after) != 3 || after[0] != invites[0] {
		t.Fatalf("after a reload home shows links %q, want %q", after, invites)
	}
	chromedp.ListenTarget(home.ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go func() { _ = chromedp.Run(home.ctx, page.HandleJavaScriptDialog(true)) }()
		}
	})
	home.run(chromedp.Click(`#mine button.danger`, chromedp.ByQuery))
	home.waitStatus("has ended", 15*time.Second)
	if got := s.battle(t, id); got.State != "ended" {
		t.Errorf("after the host's end the battle is %q, want ended", got.State)
	}
	var pastLink string
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasSuffix(pastLink, "/b/"+id+"/replay") && time.Now().Before(deadline) {
		home.eval(`document.querySelector("#past a")?.getAttribute("href") ?? ""`, &pastLink)
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.HasSuffix(pastLink, "/b/"+id+"/replay") {
		t.Errorf("past battles link to %q, want the replay of %s", pastLink, id)
	}
	home.screenshot("ended")
}

func battleID(t testing.TB, invite string) string {
	t.Helper()
	_, rest, ok := strings.Cut(invite, "/b/")
	id, _, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || id == "" {
		t.Fatalf("no battle id in invite %q", invite)
	}
	return id
}

// TestPagesSayWhatIsWrong opens pages in the states a person can meet:
// a wrong invite token, a battle that does not exist, an ended battle.
func TestPagesSayWhatIsWrong(t *testing.T) {
	s := startServer(t, false)
	br := newBrowser(t, true)
	b := s.createBattle(t, "messages")

	wrong := br.open("sing-wrong-token", s.base+"/b/"+b.ID+"/sing/1#token=not-the-token")
	wrong.waitStatus("not valid", 20*time.Second)
	wrong.screenshot("refused")

	noToken := br.open("sing-no-token", s.base+"/b/"+b.ID+"/sing/2")
	noToken.waitStatus("invite link", 10*time.Second)

	missing := br.open("watch-missing", s.base+"/b/no-such-battle")
	missing.waitStatus("does not exist", 10*time.Second)

	waiting := br.open("watch-waiting", s.base+"/b/"+b.ID)
	waiting.waitStatus("Waiting for singers", 10*time.Second)
	waiting.screenshot("waiting")

	// A person who says no to the camera prompt.
	denying := newBrowser(t, true, chromedp.Flag("use-fake-ui-for-media-stream", "deny"))
	denied := denying.open("sing-camera-denied", s.base+"/b/"+b.ID+"/sing/1#token="+b.SingerTokens[0])
	denied.waitStatus("denied", 10*time.Second)
	denied.screenshot("denied")

	s.call(t, http.MethodPost, "/api/battles/"+b.ID+"/end", b.HostToken, nil, http.StatusOK, nil)
	ended := br.open("sing-ended", s.base+"/b/"+b.ID+"/sing/2#token="+b.SingerTokens[1])
	ended.waitStatus("ended", 10*time.Second)
}

// TestHTTPS serves the pages over TLS with a certificate made here:
// browsers give the camera only to secure pages.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSignedCert(t, certPath, keyPath)
	s := startServer(t, true, "--tls-cert", certPath, "--tls-key", keyPath)
	br := newBrowser(t, true, chromedp.Flag("ignore-certificate-errors", true))

	home := br.open("home-https", s.base+"/")
	home.waitStatus("live", 15*time.Second)
	var secure struct {
		Protocol string `json:"protocol"`
		Secure   bool   `json:"secure"`
		Camera   bool   `json:"camera"`
	}
	home.eval(`({protocol: location.protocol, secure: isSecureContext, camera: !!navigator.mediaDevices?.getUserMedia})`, &secure)
	if secure.Protocol != "https:" || !secure.Secure || !secure.Camera {
		t.Errorf("home over TLS: %+v, want https:, a secure context and the camera API", secure)
	}
	home.screenshot("loaded")
}

// writeSelfSignedCert writes a certificate for 127.0.0.1 and localhost
// and its key as PEM.
func writeSelfSignedCert(t testing.TB, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "singoff e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}
