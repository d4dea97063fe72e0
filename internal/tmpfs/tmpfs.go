// Package tmpfs gives tests a small filesystem of their own to fill: a
// tmpfs mounted for the test (which takes root) and a filler that leaves
// a chosen amount of free space.
package tmpfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of sizeMiB on a new directory until the test ends
// and returns the directory. Without the right to mount (not root) the
// test is skipped: it cannot be run here.
func Mount(t testing.TB, sizeMiB int) string {
	t.Helper()
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%dm,mode=0755", sizeMiB))
	if errors.Is(err, syscall.EPERM) {
		t.Skip("mounting a tmpfs needs root")
	}
	if err != nil {
		t.Fatalf("mounting a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// Free is the space left to an unprivileged writer on the filesystem of
// dir.
func Free(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Fill writes a file into dir until the filesystem has leave bytes free
// or less (0: until it is full), and returns the file's path: removing
// it gives the space back.
func Fill(t testing.TB, dir string, leave uint64) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		free, err := Free(dir)
		if err != nil {
			t.Fatal(err)
		}
		if free <= leave {
			break
		}
		n := uint64(len(chunk))
		if free-leave < n {
			n = free - leave
		}
		if _, err := f.Write(chunk[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	return filepath.Clean(f.Name())
}
