package synth

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"strconv"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/singoff/singoff/internal/avframe"
)

// draw paints the picture for media time at into s.picture.
func (s *Source) draw(at time.Duration) {
	w, h := s.cfg.Width, s.cfg.Height
	y, ys := avframe.Plane(s.picture, 0, h)
	u, us := avframe.Plane(s.picture, 1, h/2)
	v, vs := avframe.Plane(s.picture, 2, h/2)
	switch {
	case s.cfg.Color != nil:
		cy, cb, cr := ycbcr(*s.cfg.Color)
		fill(y, ys, w, h, cy)
		fill(u, us, w/2, h/2, cb)
		fill(v, vs, w/2, h/2, cr)
		return
	case s.cfg.Pulse:
		luma := byte(16)
		if at%time.Second < PulseLength {
			luma = 235
		}
		fill(y, ys, w, h, luma)
		fill(u, us, w/2, h/2, 128)
		fill(v, vs, w/2, h/2, 128)
		return
	case s.noise != nil:
		// A noise texture that scrolls: motion search finds it, yet it
		// stays expensive to code, like a real camera.
		ox, oy := int(s.frames*7)%w, int(s.frames*3)%h
		for r := range h {
			copy(y[r*ys:r*ys+w], s.noise[(r+oy)*2*w+ox:])
		}
	default:
		shift := int(s.frames * 4)
		for r := range h {
			row := y[r*ys : r*ys+w]
			for c := range row {
				row[c] = byte(16 + ((c+r+shift)&0xff)*219/255)
			}
		}
	}
	// A tint per slot tells the singers apart at a glance.
	cb, cr := byte(160), byte(110)
	if s.cfg.Slot%2 == 0 {
		cb, cr = 100, 170
	}
	fill(u, us, w/2, h/2, cb)
	fill(v, vs, w/2, h/2, cr)
	s.text.draw(y, ys, s.start.Add(at))
}

func fill(plane []byte, stride, w, h int, value byte) {
	for r := range h {
		row := plane[r*stride : r*stride+w]
		for c := range row {
			row[c] = value
		}
	}
}

// ycbcr converts c to limited-range BT.601 luma and chroma, what the
// encoders are told the pictures are.
func ycbcr(c color.RGBA) (y, cb, cr byte) {
	r, g, b := float64(c.R), float64(c.G), float64(c.B)
	clamp := func(v float64) byte { return byte(min(max(v+0.5, 0), 255)) }
	return clamp(16 + 0.257*r + 0.504*g + 0.098*b),
		clamp(128 - 0.148*r - 0.291*g + 0.439*b),
		clamp(128 + 0.439*r - 0.368*g - 0.071*b)
}

func makeNoise(w, h int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, w*h)
	for i := range b {
		b[i] = byte(16 + rng.IntN(220))
	}
	return b
}

// textDrawer draws the slot number and a clock onto a luma plane from
// glyphs rendered once.
type textDrawer struct {
	slot       *image.Alpha
	slotX      int
	width      int
	glyphs     [256]*image.Alpha // digits, ':' and '.'
	advance    int
	clockX     int
	clockY     int
	clockBoxH  int
	clockBoxW  int
	clockChars [12]byte
}

func newTextDrawer(slot, w, h int) (*textDrawer, error) {
	f, err := opentype.Parse(gomonobold.TTF)
	if err != nil {
		return nil, fmt.Errorf("synth: font: %w", err)
	}
	big, err := opentype.NewFace(f, &opentype.FaceOptions{Size: float64(h) / 3, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, fmt.Errorf("synth: font face: %w", err)
	}
	defer big.Close()
	// Twelve characters of HH:MM:SS.mmm fill most of the width.
	clock, err := opentype.NewFace(f, &opentype.FaceOptions{Size: float64(w) / 7.8, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, fmt.Errorf("synth: font face: %w", err)
	}
	defer clock.Close()
	t := &textDrawer{slot: render(big, strconv.Itoa(slot)), width: w}
	for _, r := range "0123456789:." {
		t.glyphs[r] = render(clock, string(r))
	}
	t.advance = t.glyphs['0'].Rect.Dx()
	t.clockBoxW = 12 * t.advance
	t.clockBoxH = t.glyphs['0'].Rect.Dy()
	t.clockX = (w - t.clockBoxW) / 2
	t.clockY = h - t.clockBoxH - h/16
	t.slotX = w / 32
	if t.slotX+t.slot.Rect.Dx() > w || t.clockX < 0 || t.clockY < TimeCodeHeight+t.slot.Rect.Dy() {
		return nil, fmt.Errorf("synth: %dx%d leaves no room for the text", w, h)
	}
	return t, nil
}

func render(face font.Face, s string) *image.Alpha {
	m := face.Metrics()
	width := font.MeasureString(face, s).Ceil()
	img := image.NewAlpha(image.Rect(0, 0, width, (m.Ascent + m.Descent).Ceil()))
	d := font.Drawer{Dst: img, Src: image.Opaque, Face: face, Dot: fixed.Point26_6{Y: m.Ascent}}
	d.DrawString(s)
	return img
}

// TimeCodeHeight is the height of the time code strip at the top of the
// picture: 32 equal blocks, left to right the bits of the capture time in
// Unix milliseconds mod 2^32, most significant first, white for 1 and
// black for 0. Glass-to-glass latency is read back from it.
const TimeCodeHeight = 24

func drawTimeCode(y []byte, stride, w int, now time.Time) {
	code := uint32(now.UnixMilli())
	for bit := range 32 {
		luma := byte(16)
		if code&(1<<(31-bit)) != 0 {
			luma = 235
		}
		x0, x1 := bit*w/32, (bit+1)*w/32
		for r := range TimeCodeHeight {
			row := y[r*stride+x0 : r*stride+x1]
			for c := range row {
				row[c] = luma
			}
		}
	}
}

func (t *textDrawer) draw(y []byte, stride int, now time.Time) {
	drawTimeCode(y, stride, t.width, now)
	blit(y, stride, t.slot, t.slotX, TimeCodeHeight)
	hh, mm, ss := now.Clock()
	ms := now.Nanosecond() / 1e6
	c := &t.clockChars
	c[0], c[1], c[2] = byte('0'+hh/10), byte('0'+hh%10), ':'
	c[3], c[4], c[5] = byte('0'+mm/10), byte('0'+mm%10), ':'
	c[6], c[7], c[8] = byte('0'+ss/10), byte('0'+ss%10), '.'
	c[9], c[10], c[11] = byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10)
	for r := range t.clockBoxH {
		row := y[(t.clockY+r)*stride+t.clockX:]
		for i := range t.clockBoxW {
			row[i] = 16
		}
	}
	for i, ch := range c {
		blit(y, stride, t.glyphs[ch], t.clockX+i*t.advance, t.clockY)
	}
}

// blit blends a white glyph onto the luma plane at x0, y0.
func blit(y []byte, stride int, glyph *image.Alpha, x0, y0 int) {
	b := glyph.Rect
	for r := range b.Dy() {
		src := glyph.Pix[r*glyph.Stride : r*glyph.Stride+b.Dx()]
		dst := y[(y0+r)*stride+x0:]
		for c, a := range src {
			if a != 0 {
				dst[c] = byte((int(dst[c])*(255-int(a)) + 235*int(a)) / 255)
			}
		}
	}
}
