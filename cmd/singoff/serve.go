package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/compositor"
	"github.com/singoff/singoff/hls"
	"github.com/singoff/singoff/ingest"
	"github.com/singoff/singoff/media"
	"github.com/singoff/singoff/storage"
	"github.com/singoff/singoff/storage/recording"
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
	maxDuration    time.Duration
	trustedProxies listFlag
	diskFloorMB    int
	retentionDays  int
	demo           bool
	minTurnSeconds int
	maxLive        int
}

func serveFlags(args []string) (*serveConfig, error) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", ":8080", "HTTP listen address")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "where the database and recordings live")
	fs.IntVar(&c.webrtcPort, "webrtc-port", 8189, "WebRTC port, UDP and TCP (0: any free port)")
	fs.Var(&c.publicIPs, "public-ip", "public IP to advertise in ICE candidates (repeatable; NAT 1:1)")
	fs.Var(&c.iceServers, "ice-server", "STUN/TURN URL handed to clients (repeatable)")
	fs.BoolVar(&c.loopback, "loopback", false, "ICE on 127.0.0.1 only (tests)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (serve HTTPS; needs --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS key file")
	fs.StringVar(&c.preset, "preset", "veryfast", "x264 preset of the program")
	fs.IntVar(&c.videoBitrate, "video-bitrate", 2_500_000, "program video bitrate, bit/s")
	fs.DurationVar(&c.grace, "grace", 10*time.Minute, "how long a live battle may have no singer before it ends")
	fs.DurationVar(&c.maxDuration, "max-duration", 2*time.Hour, "longest a battle may run")
	fs.Var(&c.trustedProxies, "trusted-proxy", "CIDR of a proxy whose X-Forwarded-* headers are honoured (repeatable; default loopback)")
	fs.IntVar(&c.diskFloorMB, "disk-floor-mb", 1024, "free disk (MiB) below which battles are not recorded")
	fs.IntVar(&c.retentionDays, "retention-days", 0, "delete recordings older than this many days (0: keep forever)")
	fs.BoolVar(&c.demo, "demo", false, "start a demo battle with two synthetic singers")
	fs.IntVar(&c.maxLive, "max-live-battles", 8, "battles live at once; a publish past it gets 503")
	fs.IntVar(&c.minTurnSeconds, "min-turn-seconds", 30, "shortest turn a battle may ask for (tests lower it)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if len(c.trustedProxies) == 0 {
		c.trustedProxies = listFlag{"127.0.0.0/8", "::1/128"}
	}
	return c, nil
}

func serve(ctx context.Context, log *slog.Logger, args []string) error {
	cfg, err := serveFlags(args)
	if err != nil {
		return err
	}
	var trusted []netip.Prefix
	for _, s := range cfg.trustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("--trusted-proxy %q: %w", s, err)
		}
		trusted = append(trusted, p)
	}
	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	store, err := storage.OpenSQLite(ctx, cfg.dataDir)
	if err != nil {
		return err
	}
	defer store.Close()

	recordings, err := recording.NewLocal(filepath.Join(cfg.dataDir, "recordings"), recording.LocalOptions{
		MinFreeBytes: uint64(cfg.diskFloorMB) << 20,
		Logger:       log.With("component", "recording"),
	})
	if err != nil {
		return err
	}
	if err := recoverCrash(ctx, log, store, recordings); err != nil {
		return err
	}
	if cfg.retentionDays > 0 {
		go purgeLoop(ctx, log, store, recordings, time.Duration(cfg.retentionDays)*24*time.Hour)
	}

	rtc, err := ingest.NewServer(ingest.Config{
		Port:       cfg.webrtcPort,
		PublicIPs:  cfg.publicIPs,
		ICEServers: cfg.iceServers,
		Loopback:   cfg.loopback,
		Logger:     log.With("component", "ingest"),
	})
	if err != nil {
		return err
	}
	defer rtc.Close()

	endedBefore := func(id string) bool {
		b, err := store.GetBattle(context.Background(), id)
		return err == nil && b.State == storage.StateEnded
	}
	live := hls.NewServer(log.With("component", "hls"), endedBefore)

	manager, err := battle.NewManager(battle.Config{
		Store:  store,
		Ingest: rtc,
		NewProgram: func(left, right media.Feed) (battle.Program, error) {
			return compositor.New(compositor.Config{
				Preset:       cfg.preset,
				VideoBitrate: cfg.videoBitrate,
				Logger:       log.With("component", "compositor"),
			}, left, right)
		},
		Live:        liveOutput{live},
		Recordings:  recordingsAdapter{recordings},
		MaxLive:     cfg.maxLive,
		Grace:       cfg.grace,
		MaxDuration: cfg.maxDuration,
		Logger:      log,
	})
	if err != nil {
		return err
	}
	api := battle.NewAPI(manager, battle.Limits{TrustedProxies: trusted, MinTurnSeconds: cfg.minTurnSeconds})

	gin.SetMode(gin.ReleaseMode)
	router := gin.New()
	errs := newErrorCounter()
	router.Use(gin.Recovery(), func(c *gin.Context) {
		c.Next()
		errs.observe(c.Writer.Status())
	})
	if err := router.SetTrustedProxies(cfg.trustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxy: %w", err)
	}
	api.Register(router)
	router.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	// Ready once start-up (recovery, database) is done, which it is by
	// the time the listener accepts; not ready while shutting down.
	var shuttingDown atomic.Bool
	router.GET("/readyz", func(c *gin.Context) {
		if shuttingDown.Load() {
			c.String(http.StatusServiceUnavailable, "shutting down\n")
			return
		}
		c.String(http.StatusOK, "ready\n")
	})
	router.GET("/metrics", gin.WrapH(metricsHandler(manager, rtc, live, recordings, errs)))
	router.Any("/hls/*path", gin.WrapH(live.Handler()))
	router.Any("/vod/*path", gin.WrapH(recordings.Handler()))
	pages := gin.WrapH(web.Handler())
	router.NoRoute(api.NotFoundOr(pages))

	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Blocking playlist requests and the events stream set their own
		// deadlines; everything else has this one.
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  120 * time.Second,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	scheme := "http"
	errc := make(chan error, 1)
	go func() {
		if cfg.tlsCert != "" {
			errc <- srv.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + displayAddr(ln.Addr().String())
	log.Info("singoff serving", "url", base, "data_dir", cfg.dataDir, "webrtc_port", cfg.webrtcPort, "loopback", cfg.loopback)

	if cfg.demo {
		go runDemo(ctx, log, base, cfg.loopback, manager)
	}

	select {
	case err := <-errc:
		manager.Close()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shuttingDown.Store(true)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	manager.Close()
	log.Info("stopped")
	return nil
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

// recoverCrash finishes what a crash left open: recordings get their
// ENDLIST, battles that were live end.
func recoverCrash(ctx context.Context, log *slog.Logger, store storage.Store, recordings *recording.Local) error {
	closed, err := recordings.Recover()
	if err != nil {
		return fmt.Errorf("recovering recordings: %w", err)
	}
	ended, err := store.EndUnfinished(ctx, time.Now().UTC())
	if err != nil {
		return err
	}
	if len(closed) > 0 || len(ended) > 0 {
		log.Warn("recovered from an unclean stop", "recordings_closed", strings.Join(closed, ","), "battles_ended", strings.Join(ended, ","))
	}
	return nil
}

// purgeLoop deletes recordings past the retention age, hourly, and
// clears their battles' vod_url.
func purgeLoop(ctx context.Context, log *slog.Logger, store storage.Store, recordings *recording.Local, age time.Duration) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		ids, err := recordings.Purge(age)
		if err != nil {
			log.Error("purging old recordings", "err", err)
		}
		for _, id := range ids {
			b, err := store.GetBattle(ctx, id)
			if err != nil {
				continue
			}
			b.Recorded = false
			b.RecordingError = "recording deleted after the retention period"
			if err := store.UpdateBattle(ctx, b); err != nil {
				log.Error("clearing a purged recording", "battle", id, "err", err)
			}
		}
		if len(ids) > 0 {
			log.Info("deleted old recordings", "battles", strings.Join(ids, ","))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// liveOutput adapts the HLS server to the battle's LiveOutput.
type liveOutput struct{ s *hls.Server }

func (l liveOutput) Start(id string, info media.ProgramInfo) (media.Sink, error) {
	return l.s.Start(id, info)
}

func (l liveOutput) Stop(id string) { l.s.End(id) }

func (l liveOutput) Viewers(id string) int {
	if m, ok := l.s.Muxer(id); ok {
		return m.Viewers()
	}
	return 0
}

// recordingsAdapter adapts the recording store to the battle's Recordings.
type recordingsAdapter struct{ s *recording.Local }

func (r recordingsAdapter) Create(id string, info media.ProgramInfo) (media.Recorder, error) {
	return r.s.Create(id, info)
}
