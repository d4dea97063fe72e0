package recording

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// Names of a recording's files inside its directory.
const (
	playlistName = "index.m3u8"
	initName     = "init.mp4"
	thumbName    = "thumb.jpg"
	tempSuffix   = ".tmp"
)

// segmentName is the file name of segment seq.
func segmentName(seq int) string {
	return fmt.Sprintf("seg%d.m4s", seq)
}

var segmentNameRE = regexp.MustCompile(`^seg[0-9]{1,9}\.m4s$`)

// servedName tells whether name is a file a recording serves. Temporary
// files, and anything else, are never served.
func servedName(name string) bool {
	return name == playlistName || name == initName || name == thumbName || segmentNameRE.MatchString(name)
}

// writeFileAtomic makes dir/name hold data, or leave it as it was: the
// data goes to a temporary file that is synced, then renamed over name,
// and the directory is synced so that the rename survives a crash.
func writeFileAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".*"+tempSuffix)
	if err != nil {
		return err
	}
	// CreateTemp makes files private; recordings are public.
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
