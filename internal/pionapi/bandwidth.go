package pionapi

import (
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/logging"
)

// Bitrates bound a send-side bandwidth estimate, in bit/s.
type Bitrates struct{ Min, Max int }

// estimatorFactory makes one bandwidthEstimator per peer connection.
type estimatorFactory struct {
	bounds Bitrates
	logs   logging.LoggerFactory
}

func (f estimatorFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &bandwidthEstimator{factory: f}, nil
}

// bandwidthEstimator runs Google congestion control (pion's GCC, on the
// TWCC feedback of the packets the connection sends) for one peer
// connection, and hands the estimator to whoever reads the connection's
// RTCP, in the attributes (BandwidthEstimate). It paces nothing: the
// estimate only informs, so forwarded packets leave as they come.
//
// The estimator is made when the connection first sends, so that
// connections that only receive cost nothing. It starts at the upper
// bound: a forwarder does not choose its rate, and the estimate is a
// cap on a remote sender that only congestion should lower.
type bandwidthEstimator struct {
	interceptor.NoOp
	factory estimatorFactory

	mu     sync.Mutex
	bwe    *gcc.SendSideBWE
	failed bool // the estimator could not be made
	closed bool
}

// estimatorKey is the attribute under which RTCP read from a connection
// with an estimator carries it.
type estimatorKey struct{}

// BandwidthEstimate is the send-side bandwidth estimate, in bit/s, of
// the connection whose RTCP (from an RTPSender's ReadRTCP) came with the
// attributes a; ok is false when the connection estimates nothing
// (Options.Estimate not set, or it has sent nothing yet).
func BandwidthEstimate(a interceptor.Attributes) (bps int, ok bool) {
	bwe, ok := a.Get(estimatorKey{}).(*gcc.SendSideBWE)
	if !ok {
		return 0, false
	}
	return bwe.GetTargetBitrate(), true
}

// estimator returns the connection's estimator, made on first use; nil
// when it could not be made.
func (e *bandwidthEstimator) estimator() *gcc.SendSideBWE {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.bwe == nil && !e.failed && !e.closed {
		b := e.factory.bounds
		bwe, err := gcc.NewSendSideBWE(
			gcc.SendSideBWEInitialBitrate(b.Max),
			gcc.SendSideBWEMinBitrate(b.Min),
			gcc.SendSideBWEMaxBitrate(b.Max),
			gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
			gcc.WithLoggerFactory(e.factory.logs),
		)
		if err != nil {
			e.failed = true
			e.factory.logs.NewLogger("bwe").Errorf("bandwidth estimator: %v", err)
		}
		e.bwe = bwe
	}
	return e.bwe
}

// current is the estimator if it is made.
func (e *bandwidthEstimator) current() *gcc.SendSideBWE {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bwe
}

// BindLocalStream records each packet sent (its transport-wide sequence
// number, stamped by the header-extension interceptor registered after
// this one, and its size) for the feedback to acknowledge.
func (e *bandwidthEstimator) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	bwe := e.estimator()
	if bwe == nil {
		return writer
	}
	return bwe.AddStream(info, writer)
}

// BindRTCPReader feeds the TWCC feedback read to the estimator and puts
// the estimator into the attributes.
func (e *bandwidthEstimator) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err != nil {
			return 0, nil, err
		}
		bwe := e.current()
		if bwe == nil {
			return n, a, nil
		}
		if a == nil {
			a = interceptor.Attributes{}
		}
		pkts, err := a.GetRTCPPackets(b[:n])
		if err != nil {
			return 0, nil, err
		}
		// Feedback the estimator cannot use (an unknown sequence range,
		// a closed estimator) is no reason to stop reading RTCP.
		_ = bwe.WriteRTCP(pkts, a)
		a.Set(estimatorKey{}, bwe)
		return n, a, nil
	})
}

func (e *bandwidthEstimator) Close() error {
	e.mu.Lock()
	bwe := e.bwe
	e.closed = true
	e.mu.Unlock()
	if bwe != nil {
		return bwe.Close()
	}
	return nil
}
