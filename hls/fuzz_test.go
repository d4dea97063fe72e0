package hls

import (
	"net/url"
	"strings"
	"testing"
)

// The LL-HLS directives come from any client's query: a parse either
// fails or gives directives that write themselves back to what parses
// to them again, and agree with what url.ParseQuery reads.
func FuzzParseDirectives(f *testing.F) {
	for _, seed := range []string{"", "_HLS_msn=7&_HLS_part=2&_HLS_skip=YES", "_HLS_part=1", "_HLS_msn=%37", "_HLS_msn=7&_HLS_msn=x", "a=%zz&_HLS_skip=v2", "_HLS_msn=999999999"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := parseDirectives(raw)
		if err != nil {
			return
		}
		if d.hasPart && !d.hasMSN || d.msn < 0 || d.part < 0 || d.skip != "" && d.skip != "YES" && d.skip != "v2" {
			t.Fatalf("%q: %+v", raw, d)
		}
		again, err := parseDirectives(d.String())
		if err != nil || again != d {
			t.Fatalf("%q: %+v writes as %q, which parses to %+v, %v", raw, d, d.String(), again, err)
		}
		if strings.ContainsAny(d.key("720p.m3u8"), "\r\n /") {
			t.Fatalf("%q: key %q", raw, d.key("720p.m3u8"))
		}
		if q, err := url.ParseQuery(raw); err == nil && q.Has("_HLS_msn") != d.hasMSN {
			t.Fatalf("%q: url.ParseQuery sees _HLS_msn %v, parseDirectives %v", raw, q.Has("_HLS_msn"), d.hasMSN)
		}
	})
}

// Accept-Encoding comes from any client: any value gives an answer, and
// a value that names gzip alone, or nothing, gives the obvious one.
func FuzzAcceptsGzip(f *testing.F) {
	for _, seed := range []string{"", "gzip", "gzip;q=0", "*;q=0.5, gzip;q=0", "br, deflate", "gzip;q="} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := acceptsGzip(header)
		if strings.TrimSpace(header) == "" && got {
			t.Fatalf("%q: gzip without asking", header)
		}
		if !strings.Contains(strings.ToLower(header), "gzip") && !strings.Contains(header, "*") && got {
			t.Fatalf("%q: gzip without naming it", header)
		}
	})
}
