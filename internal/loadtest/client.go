package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"
)

// conn is a follower's keep-alive HTTP/1.1 connection. A follower's
// requests are sequential, so one connection serves it; net/http's
// client costs more CPU per request than the origin spends answering
// (two goroutines per connection and a handful of allocations per
// request), and the generator shares the machine with the origin it
// measures. It sends GETs only and reads the responses an origin or an
// edge gives them: a Content-Length, a chunked body, or one ended by
// closing the connection.
type conn struct {
	dialer *net.Dialer
	// addr and tls say where conn is connected.
	addr string
	tls  bool
	c    net.Conn
	r    *bufio.Reader
	req  []byte
}

var errMalformed = errors.New("malformed HTTP response")

// maxDrain bounds what is read of a body left unread to keep its
// connection.
const maxDrain = 4 << 10

// response is the status and body of a response; its body must be read
// to io.EOF or closed before the next request.
type response struct {
	status int
	body   *body
}

// get sends a GET for u, with a Range header unless byteRange is empty.
// The request ends, its body included, by requestTimeout or when ctx
// ends.
func (c *conn) get(ctx context.Context, u *url.URL, byteRange string) (response, error) {
	useTLS := u.Scheme == "https"
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if useTLS {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	if c.c != nil && (addr != c.addr || useTLS != c.tls) {
		c.close()
	}
	c.req = append(c.req[:0], "GET "...)
	c.req = append(c.req, u.RequestURI()...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, u.Host...)
	c.req = append(c.req, "\r\nUser-Agent: singoff-loadtest\r\nAccept-Encoding: gzip\r\n"...)
	if byteRange != "" {
		c.req = append(c.req, "Range: "...)
		c.req = append(c.req, byteRange...)
		c.req = append(c.req, "\r\n"...)
	}
	c.req = append(c.req, "\r\n"...)

	for attempt := 0; ; attempt++ {
		reused := c.c != nil
		if !reused {
			if err := c.dial(ctx, addr, u.Hostname(), useTLS); err != nil {
				return response{}, err
			}
		}
		resp, err := c.roundTrip(ctx)
		if err == nil {
			return resp, nil
		}
		c.close()
		// A kept-alive connection the server closed meanwhile fails
		// before any of the response: try once more on a new one.
		if !reused || attempt > 0 || ctx.Err() != nil || !errors.Is(err, io.EOF) && !isConnError(err) {
			return response{}, err
		}
	}
}

func (c *conn) dial(ctx context.Context, addr, hostname string, useTLS bool) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	nc, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if useTLS {
		tc := tls.Client(nc, &tls.Config{ServerName: hostname, NextProtos: []string{"http/1.1"}})
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return err
		}
		nc = tc
	}
	c.c, c.addr, c.tls = nc, addr, useTLS
	if c.r == nil {
		c.r = bufio.NewReaderSize(nc, readBufferSize)
	} else {
		c.r.Reset(nc)
	}
	return nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// roundTrip writes the request in c.req and reads the response's head.
func (c *conn) roundTrip(ctx context.Context) (response, error) {
	nc := c.c
	nc.SetDeadline(time.Now().Add(requestTimeout))
	// Ending ctx ends the request: expire the deadline.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	if _, err := nc.Write(c.req); err != nil {
		stop()
		return response{}, err
	}
	for {
		status, b, err := c.readHead()
		if err != nil {
			stop()
			return response{}, err
		}
		if status >= 200 {
			b.stop = stop
			return response{status: status, body: b}, nil
		}
		// 1xx: the response follows.
	}
}

// readHead reads a status line and headers, and returns the status and
// the body that follows them.
func (c *conn) readHead() (int, *body, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	// HTTP/1.x 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keepAlive := line[7] == '1'
	b := &body{conn: c, length: -1}
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, nil, fmt.Errorf("%w: header %q", errMalformed, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if b.length, err = strconv.ParseInt(string(value), 10, 64); err != nil || b.length < 0 {
				return 0, nil, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			b.chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keepAlive = !bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Content-Encoding")):
			b.gzip = bytes.EqualFold(value, []byte("gzip"))
		}
	}
	switch {
	case status < 200 || status == 204 || status == 304:
		b.length = 0
		b.chunked = false
	case b.chunked:
		b.r = httputil.NewChunkedReader(c.r)
	case b.length < 0:
		keepAlive = false // the body ends when the connection does
		b.r = c.r
	}
	b.keepAlive = keepAlive
	return status, b, nil
}

// body reads a response's body from its conn.
type body struct {
	conn      *conn
	r         io.Reader // chunked or until the connection ends; nil for a Content-Length
	length    int64     // bytes left of a Content-Length body, -1 for none
	chunked   bool
	keepAlive bool
	gzip      bool // the body is gzip-encoded
	done      bool
	stop      func() bool // releases the request's context
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	var n int
	var err error
	if b.r == nil {
		if b.length == 0 {
			return 0, b.finish()
		}
		if int64(len(p)) > b.length {
			p = p[:b.length]
		}
		n, err = b.conn.r.Read(p)
		b.length -= int64(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	} else {
		n, err = b.r.Read(p)
	}
	if err == io.EOF {
		if b.chunked {
			err = b.readTrailer()
		}
		if err == io.EOF {
			err = b.finish()
		}
	}
	return n, err
}

// readTrailer skips a chunked body's trailer, up to its empty line.
func (b *body) readTrailer() error {
	for {
		line, err := b.conn.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return io.EOF
		}
	}
}

// finish marks the body read whole and the connection free for the next
// request.
func (b *body) finish() error {
	b.done = true
	if !b.keepAlive {
		b.conn.close()
	}
	return io.EOF
}

// Close ends the request. It reads what is left of a short body (an
// error's) to keep the connection; a longer one closes it.
func (b *body) Close() error {
	if !b.done {
		io.CopyN(io.Discard, b, maxDrain)
	}
	b.stop()
	if !b.done {
		b.done = true
		b.conn.close()
	}
	return nil
}

// isConnError tells whether err is the connection's failure rather than
// a timeout.
func isConnError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}
