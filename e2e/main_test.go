// Package e2e runs the real singoff binary and drives its pages in
// headless Chromium: singers publishing from a fake camera, a watcher on
// LL-HLS, the recording replayed.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the singoff built by TestMain; buildErr says why not.
var (
	binary   string
	buildErr error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "singoff-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "singoff")
	cmd := exec.Command("go", "build", "-o", binary, "github.com/singoff/singoff/cmd/singoff")
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build ./cmd/singoff: %v\n%s", err, out)
	}
	return m.Run()
}

// needBinary fails a test that needs the binary when it did not build.
func needBinary(t testing.TB) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}
