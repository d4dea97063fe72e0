package compositor

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strconv"

	"github.com/singoff/singoff/media"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// yuvImage is a 4:2:0 picture in Go memory, with alpha for overlays.
type yuvImage struct {
	w, h      int
	y, cb, cr []byte // strides w and w/2
	// a is per-pixel alpha (nil: opaque); ac is alpha per chroma sample.
	a, ac []byte
	// spans lists, per luma row, the [from, to) columns with any alpha,
	// and cspans the same per chroma row in chroma columns, so blending
	// skips what is transparent.
	spans, cspans [][2]int
}

// toYUV converts rectangle r (even size) of an RGBA image
// (premultiplied, as image.RGBA is) to limited-range BT.601 4:2:0,
// keeping alpha when withAlpha. Points of r outside img are transparent.
func toYUV(img *image.RGBA, r image.Rectangle, withAlpha bool) *yuvImage {
	w, h := r.Dx()&^1, r.Dy()&^1
	out := &yuvImage{w: w, h: h, y: make([]byte, w*h), cb: make([]byte, w*h/4), cr: make([]byte, w*h/4)}
	if withAlpha {
		out.a = make([]byte, w*h)
		out.ac = make([]byte, w*h/4)
	}
	for row := 0; row < h; row += 2 {
		for col := 0; col < w; col += 2 {
			var px [4]color.RGBA
			for k := range px {
				px[k] = img.RGBAAt(r.Min.X+col+k%2, r.Min.Y+row+k/2)
			}
			// Transparent stays all zero: premultiplied YUV offsets
			// of nothing.
			if withAlpha && px[0].A|px[1].A|px[2].A|px[3].A == 0 {
				continue
			}
			var sb, sr, sa int32
			for k, p := range px {
				// Premultiplied values convert to premultiplied YUV
				// offsets; opaque pixels come out as usual. Fixed
				// point, 16 fraction bits.
				R, G, B, A := int32(p.R), int32(p.G), int32(p.B), int32(p.A)
				i := (row+k/2)*w + col + k%2
				out.y[i] = clamp16(4112*A + 16843*R + 33030*G + 6423*B)
				sb += int32(clamp16(32897*A - 9699*R - 19071*G + 28770*B))
				sr += int32(clamp16(32897*A + 28770*R - 24117*G - 4653*B))
				sa += A
				if withAlpha {
					out.a[i] = p.A
				}
			}
			j := row/2*(w/2) + col/2
			out.cb[j], out.cr[j] = byte(sb/4), byte(sr/4)
			if withAlpha {
				out.ac[j] = byte(sa / 4)
			}
		}
	}
	if withAlpha {
		out.spans = alphaSpans(out.a, w, h)
		out.cspans = alphaSpans(out.ac, w/2, h/2)
	}
	return out
}

// alphaSpans finds, per row of alpha, the columns from the first to the
// last that is not transparent; an empty span is {0, 0}.
func alphaSpans(alpha []byte, w, h int) [][2]int {
	spans := make([][2]int, h)
	for r := range h {
		row := alpha[r*w : (r+1)*w]
		from, to := 0, 0
		for c, a := range row {
			if a != 0 {
				if to == 0 {
					from = c
				}
				to = c + 1
			}
		}
		spans[r] = [2]int{from, to}
	}
	return spans
}

// clamp16 rounds a value with 16 fraction bits to a byte.
func clamp16(v int32) byte { return byte(min(max((v+1<<15)>>16, 0), 255)) }

// copyTo puts the opaque image into planes at x, y (even).
func (m *yuvImage) copyTo(p planes, x, y int) {
	for r := range m.h {
		copy(p.y[(y+r)*p.ys+x:], m.y[r*m.w:(r+1)*m.w])
	}
	cw := m.w / 2
	for r := range m.h / 2 {
		o := (y/2+r)*p.cs + x/2
		copy(p.cb[o:], m.cb[r*cw:(r+1)*cw])
		copy(p.cr[o:], m.cr[r*cw:(r+1)*cw])
	}
}

// blendOnto blends the premultiplied image over planes at x, y (even),
// where it fits.
func (m *yuvImage) blendOnto(p planes, x, y int) {
	for r := range m.h {
		from, to := m.spans[r][0], m.spans[r][1]
		o := (y+r)*p.ys + x
		blendRow(p.y[o+from:o+to], m.y[r*m.w+from:r*m.w+to], m.a[r*m.w+from:r*m.w+to])
	}
	cw := m.w / 2
	for r := range m.h / 2 {
		from, to := m.cspans[r][0], m.cspans[r][1]
		o, i := (y/2+r)*p.cs+x/2, r*cw
		alpha := m.ac[i+from : i+to]
		blendRow(p.cb[o+from:o+to], m.cb[i+from:i+to], alpha)
		blendRow(p.cr[o+from:o+to], m.cr[i+from:i+to], alpha)
	}
}

// blendRow blends premultiplied src with alpha over dst, all of one
// length. Overlays are mostly transparent or opaque, which skip the
// arithmetic.
func blendRow(dst, src, alpha []byte) {
	dst, alpha = dst[:len(src)], alpha[:len(src)]
	for i, s := range src {
		switch a := alpha[i]; a {
		case 0:
		case 255:
			dst[i] = s
		default:
			dst[i] = byte(uint32(dst[i])*uint32(255-a)/255 + uint32(s))
		}
	}
}

// layer is a piece of overlay placed in the program.
type layer struct {
	x, y int // even
	img  *yuvImage
}

// toLayer converts an overlay image placed by its bounds: widened to even
// coordinates, as 4:2:0 wants, and cut to the program. It returns nil
// for an image outside the program.
func toLayer(img *image.RGBA) *layer {
	b := img.Bounds()
	r := image.Rect(b.Min.X&^1, b.Min.Y&^1, (b.Max.X+1)&^1, (b.Max.Y+1)&^1).
		Intersect(image.Rect(0, 0, media.ProgramWidth, media.ProgramHeight))
	if r.Empty() {
		return nil
	}
	return &layer{x: r.Min.X, y: r.Min.Y, img: toYUV(img, r, true)}
}

// planes is a writable view of a 4:2:0 frame.
type planes struct {
	y, cb, cr []byte
	ys, cs    int
}

// fillRect paints a rectangle (even coordinates) one colour.
func (p planes) fillRect(x, y, w, h int, cy, cb, cr byte) {
	fillPlane(p.y, p.ys, x, y, w, h, cy)
	fillPlane(p.cb, p.cs, x/2, y/2, w/2, h/2, cb)
	fillPlane(p.cr, p.cs, x/2, y/2, w/2, h/2, cr)
}

// fillPlane sets a rectangle of one plane to v: its first row byte by
// byte, the others copied from it (memmove, many times faster).
func fillPlane(plane []byte, stride, x, y, w, h int, v byte) {
	if w <= 0 || h <= 0 {
		return
	}
	first := plane[y*stride+x : y*stride+x+w]
	for i := range first {
		first[i] = v
	}
	for r := y + 1; r < y+h; r++ {
		copy(plane[r*stride+x:r*stride+x+w], first)
	}
}

// slateText says why a half shows no singer.
var slateText = [...]string{slateWaiting: "waiting", slateReconnecting: "reconnecting"}

const (
	slateWaiting = iota
	slateReconnecting
)

// renderSlates draws a slot's slates: its number large and the reason.
func renderSlates(slot int) ([2]*yuvImage, error) {
	var out [2]*yuvImage
	f, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return out, fmt.Errorf("compositor: font: %w", err)
	}
	big, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 260, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return out, fmt.Errorf("compositor: font face: %w", err)
	}
	defer big.Close()
	small, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 64, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return out, fmt.Errorf("compositor: font face: %w", err)
	}
	defer small.Close()
	for i, text := range slateText {
		img := image.NewRGBA(image.Rect(0, 0, halfWidth, media.ProgramHeight))
		draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{40, 40, 48, 255}), image.Point{}, draw.Src)
		drawCentered(img, big, strconv.Itoa(slot), 380, color.RGBA{220, 220, 220, 255})
		drawCentered(img, small, text, 520, color.RGBA{200, 200, 120, 255})
		out[i] = toYUV(img, img.Rect, false)
	}
	return out, nil
}

func drawCentered(img *image.RGBA, face font.Face, text string, baseline int, c color.RGBA) {
	width := font.MeasureString(face, text)
	d := font.Drawer{
		Dst:  img,
		Src:  image.NewUniform(c),
		Face: face,
		Dot:  fixed.Point26_6{X: (fixed.I(img.Bounds().Dx()) - width) / 2, Y: fixed.I(baseline)},
	}
	d.DrawString(text)
}
