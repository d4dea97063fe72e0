package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/singoff/singoff/internal/app"
	"github.com/singoff/singoff/web"
)

type serveConfig struct {
	listen         string
	dataDir        string
	webrtcPort     int
	publicIPs      listFlag
	iceServers     listFlag
	loopback       bool
	tlsCert        string
	tlsKey         string
	preset         string
	videoBitrate   int
	grace          time.Duration
	connectGrace   time.Duration
	maxDuration    time.Duration
	drainTimeout   time.Duration
	trustedProxies listFlag
	diskFloorMB    int
	retentionDays  int
	demo           bool
	minTurnSeconds int
	maxLive        int
	database       string
	recordings     string
	advertiseURL   string
	fontsDirs      listFlag

	maxLivePerNetwork     int
	maxWaitingPerNetwork  int
	maxVotersPerNetwork   int
	waitingExpiry         time.Duration
	maxEventStreams       int
	maxEventStreamsPerNet int
	watcherKeyFile        string
}

func serveFlags(args []string) (*serveConfig, error) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", ":8080", "HTTP listen address")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "where the database and recordings live")
	fs.IntVar(&c.webrtcPort, "webrtc-port", 8189, "WebRTC port, UDP and TCP (0: any free port)")
	fs.Var(&c.publicIPs, "public-ip", "public IP to advertise in ICE candidates (repeatable; NAT 1:1)")
	fs.Var(&c.iceServers, "ice-server", "STUN/TURN server handed to the pages: stun:host:port or turn://user:password@host:port?transport=udp (repeatable)")
	fs.BoolVar(&c.loopback, "loopback", false, "ICE on 127.0.0.1 only (tests)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (serve HTTPS; needs --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS key file")
	fs.StringVar(&c.preset, "preset", "veryfast", "x264 preset of the program")
	fs.IntVar(&c.videoBitrate, "video-bitrate", 2_500_000, "program video bitrate, bit/s")
	fs.DurationVar(&c.grace, "grace", 10*time.Minute, "how long a live battle may have no singer before it ends")
	fs.DurationVar(&c.connectGrace, "connect-grace", time.Minute, "how long a battle that went live may wait for its first singer's connection")
	fs.DurationVar(&c.maxDuration, "max-duration", 2*time.Hour, "longest a battle may run")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long live battles may go on before they are ended")
	fs.Var(&c.trustedProxies, "trusted-proxy", "IP or CIDR of a proxy whose X-Forwarded-* headers are believed (repeatable; default none)")
	fs.IntVar(&c.diskFloorMB, "disk-floor-mb", 1024, "free disk (MiB) below which battles are not recorded")
	fs.IntVar(&c.retentionDays, "retention-days", 0, "delete recordings older than this many days (0: keep forever)")
	fs.BoolVar(&c.demo, "demo", false, "start a demo battle with two synthetic singers")
	fs.IntVar(&c.maxLive, "max-live-battles", 8, "battles live at once; a first publish past it gets 503")
	fs.IntVar(&c.minTurnSeconds, "min-turn-seconds", 30, "shortest turn a battle may ask for (tests lower it)")
	fs.StringVar(&c.database, "database", "", "a postgres:// URL shared by several origins (default: SQLite in the data dir)")
	fs.StringVar(&c.recordings, "recordings", "", "an s3://bucket/prefix?endpoint=… URL (keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; default: the data dir)")
	fs.StringVar(&c.advertiseURL, "advertise-url", "", "this origin's base URL as clients and the other origins reach it (needed with a shared database); the base of the URLs the API returns")
	fs.IntVar(&c.maxLivePerNetwork, "max-live-per-network", 4, "live battles created from one client network (IPv4 /24, IPv6 /64); a first publish past it gets 429")
	fs.IntVar(&c.maxWaitingPerNetwork, "max-waiting-per-network", 50, "waiting battles created from one client network; a creation past it gets 429")
	fs.IntVar(&c.maxVotersPerNetwork, "max-voters-per-network", 20, "watchers of one client network whose votes count in a round")
	fs.DurationVar(&c.waitingExpiry, "waiting-expiry", time.Hour, "a battle nobody published to ends this long after its creation")
	fs.IntVar(&c.maxEventStreams, "max-event-streams", 20_000, "events streams open at once on the server; past it 503")
	fs.IntVar(&c.maxEventStreamsPerNet, "max-event-streams-per-network", 200, "events streams open at once from one client network; past it 429")
	fs.StringVar(&c.watcherKeyFile, "watcher-key-file", "", "file of the key that signs watchers' identities (made if missing; origins sharing their watchers share it); default watcher.key in the data dir")
	fs.Var(&c.fontsDirs, "fonts-dir", "where the program's overlay finds its fonts (Noto, by file name; repeatable; default: Debian's /usr/share/fonts/opentype/noto and /usr/share/fonts/truetype/noto)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	return c, nil
}

func serve(ctx context.Context, log *slog.Logger, args []string) error {
	cfg, err := serveFlags(args)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, app.Config{
		DataDir:        cfg.dataDir,
		WebRTCPort:     cfg.webrtcPort,
		PublicIPs:      cfg.publicIPs,
		ICEServers:     cfg.iceServers,
		Loopback:       cfg.loopback,
		Preset:         cfg.preset,
		VideoBitrate:   cfg.videoBitrate,
		Grace:          cfg.grace,
		ConnectGrace:   cfg.connectGrace,
		MaxDuration:    cfg.maxDuration,
		TrustedProxies: cfg.trustedProxies,
		DiskFloorMB:    cfg.diskFloorMB,
		RetentionDays:  cfg.retentionDays,
		MaxLive:        cfg.maxLive,
		MinTurnSeconds: cfg.minTurnSeconds,
		Database:       cfg.database,
		Recordings:     cfg.recordings,
		AdvertiseURL:   cfg.advertiseURL,
		FontDirs:       cfg.fontsDirs,

		MaxLivePerNetwork:    cfg.maxLivePerNetwork,
		MaxWaitingPerNetwork: cfg.maxWaitingPerNetwork,
		MaxVotersPerNetwork:  cfg.maxVotersPerNetwork,
		WaitingExpiry:        cfg.waitingExpiry,
		WatcherKeyFile:       cfg.watcherKeyFile,
		Limits:               web.Limits{EventStreams: cfg.maxEventStreams, EventStreamsPerNetwork: cfg.maxEventStreamsPerNet},
		Logger:               log,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Blocking playlist requests and the events stream set their own
		// deadlines; everything else has this one.
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  120 * time.Second,
		ErrorLog:     slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
	}
	if cfg.tlsCert != "" {
		certs, err := newCertReloader(cfg.tlsCert, cfg.tlsKey, log.With("component", "http"))
		if err != nil {
			stopNow(a)
			return err
		}
		srv.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		stopNow(a)
		return fmt.Errorf("listening for HTTP: %w", err)
	}
	errc := make(chan error, 1)
	scheme := "http"
	go func() {
		if cfg.tlsCert != "" {
			errc <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + displayAddr(ln.Addr().String())
	log.Info("singoff serving", "url", base, "data_dir", cfg.dataDir, "webrtc_port", cfg.webrtcPort, "loopback", cfg.loopback,
		"advertise_url", cfg.advertiseURL)
	if cfg.demo {
		go runDemo(ctx, log, base, cfg.loopback, a.Battles)
	}

	select {
	case err := <-errc:
		stopNow(a)
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	// Drain: live battles go on, and are watched, until they end or the
	// drain times out; HTTP stops after them.
	log.Info("draining", "timeout", cfg.drainTimeout)
	drain, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
	defer cancel()
	a.Close(drain)
	shutdown, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Warn("HTTP connections cut at shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}

// stopNow ends what is live at once and stops every part.
func stopNow(a *app.App) {
	now, cancel := context.WithCancel(context.Background())
	cancel()
	a.Close(now)
}

// displayAddr makes a listen address into one a browser can open.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
