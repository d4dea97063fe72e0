package recording

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// S3Location is where an S3 store keeps recordings, from a --recordings
// URL: s3://bucket/prefix?endpoint=http://host:port&region=…&backlog_mb=…
type S3Location struct {
	Bucket string
	// Prefix is the key prefix of every recording ("" or "a/b/").
	Prefix string
	// Endpoint is the server's host:port (default AWS S3); Secure says
	// whether it speaks HTTPS.
	Endpoint string
	Secure   bool
	Region   string
	// BacklogBytes bounds the segments staged on the local disk and not
	// yet uploaded (backlog_mb, default 1024).
	BacklogBytes int64
}

const defaultBacklogMB = 1024

// ParseS3URL reads a --recordings URL.
func ParseS3URL(s string) (S3Location, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Opaque != "" {
		return S3Location{}, errors.New("recordings URL must be s3://bucket/prefix?endpoint=…")
	}
	if u.User != nil {
		return S3Location{}, errors.New("recordings URL: keys come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not the URL")
	}
	loc := S3Location{Bucket: u.Host, Endpoint: "s3.amazonaws.com", Secure: true, BacklogBytes: defaultBacklogMB << 20}
	if loc.Bucket == "" || strings.ContainsAny(loc.Bucket, ":/") {
		return S3Location{}, fmt.Errorf("recordings URL: %q is not a bucket name", u.Host)
	}
	if prefix := strings.Trim(u.Path, "/"); prefix != "" {
		loc.Prefix = prefix + "/"
	}
	for key, values := range u.Query() {
		v := values[len(values)-1]
		switch key {
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || strings.Trim(e.Path, "/") != "" {
				return S3Location{}, fmt.Errorf("recordings URL: endpoint %q must be http(s)://host[:port]", v)
			}
			loc.Endpoint, loc.Secure = e.Host, e.Scheme == "https"
		case "region":
			loc.Region = v
		case "backlog_mb":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || n > 1<<20 {
				return S3Location{}, fmt.Errorf("recordings URL: backlog_mb %q must be 1 to %d", v, 1<<20)
			}
			loc.BacklogBytes = n << 20
		default:
			return S3Location{}, fmt.Errorf("recordings URL: unknown parameter %q (endpoint, region, backlog_mb)", key)
		}
	}
	return loc, nil
}
