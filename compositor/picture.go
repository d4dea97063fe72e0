package compositor

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strconv"

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
	// rows lists, per luma row, the [from, to) columns with any alpha, so
	// blending skips empty parts.
	rows [][2]int
}

// toYUV converts an RGBA image (premultiplied, as image.RGBA is) to
// limited-range BT.601 4:2:0, keeping alpha when withAlpha.
func toYUV(img *image.RGBA, withAlpha bool) *yuvImage {
	b := img.Bounds()
	w, h := b.Dx()&^1, b.Dy()&^1
	out := &yuvImage{w: w, h: h, y: make([]byte, w*h), cb: make([]byte, w*h/4), cr: make([]byte, w*h/4)}
	if withAlpha {
		out.a = make([]byte, w*h)
		out.ac = make([]byte, w*h/4)
		out.rows = make([][2]int, h)
	}
	for r := 0; r < h; r += 2 {
		for c := 0; c < w; c += 2 {
			var sb, sr, sa int
			for _, d := range [4][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
				px := img.RGBAAt(b.Min.X+c+d[0], b.Min.Y+r+d[1])
				// Premultiplied values convert to premultiplied YUV
				// offsets; opaque pixels come out as usual.
				R, G, B, A := float64(px.R), float64(px.G), float64(px.B), float64(px.A)
				i := (r+d[1])*w + c + d[0]
				out.y[i] = clampByte(16*A/255 + 0.257*R + 0.504*G + 0.098*B)
				sb += int(clampByte(128*A/255 - 0.148*R - 0.291*G + 0.439*B))
				sr += int(clampByte(128*A/255 + 0.439*R - 0.368*G - 0.071*B))
				sa += int(px.A)
				if withAlpha {
					out.a[i] = px.A
				}
			}
			j := r/2*(w/2) + c/2
			out.cb[j], out.cr[j] = byte(sb/4), byte(sr/4)
			if withAlpha {
				out.ac[j] = byte(sa / 4)
			}
		}
	}
	if withAlpha {
		for r := range h {
			row := out.a[r*w : (r+1)*w]
			from, to := 0, 0
			for c, a := range row {
				if a != 0 {
					if to == 0 {
						from = c
					}
					to = c + 1
				}
			}
			out.rows[r] = [2]int{from, to}
		}
	}
	return out
}

func clampByte(v float64) byte { return byte(min(max(v+0.5, 0), 255)) }

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

// blendOnto blends the premultiplied image over planes of the same size.
func (m *yuvImage) blendOnto(p planes) {
	for r := range m.h {
		from, to := m.rows[r][0], m.rows[r][1]
		dst := p.y[r*p.ys:]
		for c := from; c < to; c++ {
			i := r*m.w + c
			dst[c] = byte((int(dst[c])*(255-int(m.a[i])))/255 + int(m.y[i]))
		}
		if r%2 != 0 {
			continue
		}
		// Chroma rows blend over the columns of their first luma row;
		// overlays are drawn on even pixels in practice.
		cb, cr := p.cb[r/2*p.cs:], p.cr[r/2*p.cs:]
		for c := from / 2; c < (to+1)/2; c++ {
			j := r/2*(m.w/2) + c
			a := 255 - int(m.ac[j])
			cb[c] = byte((int(cb[c])*a)/255 + int(m.cb[j]))
			cr[c] = byte((int(cr[c])*a)/255 + int(m.cr[j]))
		}
	}
}

// planes is a writable view of a 4:2:0 frame.
type planes struct {
	y, cb, cr []byte
	ys, cs    int
}

// fillRect paints a rectangle (even coordinates) one colour.
func (p planes) fillRect(x, y, w, h int, cy, cb, cr byte) {
	for r := y; r < y+h; r++ {
		row := p.y[r*p.ys+x : r*p.ys+x+w]
		for i := range row {
			row[i] = cy
		}
	}
	for r := y / 2; r < (y+h)/2; r++ {
		o := r*p.cs + x/2
		rowB, rowR := p.cb[o:o+w/2], p.cr[o:o+w/2]
		for i := range rowB {
			rowB[i], rowR[i] = cb, cr
		}
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
		img := image.NewRGBA(image.Rect(0, 0, halfWidth, programHeight))
		draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{40, 40, 48, 255}), image.Point{}, draw.Src)
		drawCentered(img, big, strconv.Itoa(slot), 380, color.RGBA{220, 220, 220, 255})
		drawCentered(img, small, text, 520, color.RGBA{200, 200, 120, 255})
		out[i] = toYUV(img, false)
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
