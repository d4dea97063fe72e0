package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/singoff/singoff/battle"
	"github.com/singoff/singoff/internal/httpjson"
)

// A vote counts only when it comes from the battle's own pages, as JSON,
// from a watcher identity issued before the round opened, within its
// network's cap for the round. Each refusal is counted by its reason in
// /metrics.

// Why a vote was refused: the values of the reason label.
const (
	voteCrossSite   = "cross_site"   // another site's page sent it
	voteContentType = "content_type" // not application/json
	voteMalformed   = "malformed"    // not a vote's JSON body
	voteNoWatcher   = "no_watcher"   // no valid watcher identity
	voteLateWatcher = "late_watcher" // identity issued after the round opened
	voteNetworkCap  = "network_cap"  // the network's voters of the round are counted already
	voteRateLimit   = "rate_limit"   // the network's vote rate limit
	voteClosed      = "closed"       // not started, voting closed, ended
	voteOther       = "other"        // unknown battle, server error
)

// voteCounter counts votes, accepted and refused.
type voteCounter struct {
	accepted prometheus.Counter
	refused  *prometheus.CounterVec
}

func newVoteCounter() *voteCounter {
	v := &voteCounter{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "singoff", Name: "votes_total", Help: "Votes counted.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "singoff", Name: "votes_refused_total", Help: "Votes refused, by reason.",
		}, []string{"reason"}),
	}
	for _, r := range []string{voteCrossSite, voteContentType, voteMalformed, voteNoWatcher, voteLateWatcher,
		voteNetworkCap, voteRateLimit, voteClosed, voteOther} {
		v.refused.WithLabelValues(r) // every reason shows, at 0
	}
	return v
}

func (v *voteCounter) collectors() []prometheus.Collector {
	return []prometheus.Collector{v.accepted, v.refused}
}

// voteLimit is the votes' rate limit, its refusals counted.
func (a *api) voteLimit(c *gin.Context) {
	a.limits.votes.middleware(c)
	if c.IsAborted() {
		a.votes.refused.WithLabelValues(voteRateLimit).Inc()
	}
}

// vote serves POST /api/battles/{id}/votes.
func (a *api) vote(c *gin.Context) {
	refuse := func(reason string, status int, format string, args ...any) {
		a.votes.refused.WithLabelValues(reason).Inc()
		httpjson.Error(c.Writer, status, format, args...)
	}
	if a.srv.crossSite(c) {
		refuse(voteCrossSite, http.StatusForbidden, "votes are taken from this site's pages only")
		return
	}
	if c.ContentType() != "application/json" {
		refuse(voteContentType, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	body, ok := httpjson.ReadBody(c.Writer, c.Request)
	if !ok {
		a.votes.refused.WithLabelValues(voteMalformed).Inc()
		return
	}
	slot, err := parseVote(body)
	if err != nil {
		refuse(voteMalformed, http.StatusBadRequest, "%v", err)
		return
	}
	w, ok := a.srv.watchers.watcherOf(c)
	if !ok {
		refuse(voteNoWatcher, http.StatusForbidden, "votes count from the battle's watch page: open /b/%s to vote", c.Param("id"))
		return
	}
	err = a.battles.Vote(c.Request.Context(), c.Param("id"), battle.VoteRequest{
		Watcher: w.id, IssuedAt: w.issued, Network: clientNetworkName(c), Slot: slot,
	})
	switch {
	case err == nil:
		a.votes.accepted.Inc()
		c.Status(http.StatusNoContent)
		return
	case errors.Is(err, battle.ErrLateWatcher):
		refuse(voteLateWatcher, http.StatusForbidden, "%v", err)
		return
	case errors.Is(err, battle.ErrNetworkLimit):
		a.votes.refused.WithLabelValues(voteNetworkCap).Inc()
	case errors.Is(err, battle.ErrEnded), errors.Is(err, battle.ErrNotStarted), errors.Is(err, battle.ErrVotingShut):
		a.votes.refused.WithLabelValues(voteClosed).Inc()
	default:
		a.votes.refused.WithLabelValues(voteOther).Inc()
	}
	a.battleError(c, err)
}

// crossSite tells whether a browser sent the request from another
// site's page: Sec-Fetch-Site says so, or Origin names a host other than
// the one the request was sent to (or the advertised one). Requests
// without either header come from no browser page.
func (s *Server) crossSite(c *gin.Context) bool {
	if c.GetHeader("Sec-Fetch-Site") == "cross-site" {
		return true
	}
	origin := c.GetHeader("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return true // "null" (a sandboxed or opaque origin) among them
	}
	if strings.EqualFold(u.Host, s.requestHost(c)) {
		return false
	}
	return s.advertise == nil || !strings.EqualFold(u.Host, s.advertise.Host)
}
