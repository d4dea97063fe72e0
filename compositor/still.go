package compositor

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"math"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/singoff/singoff/internal/avframe"
	"github.com/singoff/singoff/media"
)

// The program's stills: a small JPEG of the picture about once a second,
// for the live thumbnail and the replay's.
const (
	StillWidth  = 320
	StillHeight = 180
	// stillEvery is the program frames between two stills.
	stillEvery   = media.ProgramFPS
	stillQuality = 80
)

// stillSource is a copy of a program picture (4:2:0, limited range) the
// still maker reduces and encodes.
type stillSource struct {
	ntp       time.Time
	w, h      int
	y, cb, cr []byte // strides w and w/2
}

// still is a finished JPEG of the picture at ntp.
type still struct {
	ntp  time.Time
	jpeg []byte
}

// stillMaker makes stills off the program's goroutine: the program
// copies a picture into the maker's one buffer when it is free (a maker
// still busy skips that second) and picks the finished JPEG up at a
// later tick, so that every output call stays on the program's
// goroutine.
type stillMaker struct {
	free chan *stillSource // the buffer, when the maker is idle
	todo chan *stillSource
	done atomic.Pointer[still]
	img  *image.YCbCr
}

func newStillMaker() *stillMaker {
	m := &stillMaker{
		free: make(chan *stillSource, 1),
		todo: make(chan *stillSource, 1),
		img:  image.NewYCbCr(image.Rect(0, 0, StillWidth, StillHeight), image.YCbCrSubsampleRatio420),
	}
	m.free <- &stillSource{}
	return m
}

// stillFrom picks the picture stills are reduced from: the smallest
// rung an integer number of times the still's size, as cheap to reduce
// as it gets.
func stillFrom(rungs []*rung) *astiav.Frame {
	best := rungs[0].frame
	for _, r := range rungs[1:] {
		w, h := r.frame.Width(), r.frame.Height()
		if w%StillWidth == 0 && h%StillHeight == 0 && w/StillWidth == h/StillHeight && w < best.Width() {
			best = r.frame
		}
	}
	return best
}

// offer hands the maker a copy of f, the picture at ntp, unless it is
// still busy with the last one.
func (m *stillMaker) offer(f *astiav.Frame, ntp time.Time) {
	var src *stillSource
	select {
	case src = <-m.free:
	default:
		return
	}
	w, h := f.Width(), f.Height()
	src.ntp, src.w, src.h = ntp, w, h
	src.y = copyPlane(src.y, f, 0, w, h)
	src.cb = copyPlane(src.cb, f, 1, w/2, h/2)
	src.cr = copyPlane(src.cr, f, 2, w/2, h/2)
	m.todo <- src
}

// copyPlane copies plane i of f (w x h samples) into buf, packed.
func copyPlane(buf []byte, f *astiav.Frame, i, w, h int) []byte {
	data, stride := avframe.Plane(f, i, h)
	buf = buf[:0]
	for r := range h {
		buf = append(buf, data[r*stride:r*stride+w]...)
	}
	return buf
}

// take returns the latest finished still, if one is waiting.
func (m *stillMaker) take() *still { return m.done.Swap(nil) }

// run makes stills until ctx is done.
func (m *stillMaker) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case src := <-m.todo:
			reduce(src, m.img)
			ntp := src.ntp
			m.free <- src
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, m.img, &jpeg.Options{Quality: stillQuality}); err != nil {
				continue // writing to memory does not fail
			}
			m.done.Store(&still{ntp: ntp, jpeg: buf.Bytes()})
		}
	}
}

// reduce averages src down to dst's size (an integer factor) and
// expands the program's limited range to the full range JPEG means.
func reduce(src *stillSource, dst *image.YCbCr) {
	k := src.w / dst.Rect.Dx()
	box(dst.Y, dst.YStride, dst.Rect.Dx(), dst.Rect.Dy(), src.y, src.w, k, &lumaRange)
	cw, ch := dst.Rect.Dx()/2, dst.Rect.Dy()/2
	box(dst.Cb, dst.CStride, cw, ch, src.cb, src.w/2, k, &chromaRange)
	box(dst.Cr, dst.CStride, cw, ch, src.cr, src.w/2, k, &chromaRange)
}

// box writes the k x k averages of src (stride ss) into the w x h plane
// dst (stride ds), through the range table.
func box(dst []byte, ds, w, h int, src []byte, ss, k int, table *[256]byte) {
	n := k * k
	for y := range h {
		for x := range w {
			sum := 0
			for r := range k {
				row := src[(y*k+r)*ss+x*k:]
				for c := range k {
					sum += int(row[c])
				}
			}
			dst[y*ds+x] = table[(sum+n/2)/n]
		}
	}
}

// Limited range (Y 16–235, Cb/Cr 16–240 around 128) to full range.
var lumaRange, chromaRange = rangeTable(16, 219, 0), rangeTable(128, 224, 128)

// rangeTable maps v to to + (v - from) * 255 / span, rounded and
// clamped.
func rangeTable(from, span, to float64) [256]byte {
	var t [256]byte
	for v := range t {
		t[v] = byte(min(max(math.Round(to+(float64(v)-from)*255/span), 0), 255))
	}
	return t
}
