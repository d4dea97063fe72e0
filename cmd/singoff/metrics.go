package main

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/hls"
	"github.com/singoff/singoff/ingest"
	"github.com/singoff/singoff/storage/recording"
)

// metricsHandler serves /metrics: each figure is read from the part that
// keeps it when Prometheus scrapes, so nothing is counted twice.
func metricsHandler(m *battle.Manager, rtc *ingest.Server, live *hls.Server, rec *recording.Local, errs *errorCounter) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "singoff", Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "singoff", Name: name, Help: help}, f))
	}

	gauge("battles_live", "Battles whose program is running.", func() float64 { return float64(m.Snapshot().Live) })
	gauge("battles_waiting", "Battles with a room but no program yet.", func() float64 { return float64(m.Snapshot().Waiting) })
	gauge("singers_connected", "Singers publishing now.", func() float64 { return float64(m.Snapshot().SingersConnected) })
	gauge("viewers", "Distinct HLS watchers of the last 30 s, all battles.", func() float64 { return float64(m.Snapshot().Viewers) })
	counter("program_frames_total", "Program video frames encoded.", func() float64 { return float64(m.Snapshot().Program.FramesOut) })
	counter("program_frames_dropped_total", "Program frame ticks skipped to stay on the clock.", func() float64 { return float64(m.Snapshot().Program.FramesDropped) })
	counter("program_audio_frames_total", "Program AAC frames encoded.", func() float64 { return float64(m.Snapshot().Program.AudioFramesOut) })
	counter("program_encode_seconds_total", "Time spent composing and encoding programs.", func() float64 { return m.Snapshot().Program.EncodeTime.Seconds() })

	counter("rtp_packets_in_total", "RTP packets received from singers.", func() float64 { return float64(rtc.Stats().RTPPacketsIn) })
	counter("rtp_bytes_in_total", "RTP payload bytes received from singers.", func() float64 { return float64(rtc.Stats().RTPBytesIn) })
	counter("rtp_packets_out_total", "RTP packets forwarded to subscribers.", func() float64 { return float64(rtc.Stats().RTPPacketsOut) })
	counter("rtp_bytes_out_total", "RTP payload bytes forwarded to subscribers.", func() float64 { return float64(rtc.Stats().RTPBytesOut) })
	counter("rtcp_nacks_in_total", "NACK reports from subscribers.", func() float64 { return float64(rtc.Stats().NACKsIn) })
	counter("rtcp_plis_in_total", "Keyframe requests (PLI/FIR) from subscribers.", func() float64 { return float64(rtc.Stats().PLIsIn) })
	counter("rtcp_plis_out_total", "Keyframe requests sent to singers.", func() float64 { return float64(rtc.Stats().PLIsOut) })
	counter("feed_units_dropped_total", "Media units dropped because a compositor was behind.", func() float64 { return float64(rtc.Stats().FeedDropped) })

	hlsRequests := func(kind string, f func(hls.Stats) uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "singoff", Name: "hls_requests_total", Help: "LL-HLS requests served, by kind.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(f(live.Stats())) }))
	}
	hlsRequests("playlist", func(s hls.Stats) uint64 { return s.PlaylistRequests })
	hlsRequests("init", func(s hls.Stats) uint64 { return s.InitRequests })
	hlsRequests("part", func(s hls.Stats) uint64 { return s.PartRequests })
	hlsRequests("segment", func(s hls.Stats) uint64 { return s.SegmentRequests })
	counter("hls_bytes_out_total", "LL-HLS bytes served.", func() float64 { return float64(live.Stats().BytesOut) })
	counter("recording_bytes_total", "Recording segment bytes written.", func() float64 { return float64(rec.BytesWritten()) })

	reg.MustRegister(errs.vec)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// errorCounter counts HTTP answers by class, so a rise in refusals or
// failures shows on a dashboard.
type errorCounter struct{ vec *prometheus.CounterVec }

func newErrorCounter() *errorCounter {
	return &errorCounter{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "singoff", Name: "http_errors_total", Help: "HTTP answers of status 400 and above, by status.",
	}, []string{"status"})}
}

// observe is gin middleware.
func (e *errorCounter) observe(status int) {
	if status >= 400 {
		e.vec.WithLabelValues(strconv.Itoa(status)).Inc()
	}
}
