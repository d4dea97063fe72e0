package web

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/pion/stun/v4"
)

// ICEServer is one STUN or TURN server handed to browsers: its URL as an
// RTCIceServer takes it (no credentials in it) and, for TURN, the
// long-term credentials.
type ICEServer struct {
	URL        string
	Username   string
	Credential string
}

// ParseICEServer reads one --ice-server value:
//
//	stun:host[:port]
//	stuns:host[:port]
//	turn://user:password@host[:port][?transport=udp|tcp]
//	turns://user:password@host[:port][?transport=tcp]
//
// The user name and password are percent-encoded where they hold
// characters a URL reserves ("@", ":", "/", "%", ",", ...). A TURN server
// needs them: browsers refuse a TURN server without credentials; a STUN
// server takes none.
func ParseICEServer(s string) (ICEServer, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ICEServer{}, fmt.Errorf("ICE server %q: %w", redactUserinfo(s), errors.Unwrap(err))
	}
	scheme := strings.ToLower(u.Scheme)
	var srv ICEServer
	switch {
	case u.Opaque != "":
		// scheme:host:port, the form browsers take.
		srv.URL = scheme + ":" + u.Opaque
	case u.Host != "" && (u.Path == "" || u.Path == "/") && u.Fragment == "":
		srv.URL = scheme + ":" + u.Host
		if u.User != nil {
			srv.Username = u.User.Username()
			srv.Credential, _ = u.User.Password()
		}
	default:
		return ICEServer{}, fmt.Errorf("ICE server %q: want stun:host:port or turn://user:password@host:port?transport=udp", redactUserinfo(s))
	}
	if u.RawQuery != "" {
		srv.URL += "?" + u.RawQuery
	}
	uri, err := stun.ParseURI(srv.URL)
	if err != nil {
		return ICEServer{}, fmt.Errorf("ICE server %q: %w", redactUserinfo(s), err)
	}
	turn := uri.Scheme == stun.SchemeTypeTURN || uri.Scheme == stun.SchemeTypeTURNS
	switch {
	case turn && (srv.Username == "" || srv.Credential == ""):
		return ICEServer{}, fmt.Errorf("ICE server %q: a TURN server needs a user name and password: %s://user:password@host:port", redactUserinfo(s), scheme)
	case !turn && (srv.Username != "" || srv.Credential != ""):
		return ICEServer{}, fmt.Errorf("ICE server %q: a STUN server takes no credentials", redactUserinfo(s))
	case strings.ContainsFunc(srv.Username+srv.Credential, isControl):
		return ICEServer{}, fmt.Errorf("ICE server %q: control characters in the credentials", redactUserinfo(s))
	}
	return srv, nil
}

// parseICEServers parses every --ice-server value.
func parseICEServers(values []string) ([]ICEServer, error) {
	servers := make([]ICEServer, 0, len(values))
	for _, v := range values {
		srv, err := ParseICEServer(v)
		if err != nil {
			return nil, err
		}
		servers = append(servers, srv)
	}
	return servers, nil
}

// link is the server as a WHIP Link header value (RFC 9725 4.6), its
// credentials included.
func (s ICEServer) link() string {
	v := "<" + s.URL + `>; rel="ice-server"`
	if s.Username != "" {
		v += `; username=` + quote(s.Username) + `; credential=` + quote(s.Credential) + `; credential-type="password"`
	}
	return v
}

// quote makes a quoted-string (RFC 9110 5.6.4).
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// redactUserinfo hides the password of a URL in error messages.
func redactUserinfo(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
			return scheme + "://" + user + ":xxxxx" + rest[at:]
		}
	}
	return s
}
