// Package app wires singoff's parts into one server: the store and the
// recordings, the ingest, the live muxers, the compositor's pipelines,
// the battle manager and the HTTP layer. The binary (cmd/singoff)
// configures and runs it; tests build the same server.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/compositor"
	"github.com/singoff/singoff/compositor/overlay"
	"github.com/singoff/singoff/hls"
	"github.com/singoff/singoff/ingest"
	"github.com/singoff/singoff/media"
	"github.com/singoff/singoff/storage"
	"github.com/singoff/singoff/storage/recording"
	"github.com/singoff/singoff/web"
)

// Config is the server's configuration; zero values take the defaults of
// the parts.
type Config struct {
	DataDir string
	// Database is a postgres:// URL; "" keeps the metadata in SQLite
	// in the data dir.
	Database string
	// Recordings is an s3://bucket/prefix?endpoint=… URL; "" keeps the
	// recordings in the data dir.
	Recordings string
	// AdvertiseURL is this origin's base URL as clients and the other
	// origins reach it; it makes this server one of several origins
	// (needed with a shared database).
	AdvertiseURL   string
	WebRTCPort     int
	PublicIPs      []string
	ICEServers     []string
	Loopback       bool
	Preset         string
	VideoBitrate   int
	Grace          time.Duration
	ConnectGrace   time.Duration
	MaxDuration    time.Duration
	TrustedProxies []string
	DiskFloorMB    int
	RetentionDays  int
	MaxLive        int
	MinTurnSeconds int
	// The per-network caps and the expiry of waiting battles (see
	// battle.Config).
	MaxLivePerNetwork    int
	MaxWaitingPerNetwork int
	MaxVotersPerNetwork  int
	WaitingExpiry        time.Duration
	// WatcherKeyFile holds the key that signs watcher identities;
	// default watcher.key in the data dir.
	WatcherKeyFile string
	// VoteGrace and ResultHold time the format (tests shorten them).
	VoteGrace  time.Duration
	ResultHold time.Duration
	Limits     web.Limits
	// FontDirs are where the program's overlay finds its fonts (Noto, by
	// file name); none: Debian's Noto dirs that exist.
	FontDirs []string
	// Logger is tagged with each part's component.
	Logger *slog.Logger
}

// endedRemembered is how many of the latest ended battles the live
// server is told of at start-up.
const endedRemembered = 10_000

// App is a running server, short of its listener.
type App struct {
	Battles    *battle.Manager
	Web        *web.Server
	log        *slog.Logger
	store      storage.Store
	recordings recording.Store
	rtc        *ingest.Server
	cancel     context.CancelFunc
}

// New opens the data dir and starts every part. Close stops them.
func New(ctx context.Context, cfg Config) (_ *App, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger
	part := func(name string) *slog.Logger { return log.With("component", name) }
	a := &App{log: log}
	defer func() {
		if err != nil {
			if a.Battles != nil {
				now, cancel := context.WithCancel(context.Background())
				cancel()
				a.Battles.Close(now)
			}
			a.closeParts()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("making the data dir: %w", err)
	}
	origin, err := advertised(cfg)
	if err != nil {
		return nil, err
	}
	store, changes, err := openStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening the database: %w", err)
	}
	a.store = store
	// The battle manager exists once the recordings do; a recording in
	// trouble before then has nobody to tell.
	trouble := func(id string) {
		if a.Battles != nil {
			a.Battles.RecordingTrouble(context.Background(), id, recordingGaps)
		}
	}
	recordings, err := openRecordings(ctx, cfg, part("recording"), trouble)
	if err != nil {
		return nil, fmt.Errorf("opening the recordings: %w", err)
	}
	a.recordings = recordings
	if err := recoverCrash(ctx, log, store, recordings, origin); err != nil {
		return nil, err
	}
	a.rtc, err = ingest.NewServer(ingest.Config{
		Port:      cfg.WebRTCPort,
		PublicIPs: cfg.PublicIPs,
		Loopback:  cfg.Loopback,
		Logger:    part("ingest"),
	})
	if err != nil {
		return nil, fmt.Errorf("starting the WebRTC ingest: %w", err)
	}
	// The latest ended battles answer 410 on /hls; every other id that
	// is not live 404, without a query.
	ended, err := store.ListBattles(ctx, storage.StateEnded, endedRemembered)
	if err != nil {
		return nil, fmt.Errorf("listing ended battles: %w", err)
	}
	endedIDs := make([]string, len(ended))
	for i, b := range ended {
		endedIDs[i] = b.ID
	}
	live := hls.NewServer(part("hls"), endedIDs)
	overlays, err := newOverlay(cfg.FontDirs, part("compositor"))
	if err != nil {
		return nil, err
	}
	pipelines, err := compositor.NewPipelines(compositor.PipelinesConfig{
		Compositor: compositor.Config{Preset: cfg.Preset, VideoBitrate: cfg.VideoBitrate},
		Live:       liveOutput{live},
		Recordings: recordings,
		DiskFloor:  recording.ErrDiskFloor,
		Overlay:    overlays,
		Logger:     part("compositor"),
	})
	if err != nil {
		return nil, fmt.Errorf("preparing the compositor: %w", err)
	}
	a.Battles = battle.NewManager(battle.Config{
		Store:                store,
		Rooms:                rooms{a.rtc},
		Programs:             programs{pipelines},
		Viewers:              liveOutput{live}.Viewers,
		Grace:                cfg.Grace,
		ConnectGrace:         cfg.ConnectGrace,
		MaxDuration:          cfg.MaxDuration,
		MaxLive:              cfg.MaxLive,
		MaxLivePerNetwork:    cfg.MaxLivePerNetwork,
		MaxWaitingPerNetwork: cfg.MaxWaitingPerNetwork,
		MaxVotersPerNetwork:  cfg.MaxVotersPerNetwork,
		WaitingExpiry:        cfg.WaitingExpiry,
		MinTurnSeconds:       cfg.MinTurnSeconds,
		VoteGrace:            cfg.VoteGrace,
		ResultHold:           cfg.ResultHold,
		Origin:               origin,
		Changes:              changes,
		Orphaned: func(ids []string) {
			for _, id := range ids {
				recordings.Finish(id)
			}
		},
		Logger: part("battle"),
	})
	if err := a.Battles.Join(ctx); err != nil {
		return nil, fmt.Errorf("joining the origins: %w", err)
	}
	bg, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	if cfg.RetentionDays > 0 {
		go recording.RunRetention(bg, recordings, part("recording"), time.Duration(cfg.RetentionDays)*24*time.Hour, time.Hour, func(ids []string) {
			a.Battles.Unrecorded(context.Background(), ids, "the recording was deleted after the retention period")
		})
	}
	keyFile := cfg.WatcherKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "watcher.key")
	}
	watcherKey, err := web.LoadWatcherKey(keyFile)
	if err != nil {
		return nil, err
	}
	a.Web, err = web.New(web.Config{
		Battles: a.Battles,
		Ingest:  a.rtc,
		Live:    live,
		VOD:     recordings.Handler(),
		Metrics: web.MetricsSources{
			Battles: a.Battles, Programs: pipelines, Ingest: a.rtc, Live: live,
			RecordingBytes: recordings.BytesWritten,
		},
		ICEServers:     cfg.ICEServers,
		TrustedProxies: cfg.TrustedProxies,
		AdvertiseURL:   cfg.AdvertiseURL,
		WatcherKey:     watcherKey,
		Limits:         cfg.Limits,
		Logger:         part("web"),
	})
	if err != nil {
		return nil, fmt.Errorf("setting up HTTP: %w", err)
	}
	return a, nil
}

// newOverlay loads the overlay's fonts from dirs (none: Debian's) and
// says what it can draw, and what not.
func newOverlay(dirs []string, log *slog.Logger) (*overlay.Renderer, error) {
	if len(dirs) == 0 {
		dirs = overlay.DefaultFontDirs()
	}
	r, err := overlay.NewRenderer(dirs...)
	if err != nil {
		return nil, fmt.Errorf("loading the overlay's fonts: %w", err)
	}
	c := r.Coverage()
	log.Info("overlay fonts", "dirs", dirs, "files", c.Files, "scripts", c.Scripts, "on_demand", c.OnDemand)
	if len(c.Missing) > 0 {
		log.Warn("the program cannot draw these scripts: names in them show as boxes; install fonts-noto-core, fonts-noto-cjk and fonts-noto-color-emoji, or give --fonts-dir",
			"scripts", c.Missing)
	}
	return r, nil
}

// Handler serves every HTTP surface.
func (a *App) Handler() http.Handler { return a.Web.Handler() }

// Close drains: not ready for new clients, no new battles, live battles
// going on (and watched) until they end or ctx is done; then it ends
// what is left, recordings finished, and stops every part. Serve HTTP
// until it returns.
func (a *App) Close(ctx context.Context) {
	a.Web.Drain()
	a.Battles.Close(ctx)
	a.closeParts()
}

// uploadsGrace is how long a stopping server waits for the recordings'
// uploads; what is left goes up at the next start.
const uploadsGrace = 20 * time.Second

func (a *App) closeParts() {
	if a.cancel != nil {
		a.cancel()
	}
	if a.rtc != nil {
		a.rtc.Close()
	}
	if a.recordings != nil {
		ctx, cancel := context.WithTimeout(context.Background(), uploadsGrace)
		if err := a.recordings.Close(ctx); err != nil {
			a.log.Warn("closing the recordings", "err", err)
		}
		cancel()
	}
	if a.store != nil {
		a.store.Close()
	}
}

// recordingGaps is the battle object's word for a recording that lost
// segments while its store was unreachable.
const recordingGaps = "the recordings store was unreachable for too long: parts of this battle are missing from its recording"

// advertised checks --advertise-url: a base URL (http or https, a host,
// no path), needed with a shared database.
func advertised(cfg Config) (string, error) {
	if cfg.AdvertiseURL == "" {
		if storage.IsPostgresURL(cfg.Database) {
			return "", errors.New("--advertise-url is needed with a shared (postgres://) database: the other origins send this one's battles there")
		}
		return "", nil
	}
	u, err := url.Parse(cfg.AdvertiseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("--advertise-url %q must be http(s)://host[:port]", cfg.AdvertiseURL)
	}
	return u.Scheme + "://" + u.Host, nil
}

// openStore opens the metadata store: PostgreSQL for a postgres:// URL
// (with its changes feed), else SQLite in the data dir.
func openStore(ctx context.Context, cfg Config) (storage.Store, battle.Changes, error) {
	switch {
	case storage.IsPostgresURL(cfg.Database):
		s, err := storage.OpenPostgres(ctx, cfg.Database)
		if err != nil {
			return nil, nil, err
		}
		return s, s, nil
	case cfg.Database != "":
		return nil, nil, errors.New("--database must be a postgres:// URL (or empty for SQLite in the data dir)")
	}
	s, err := storage.OpenSQLite(ctx, cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	return s, nil, nil
}

// openRecordings opens the recordings: an S3 bucket for an s3:// URL
// (staged in the data dir), else the data dir.
func openRecordings(ctx context.Context, cfg Config, log *slog.Logger, trouble func(id string)) (recording.Store, error) {
	local := recording.LocalOptions{MinFreeBytes: uint64(cfg.DiskFloorMB) << 20, Logger: log}
	if cfg.Recordings == "" {
		return recording.NewLocal(filepath.Join(cfg.DataDir, "recordings"), local)
	}
	return recording.OpenS3(ctx, cfg.Recordings, recording.S3Options{
		Staging:      filepath.Join(cfg.DataDir, "recordings-staging"),
		LocalOptions: local,
		BacklogFull:  trouble,
	})
}

// recoverCrash finishes what a crash left open: recordings get their
// ENDLIST, battles of this origin that were live end.
func recoverCrash(ctx context.Context, log *slog.Logger, store storage.Store, recordings recording.Store, origin string) error {
	closed, err := recordings.Recover()
	if err != nil {
		return fmt.Errorf("recovering recordings: %w", err)
	}
	ended, err := store.EndUnfinished(ctx, origin, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("ending battles a crash left live: %w", err)
	}
	if len(closed) > 0 || len(ended) > 0 {
		log.Warn("recovered from an unclean stop", "recordings_closed", strings.Join(closed, ","), "battles_ended", strings.Join(ended, ","))
	}
	return nil
}

// liveOutput adapts the HLS server to the compositor's Live.
type liveOutput struct{ s *hls.Server }

func (l liveOutput) Start(id string, info media.ProgramInfo) (media.Sink, error) {
	return l.s.Start(id, info)
}

func (l liveOutput) Stop(id string) { l.s.End(id) }

// Viewers counts battle id's recent watchers.
func (l liveOutput) Viewers(id string) int {
	if m, ok := l.s.Muxer(id); ok {
		return m.Viewers()
	}
	return 0
}

// rooms adapts the ingest to the battles' Rooms.
type rooms struct{ s *ingest.Server }

func (r rooms) Open(id string, h battle.RoomHooks) (battle.Room, error) {
	room, err := r.s.OpenRoom(id, ingest.Hooks{Admit: h.Admit, Negotiated: h.Negotiated, Connected: h.Connected})
	if err != nil {
		return nil, err
	}
	return ingestRoom{room}, nil
}

type ingestRoom struct{ *ingest.Room }

func (r ingestRoom) Feeds() [2]media.Feed { return [2]media.Feed{r.Feed(1), r.Feed(2)} }

// programs adapts the compositor's pipelines to the battles' Programs.
type programs struct{ p *compositor.Pipelines }

func (p programs) Start(id string, feeds [2]media.Feed) (battle.Program, error) {
	pl, err := p.p.Start(id, feeds)
	if err != nil {
		return nil, err
	}
	return program{pl}, nil
}

type program struct{ *compositor.Pipeline }

func (p program) End() { p.Pipeline.End() }
