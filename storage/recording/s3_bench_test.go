package recording

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkS3UploadLag records four battles at once, in real time, into
// a real S3 server (SeaweedFS on this machine) and reports the upload
// lag of their segments: from a segment written to the staging disk to
// the segment in the bucket (p50, p95, max), over 40 s of program.
//
//	go test -run '^$' -bench BenchmarkS3UploadLag -benchtime 1x ./storage/recording
func BenchmarkS3UploadLag(b *testing.B) {
	const battles = 4
	const length = 40 * time.Second
	for range b.N {
		f := newS3Fixture(b, "")
		var mu sync.Mutex
		var lags []time.Duration
		s := f.open(b, S3Options{Uploaded: func(d time.Duration) {
			mu.Lock()
			lags = append(lags, d)
			mu.Unlock()
		}})
		var wg sync.WaitGroup
		errs := make(chan error, battles)
		for i := range battles {
			wg.Go(func() {
				rec, err := s.Create(fmt.Sprintf("lag%d", i), program.Info)
				if err == nil {
					err = program.Feed(context.Background(), rec, length, 1)
				}
				if err == nil {
					err = rec.Close(true)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := s.Close(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		slices.Sort(lags)
		if len(lags) < battles*int(length/(2*time.Second))-battles {
			b.Fatalf("%d segments uploaded", len(lags))
		}
		at := func(p float64) float64 { return lags[int(p*float64(len(lags)-1))].Seconds() * 1000 }
		b.ReportMetric(at(0.5), "p50-ms")
		b.ReportMetric(at(0.95), "p95-ms")
		b.ReportMetric(at(1), "max-ms")
		b.ReportMetric(float64(len(lags)), "segments")
	}
}
