package overlay

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"

	"github.com/go-text/typesetting/font"
	ot "github.com/go-text/typesetting/font/opentype"
	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// textImage is a line of text drawn once, to be drawn in any colour: a
// coverage mask of its outline glyphs, and its colour glyphs (emoji)
// apart. Both are in line coordinates: x from where the line starts, y
// from its baseline (up is negative).
type textImage struct {
	width int // the line's advance, whole pixels
	mask  *image.Alpha
	color *image.RGBA // nil without colour glyphs
}

// draw draws the line into dst starting at x on baseline base, its
// outline glyphs in c.
func (ti *textImage) draw(dst *image.RGBA, x, base int, c color.RGBA) {
	at := image.Pt(x, base)
	m := ti.mask.Rect
	draw.DrawMask(dst, m.Add(at), image.NewUniform(c), image.Point{}, ti.mask, m.Min, draw.Over)
	if ti.color != nil {
		draw.Draw(dst, ti.color.Rect.Add(at), ti.color, ti.color.Rect.Min, draw.Over)
	}
}

// placed is a glyph at its place in line coordinates: its origin, and
// its outline or colour bitmap.
type placed struct {
	x, y    float32 // the glyph's origin
	scale   float32 // pixels per font unit
	outline []ot.Segment
	bitmap  *font.GlyphBitmap
	box     image.Rectangle // pixels it may cover
}

// rasterize draws l. Outlines are filled glyph by glyph with a
// coverage rasterizer (so overlapping glyphs add up, whatever their
// winding); PNG bitmaps (Noto Color Emoji) are scaled into the box the
// shaper gave the glyph. A glyph with neither (an SVG-only font without
// fallback outline) is left out.
func rasterize(l line, z *vector.Rasterizer) *textImage {
	var (
		glyphs []placed
		pen    float32
	)
	bounds := image.Rect(0, 0, l.width.Ceil(), 1)
	for _, run := range l.runs {
		scale := float32(run.Size) / 64 / float32(run.Face.Upem())
		for _, g := range run.Glyphs {
			p := placed{x: pen + fx(g.XOffset), y: -fx(g.YOffset), scale: scale}
			pen += fx(g.XAdvance)
			switch data := run.Face.GlyphData(g.GlyphID).(type) {
			case font.GlyphOutline:
				p.outline = data.Segments
			case font.GlyphSVG:
				p.outline = data.Outline.Segments
			case font.GlyphBitmap:
				if data.Format == font.PNG {
					p.bitmap = &data
				} else if data.Outline != nil {
					p.outline = data.Outline.Segments
				}
			}
			switch {
			case p.bitmap != nil:
				// The shaper's extents: y up from the baseline.
				x0, y0 := p.x+fx(g.XBearing), p.y-fx(g.YBearing)
				p.box = image.Rect(round(x0), round(y0), round(x0+fx(g.Width)), round(y0-fx(g.Height)))
			case len(p.outline) > 0:
				p.box = outlineBox(p)
			default:
				continue
			}
			if !p.box.Empty() {
				glyphs = append(glyphs, p)
				bounds = bounds.Union(p.box)
			}
		}
	}
	ti := &textImage{width: l.width.Ceil(), mask: image.NewAlpha(bounds)}
	for _, p := range glyphs {
		if p.bitmap != nil {
			if ti.color == nil {
				ti.color = image.NewRGBA(bounds)
			}
			drawBitmap(ti.color, p)
			continue
		}
		z.Reset(p.box.Dx(), p.box.Dy())
		ox, oy := p.x-float32(p.box.Min.X), p.y-float32(p.box.Min.Y)
		pt := func(a ot.SegmentPoint) (float32, float32) { return ox + a.X*p.scale, oy - a.Y*p.scale }
		open := false
		for _, s := range p.outline {
			switch s.Op {
			case ot.SegmentOpMoveTo:
				if open {
					z.ClosePath()
				}
				z.MoveTo(pt(s.Args[0]))
				open = true
			case ot.SegmentOpLineTo:
				z.LineTo(pt(s.Args[0]))
			case ot.SegmentOpQuadTo:
				x1, y1 := pt(s.Args[0])
				x2, y2 := pt(s.Args[1])
				z.QuadTo(x1, y1, x2, y2)
			case ot.SegmentOpCubeTo:
				x1, y1 := pt(s.Args[0])
				x2, y2 := pt(s.Args[1])
				x3, y3 := pt(s.Args[2])
				z.CubeTo(x1, y1, x2, y2, x3, y3)
			}
		}
		if open {
			z.ClosePath()
		}
		z.Draw(ti.mask, p.box, image.Opaque, image.Point{})
	}
	return ti
}

// outlineBox is the pixels an outline may cover: the box of its points
// (a curve stays inside its control points).
func outlineBox(p placed) image.Rectangle {
	minX, minY := float32(math.Inf(1)), float32(math.Inf(1))
	maxX, maxY := float32(math.Inf(-1)), float32(math.Inf(-1))
	for _, s := range p.outline {
		for _, a := range s.ArgsSlice() {
			x, y := p.x+a.X*p.scale, p.y-a.Y*p.scale
			minX, maxX = min(minX, x), max(maxX, x)
			minY, maxY = min(minY, y), max(maxY, y)
		}
	}
	return image.Rect(int(math.Floor(float64(minX))), int(math.Floor(float64(minY))),
		int(math.Ceil(float64(maxX))), int(math.Ceil(float64(maxY))))
}

// drawBitmap scales a colour glyph into its box.
func drawBitmap(dst *image.RGBA, p placed) {
	img, err := png.Decode(bytes.NewReader(p.bitmap.Data))
	if err != nil {
		return
	}
	xdraw.CatmullRom.Scale(dst, p.box, img, img.Bounds(), xdraw.Over, nil)
}

// fx is a 26.6 fixed-point value as a float.
func fx(v fixed.Int26_6) float32 { return float32(v) / 64 }

func round(v float32) int { return int(math.Round(float64(v))) }
