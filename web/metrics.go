package web

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/compositor"
	"github.com/singoff/singoff/hls"
	"github.com/singoff/singoff/ingest"
)

// MetricsSources are the parts /metrics reads at every scrape, each the
// one that keeps its figures, so nothing is counted twice.
type MetricsSources struct {
	Battles        interface{ Stats() battle.Stats }
	Programs       interface{ Totals() compositor.Totals }
	Ingest         interface{ Stats() ingest.Stats }
	Live           interface{ Stats() hls.Stats }
	RecordingBytes func() uint64
}

// metricsHandler serves /metrics.
func metricsHandler(src MetricsSources, errs *statusCounter, votes *voteCounter) http.Handler {
	rtc, live := src.Ingest, src.Live
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "singoff", Name: name, Help: help}, f))
	}

	reg.MustRegister(battleCollector{src.Battles, src.Programs})

	counter("rtp_packets_in_total", "RTP packets received from singers.", func() float64 { return float64(rtc.Stats().RTPPacketsIn) })
	counter("rtp_bytes_in_total", "RTP payload bytes received from singers.", func() float64 { return float64(rtc.Stats().RTPBytesIn) })
	counter("rtp_packets_out_total", "RTP packets forwarded to subscribers.", func() float64 { return float64(rtc.Stats().RTPPacketsOut) })
	counter("rtp_bytes_out_total", "RTP payload bytes forwarded to subscribers.", func() float64 { return float64(rtc.Stats().RTPBytesOut) })
	counter("rtcp_nacks_in_total", "NACK reports from subscribers.", func() float64 { return float64(rtc.Stats().NACKsIn) })
	counter("rtcp_plis_in_total", "Keyframe requests (PLI/FIR) from subscribers.", func() float64 { return float64(rtc.Stats().PLIsIn) })
	counter("rtcp_plis_out_total", "Keyframe requests sent to singers.", func() float64 { return float64(rtc.Stats().PLIsOut) })
	counter("rtcp_rembs_out_total", "Bitrate caps (REMB) sent to singers.", func() float64 { return float64(rtc.Stats().REMBsOut) })
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
	counter("hls_muxer_answers_total", "LL-HLS answers the muxer made; identical requests in flight together share one.",
		func() float64 { return float64(live.Stats().MuxerAnswers) })
	counter("recording_bytes_total", "Recording segment bytes written.", func() float64 { return float64(src.RecordingBytes()) })

	reg.MustRegister(errs.vec)
	reg.MustRegister(votes.collectors()...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// battleCollector reads the battles' and programs' figures once per
// scrape.
type battleCollector struct {
	battles  interface{ Stats() battle.Stats }
	programs interface{ Totals() compositor.Totals }
}

var battleMetrics = struct {
	live, waiting, singers, viewers, frames, repeated, audioFrames, encodeSeconds *prometheus.Desc
}{
	live:          prometheus.NewDesc("singoff_battles_live", "Battles whose program is running.", nil, nil),
	waiting:       prometheus.NewDesc("singoff_battles_waiting", "Battles with a room but no program yet.", nil, nil),
	singers:       prometheus.NewDesc("singoff_singers_connected", "Singers publishing now.", nil, nil),
	viewers:       prometheus.NewDesc("singoff_viewers", "Distinct HLS watchers of the last 30 s, all battles.", nil, nil),
	frames:        prometheus.NewDesc("singoff_program_frames_total", "Program video frames encoded.", nil, nil),
	repeated:      prometheus.NewDesc("singoff_program_frames_repeated_total", "Program frames that repeated the last picture because the program was behind its clock.", nil, nil),
	audioFrames:   prometheus.NewDesc("singoff_program_audio_frames_total", "Program AAC frames encoded.", nil, nil),
	encodeSeconds: prometheus.NewDesc("singoff_program_encode_seconds_total", "Time spent composing and encoding programs.", nil, nil),
}

func (battleCollector) Describe(ch chan<- *prometheus.Desc) {
	d := battleMetrics
	for _, desc := range []*prometheus.Desc{d.live, d.waiting, d.singers, d.viewers, d.frames, d.repeated, d.audioFrames, d.encodeSeconds} {
		ch <- desc
	}
}

func (c battleCollector) Collect(ch chan<- prometheus.Metric) {
	s, p, d := c.battles.Stats(), c.programs.Totals(), battleMetrics
	for _, v := range []struct {
		desc  *prometheus.Desc
		kind  prometheus.ValueType
		value float64
	}{
		{d.live, prometheus.GaugeValue, float64(s.Live)},
		{d.waiting, prometheus.GaugeValue, float64(s.Waiting)},
		{d.singers, prometheus.GaugeValue, float64(s.SingersConnected)},
		{d.viewers, prometheus.GaugeValue, float64(s.Viewers)},
		{d.frames, prometheus.CounterValue, float64(p.FramesOut)},
		{d.repeated, prometheus.CounterValue, float64(p.FramesRepeated)},
		{d.audioFrames, prometheus.CounterValue, float64(p.AudioFramesOut)},
		{d.encodeSeconds, prometheus.CounterValue, p.EncodeTime.Seconds()},
	} {
		ch <- prometheus.MustNewConstMetric(v.desc, v.kind, v.value)
	}
}

// statusCounter counts HTTP answers of status 400 and above, so a rise
// in refusals or failures shows on a dashboard.
type statusCounter struct{ vec *prometheus.CounterVec }

func newStatusCounter() *statusCounter {
	return &statusCounter{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "singoff", Name: "http_errors_total", Help: "HTTP answers of status 400 and above, by status.",
	}, []string{"status"})}
}

// count is gin middleware.
func (e *statusCounter) count(c *gin.Context) {
	c.Next()
	if status := c.Writer.Status(); status >= 400 {
		e.vec.WithLabelValues(strconv.Itoa(status)).Inc()
	}
}
