// Package s3test runs a real S3 server for tests: SeaweedFS (`weed
// server -s3`), built once by the Makefile into a cache outside the
// repository (`make weed`), on free loopback ports with its own data
// directory and credentials. It can be stopped and started again on the
// same data, as an outage would.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/singoff/singoff/internal/freeport"
)

// Credentials of the test server's one identity.
const (
	AccessKey = "singoff-test"
	SecretKey = "singoff-test-secret"
)

// Server is a running SeaweedFS S3 server.
type Server struct {
	// Endpoint is its S3 URL (http://127.0.0.1:port).
	Endpoint string
	// Client talks to it with the test credentials.
	Client *minio.Client

	dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// Binary finds the weed binary: SINGOFF_WEED (the Makefile sets it),
// else the newest in the Makefile's cache, ~/.cache/singoff/weed-*.
func Binary() (string, error) {
	if path := os.Getenv("SINGOFF_WEED"); path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("s3test: SINGOFF_WEED: %w (make weed builds it)", err)
		}
		return path, nil
	}
	home, _ := os.UserHomeDir()
	found, _ := filepath.Glob(filepath.Join(home, ".cache", "singoff", "weed-*"))
	found = slices.DeleteFunc(found, func(p string) bool { return filepath.Ext(p) == ".tmp" })
	if len(found) == 0 {
		return "", errors.New("s3test: SeaweedFS is not built: run `make weed` (built once into ~/.cache/singoff, a few minutes)")
	}
	slices.SortFunc(found, func(a, b string) int { return modTime(a).Compare(modTime(b)) })
	return found[len(found)-1], nil
}

func modTime(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// Start runs a server with an empty data directory and waits until it
// takes writes (about 11 s).
func Start(ctx context.Context) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "singoff-s3-")
	if err != nil {
		return nil, fmt.Errorf("s3test: %w", err)
	}
	s := &Server{dir: dir}
	ports := make([]int, 8)
	for i := range ports {
		if ports[i], err = freeport.TCP(ports[:i]...); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	config := filepath.Join(dir, "s3.json")
	identities := fmt.Sprintf(`{"identities":[{"name":"singoff","credentials":[{"accessKey":%q,"secretKey":%q}],`+
		`"actions":["Admin","Read","Write","List","Tagging"]}]}`, AccessKey, SecretKey)
	if err := os.WriteFile(config, []byte(identities), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("s3test: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("s3test: %w", err)
	}
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	s.args = []string{bin, "server", "-dir=" + filepath.Join(dir, "data"), "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + p(0), "-master.port.grpc=" + p(1), "-volume.port=" + p(2), "-volume.port.grpc=" + p(3),
		"-filer.port=" + p(4), "-filer.port.grpc=" + p(5), "-s3", "-s3.port=" + p(6), "-s3.port.grpc=" + p(7),
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-iam=false",
		"-master.volumeSizeLimitMB=64", "-volume.max=100", "-master.electionTimeout=1s", "-s3.config=" + config}
	s.Endpoint = "http://127.0.0.1:" + p(6)
	s.Client, err = minio.New("127.0.0.1:"+p(6), &minio.Options{
		Creds:        credentials.NewStaticV4(AccessKey, SecretKey, ""),
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("s3test: %w", err)
	}
	if err := s.Restart(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Restart starts the server (again, on its data) and waits until it
// takes writes.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	s.starts++
	logFile, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("weed-%d.log", s.starts)))
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("s3test: %w", err)
	}
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The server goes with the test process, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		s.mu.Unlock()
		return fmt.Errorf("s3test: starting weed: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	first := s.starts == 1
	s.mu.Unlock()

	// Ready when a write goes through.
	for {
		probe, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.write(probe, first)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("s3test: weed exited: see %s", logFile.Name())
		case <-ctx.Done():
			return fmt.Errorf("s3test: weed takes no writes (%v): see %s", err, logFile.Name())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// write writes to the probe bucket, making it at the first start.
func (s *Server) write(ctx context.Context, first bool) error {
	const bucket = "singoff-probe"
	if first {
		if err := s.Client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
			if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return err
			}
		}
	}
	_, err := s.Client.PutObject(ctx, bucket, "probe", strings.NewReader("ok"), 2, minio.PutObjectOptions{})
	return err
}

// Stop stops the server at once, as an outage would (weed's graceful
// stop takes over 15 s); its data stays, for Restart.
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil {
		return fmt.Errorf("s3test: stopping weed: %w", err)
	}
	<-exited
	return nil
}

// Close stops the server and removes its data.
func (s *Server) Close() error {
	return errors.Join(s.Stop(), os.RemoveAll(s.dir))
}

// NewBucket makes a bucket of its own for a test.
func (s *Server) NewBucket(ctx context.Context, name string) error {
	return s.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{})
}

// URL is the --recordings URL of prefix in bucket.
func (s *Server) URL(bucket, prefix string) string {
	return "s3://" + bucket + "/" + prefix + "?endpoint=" + url.QueryEscape(s.Endpoint)
}

// Env is the environment that gives a process the test credentials.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey}
}
