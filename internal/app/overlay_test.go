package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// logRecord is what the overlay's start-up log says, as the JSON
// handler writes it.
type logRecord struct {
	Level   string   `json:"level"`
	Msg     string   `json:"msg"`
	Scripts []string `json:"scripts"`
}

// TestOverlayFontsLogged: at start-up the server logs the scripts its
// overlay draws, and warns of those it cannot (Go's fonts when no Noto
// is found); a fonts dir that is not there stops it.
func TestOverlayFontsLogged(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dirs     func(t *testing.T) []string
		draws    []string // among the scripts the info record lists
		cannot   []string // the warning's scripts; nil: no warning
		errorHas string
	}{
		{"Debian's Noto, by default", func(*testing.T) []string { return nil },
			[]string{"Latin", "Han", "Hangul", "Arabic", "Hebrew", "Emoji"}, nil, ""},
		{"no fonts in the dir: Go's, and a warning", func(t *testing.T) []string { return []string{t.TempDir()} },
			[]string{"Latin", "Greek", "Cyrillic"}, []string{"Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew", "Emoji"}, ""},
		{"a dir that is not there", func(t *testing.T) []string { return []string{filepath.Join(t.TempDir(), "nope")} },
			nil, nil, "fonts dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := newOverlay(tc.dirs(t), slog.New(slog.NewJSONHandler(&buf, nil)))
			if tc.errorHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errorHas) {
					t.Fatalf("error %v, want one about %q", err, tc.errorHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var info, warn *logRecord
			for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
				var rec logRecord
				if err := json.Unmarshal(line, &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				switch rec.Level {
				case "INFO":
					info = &rec
				case "WARN":
					warn = &rec
				}
			}
			if info == nil {
				t.Fatalf("no info record in %s", buf.String())
			}
			for _, s := range tc.draws {
				if !slices.Contains(info.Scripts, s) {
					t.Errorf("the log says it draws %v, want %s among them", info.Scripts, s)
				}
			}
			switch {
			case tc.cannot == nil && warn != nil:
				t.Errorf("a warning: %+v", *warn)
			case tc.cannot != nil && warn == nil:
				t.Errorf("no warning of the scripts it cannot draw in %s", buf.String())
			case tc.cannot != nil && !slices.Equal(warn.Scripts, tc.cannot):
				t.Errorf("warns it cannot draw %v, want %v", warn.Scripts, tc.cannot)
			}
		})
	}
}
