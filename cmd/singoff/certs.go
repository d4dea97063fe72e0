package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckEvery is how often, at most, the certificate files are
// checked for a change.
const certCheckEvery = time.Second

// certReloader serves the TLS certificate of a certificate and key file
// and reads them again when either file changes (its modification time),
// so a renewed certificate is taken without a restart, and without
// ending the battles in progress.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	every             time.Duration // how often the files are checked

	mu      sync.Mutex
	cert    *tls.Certificate
	mods    [2]time.Time // of the files the certificate was read from
	checked time.Time
}

// newCertReloader reads the certificate once; it must load.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, every: certCheckEvery}
	mods, err := r.modTimes()
	if err != nil {
		return nil, err
	}
	if err := r.load(mods); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) modTimes() ([2]time.Time, error) {
	var mods [2]time.Time
	for i, name := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(name)
		if err != nil {
			return mods, fmt.Errorf("TLS certificate: %w", err)
		}
		mods[i] = st.ModTime()
	}
	return mods, nil
}

// load reads the pair; r.mu is held, or r is not shared yet.
func (r *certReloader) load(mods [2]time.Time) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	r.cert, r.mods = &cert, mods
	return nil
}

// GetCertificate is tls.Config's: the current certificate, read again
// first when its files changed. A pair that does not load (a renewal
// half written) leaves the previous certificate in use until the next
// check.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= r.every {
		r.checked = now
		mods, err := r.modTimes()
		switch {
		case err != nil:
			r.log.Warn("checking the TLS certificate; keeping the one loaded", "err", err)
		case mods != r.mods:
			if err := r.load(mods); err != nil {
				r.log.Warn("reloading the TLS certificate; keeping the one loaded", "err", err)
			} else {
				r.log.Info("TLS certificate reloaded", "file", r.certFile)
			}
		}
	}
	return r.cert, nil
}
