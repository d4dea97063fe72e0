package ingest

import "sync/atomic"

// Stats counts a server's WebRTC traffic since it started, for /metrics.
type Stats struct {
	RTPPacketsIn, RTPBytesIn   uint64 // from publishers
	RTPPacketsOut, RTPBytesOut uint64 // to subscribers
	NACKsIn                    uint64 // NACK reports from subscribers (answered by pion)
	PLIsIn                     uint64 // PLI/FIR from subscribers
	PLIsOut                    uint64 // keyframe requests sent to publishers
	REMBsOut                   uint64 // bitrate caps (REMB) sent to publishers
	FeedDropped                uint64 // units dropped because the compositor was behind
}

// counters are the live Stats, shared by every room of a server.
type counters struct {
	rtpPacketsIn, rtpBytesIn   atomic.Uint64
	rtpPacketsOut, rtpBytesOut atomic.Uint64
	nacksIn, plisIn, plisOut   atomic.Uint64
	rembsOut                   atomic.Uint64
	feedDropped                atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	c := &s.counters
	return Stats{
		RTPPacketsIn: c.rtpPacketsIn.Load(), RTPBytesIn: c.rtpBytesIn.Load(),
		RTPPacketsOut: c.rtpPacketsOut.Load(), RTPBytesOut: c.rtpBytesOut.Load(),
		NACKsIn: c.nacksIn.Load(), PLIsIn: c.plisIn.Load(), PLIsOut: c.plisOut.Load(),
		REMBsOut:    c.rembsOut.Load(),
		FeedDropped: c.feedDropped.Load(),
	}
}
