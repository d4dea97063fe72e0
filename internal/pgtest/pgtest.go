// Package pgtest runs a private PostgreSQL server for tests: a cluster
// made by Debian's initdb in a temporary directory, listening on a free
// loopback port, removed by Stop. Each test takes a database of its own
// (NewDatabase).
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of the admin connection
	"github.com/singoff/singoff/internal/freeport"
)

// Server is a running private PostgreSQL server.
type Server struct {
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
	admin  *sql.DB
	made   atomic.Int64
}

// Options tune the server.
type Options struct {
	// Durable keeps PostgreSQL's own durability (fsync, full pages) and
	// only leaves commits unsynced, as SQLite's WAL mode with
	// synchronous=NORMAL does: for benchmarks that compare the two. By
	// default the server syncs nothing, which tests need not pay for.
	Durable bool
}

// binDir finds the newest Debian PostgreSQL (SINGOFF_PG_BIN overrides).
func binDir() (string, error) {
	if dir := os.Getenv("SINGOFF_PG_BIN"); dir != "" {
		return dir, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", errors.New("pgtest: PostgreSQL is not installed (make deps installs Debian's postgresql), or set SINGOFF_PG_BIN")
	}
	slices.SortFunc(found, func(a, b string) int { return version(a) - version(b) })
	return filepath.Dir(found[len(found)-1]), nil
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Start makes a cluster and runs its server until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "singoff-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, exited: make(chan struct{}), log: filepath.Join(dir, "server.log")}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	// PostgreSQL refuses to run as root: root runs it as postgres.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	if s.port, err = freeport.TCP(); err != nil {
		return nil, err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(s.port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "synchronous_commit=off"}
	if !opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off")
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer logFile.Close()
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// The server goes with the test process, however that ends.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgtest: starting postgres: %w", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	s.admin, err = sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	for {
		err := s.admin.PingContext(ctx)
		if err == nil {
			break
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("pgtest: postgres exited: %s", s.serverLog())
		case <-ctx.Done():
			return nil, fmt.Errorf("pgtest: postgres not ready: %v\n%s", err, s.serverLog())
		case <-time.After(50 * time.Millisecond):
		}
	}
	ok = true
	return s, nil
}

func (s *Server) serverLog() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// URL is the connection URL of database on the server.
func (s *Server) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, database)
}

// NewDatabase creates an empty database and returns its URL.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), s.made.Add(1))
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: creating database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// Stop shuts the server down (fast: open sessions are cut) and removes
// its cluster.
func (s *Server) Stop() error {
	if s.admin != nil {
		s.admin.Close()
	}
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			err = errors.New("pgtest: postgres did not stop within 15 s; killed")
		}
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// shared is the server the tests of one test binary share.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// NewTestDatabase makes an empty database for a test, on a server the
// tests of its package share, started at first use (no fsync). The
// package's TestMain calls StopShared after its tests.
func NewTestDatabase(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.srv, shared.err = Start(ctx, Options{})
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	url, err := shared.srv.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// StopShared stops the shared server if it was started.
func StopShared() {
	if shared.srv != nil {
		shared.srv.Stop()
	}
}
