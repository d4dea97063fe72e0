package web

import "testing"

// --advertise-url takes a scheme and a host, nothing more.
func TestParseAdvertiseURL(t *testing.T) {
	for _, tc := range []struct {
		raw, want string // want "" for refused
	}{
		{"https://battles.example", "https://battles.example"},
		{"https://battles.example/", "https://battles.example"},
		{"http://10.0.0.5:8080", "http://10.0.0.5:8080"},
		{"https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"},
		{"battles.example", ""},
		{"ftp://battles.example", ""},
		{"https://battles.example/singoff", ""},
		{"https://battles.example?x=1", ""},
		{"https://user@battles.example", ""},
		{"https://", ""},
		{"https://bad host", ""},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			u, err := parseAdvertiseURL(tc.raw)
			switch {
			case tc.want == "" && err == nil:
				t.Fatalf("accepted as %v", u)
			case tc.want != "" && (err != nil || u.String() != tc.want):
				t.Fatalf("= %v, %v; want %s", u, err, tc.want)
			}
		})
	}
}
