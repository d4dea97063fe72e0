// Package overlay draws the battle's state into the program: the singers'
// names, the round and the turn's countdown, the current round's vote
// split and the result, with the singer whose turn it is highlighted.
// It draws small positioned images the compositor blends over the
// picture, so the live program and its recording tell the same story.
//
// The compositor's Pipeline.Show draws a media.Scene with Render on every
// change (the countdown: once a second) and sets Gains when the turn
// changes.
package overlay

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strconv"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/singoff/singoff/media"
)

// halfWidth is the width of each singer's half.
const halfWidth = media.ProgramWidth / 2

// GainOffTurn is the linear gain of the singer who is not singing while
// the other one has the turn: 9 dB down, so reactions still come through.
const GainOffTurn = 0.35481339 // 10^(-9/20)

// Gains returns the audio gains of the left and right singer for s: the
// singer whose turn it is at full volume, the other GainOffTurn; both
// full without a turn.
func Gains(s media.Scene) (left, right float32) {
	switch s.Turn {
	case 1:
		return 1, GainOffTurn
	case 2:
		return GainOffTurn, 1
	}
	return 1, 1
}

// Colours of the overlay.
var (
	slotColors = [2]color.RGBA{{235, 87, 60, 255}, {56, 132, 235, 255}}
	highlight  = color.RGBA{255, 199, 44, 255}
	plate      = color.RGBA{0, 0, 0, 170} // premultiplied: translucent black
	white      = color.RGBA{255, 255, 255, 255}
	ink        = color.RGBA{20, 20, 24, 255} // text on the highlight
	dim        = color.RGBA{150, 150, 150, 255}
	hurry      = color.RGBA{255, 110, 90, 255} // the last seconds of a turn
	noVotes    = color.RGBA{90, 90, 90, 255}
)

// Layout, in program coordinates. The singers' 4:3 pictures leave black
// bars at the top and bottom of each half; everything but the turn's
// frame lives there.
const (
	frameWidth = 6

	topY, topHeight = 10, 100 // round and countdown, centred
	topMinWidth     = 240

	nameY, nameHeight = 612, 44 // under each half
	nameMaxWidth      = halfWidth - 40

	voteY, voteHeight = 664, 48 // the vote bar, centred
	voteWidth         = 680
	voteBarWidth      = 480
	voteBarHeight     = 22
)

// Renderer draws states. It holds the parsed fonts; it is safe for
// concurrent use.
type Renderer struct {
	mu sync.Mutex // faces keep per-glyph buffers
	// Faces by use.
	name, small, big, count font.Face
}

// NewRenderer parses the fonts.
func NewRenderer() (*Renderer, error) {
	bold, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return nil, fmt.Errorf("overlay: font: %w", err)
	}
	regular, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("overlay: font: %w", err)
	}
	r := &Renderer{}
	for _, f := range []struct {
		face *font.Face
		font *opentype.Font
		size float64
	}{
		{&r.name, bold, 28},
		{&r.small, regular, 24},
		{&r.big, bold, 52},
		{&r.count, bold, 26},
	} {
		face, err := opentype.NewFace(f.font, &opentype.FaceOptions{Size: f.size, DPI: 72, Hinting: font.HintingFull})
		if err != nil {
			return nil, fmt.Errorf("overlay: font face: %w", err)
		}
		*f.face = face
	}
	return r, nil
}

// Render draws s as a set of small images positioned in program
// coordinates (1280x720), each with a transparent background: each
// image's Bounds().Min is its position in the program. The same state
// gives the same pixels. The images are new at each call: the caller
// owns them.
func (r *Renderer) Render(s media.Scene) []*image.RGBA {
	r.mu.Lock()
	defer r.mu.Unlock()
	var layers []*image.RGBA
	if s.Turn == 1 || s.Turn == 2 {
		layers = append(layers, turnFrame(s.Turn)...)
	}
	for i := range s.Names {
		layers = append(layers, r.namePlate(s, i))
	}
	layers = append(layers, r.topPlate(s))
	if s.Round > 0 && !s.Finished {
		layers = append(layers, r.voteBar(s))
	}
	return layers
}

// turnFrame is a coloured frame around the singing half, as four strips
// so that blending skips the picture inside.
func turnFrame(turn int) []*image.RGBA {
	x0 := (turn - 1) * halfWidth
	x1 := x0 + halfWidth
	strips := []image.Rectangle{
		image.Rect(x0, 0, x1, frameWidth),
		image.Rect(x0, media.ProgramHeight-frameWidth, x1, media.ProgramHeight),
		image.Rect(x0, frameWidth, x0+frameWidth, media.ProgramHeight-frameWidth),
		image.Rect(x1-frameWidth, frameWidth, x1, media.ProgramHeight-frameWidth),
	}
	out := make([]*image.RGBA, len(strips))
	for i, rect := range strips {
		out[i] = image.NewRGBA(rect)
		fill(out[i], rect, highlight)
	}
	return out
}

// namePlate is singer i's name under their half, lit while they sing.
func (r *Renderer) namePlate(s media.Scene, i int) *image.RGBA {
	name := s.Names[i]
	if name == "" {
		name = "Singer " + strconv.Itoa(i+1)
	}
	const pad, mark = 16, 8 // text padding; the slot's colour mark on the left
	name = fitText(r.name, name, nameMaxWidth-2*pad-mark)
	w := mark + 2*pad + font.MeasureString(r.name, name).Ceil()
	x := i*halfWidth + (halfWidth-w)/2
	img := image.NewRGBA(image.Rect(x, nameY, x+w, nameY+nameHeight))
	bg, fg := plate, white
	if s.Turn == i+1 {
		bg, fg = highlight, ink
	}
	fill(img, img.Rect, bg)
	fill(img, image.Rect(x, nameY, x+mark, nameY+nameHeight), slotColors[i])
	drawText(img, r.name, name, x+mark+pad, baseline(r.name, nameY, nameHeight), fg)
	return img
}

// topPlate shows the round and the turn's countdown, or the result.
func (r *Renderer) topPlate(s media.Scene) *image.RGBA {
	var line1, line2 string
	line2Color := white
	switch {
	case s.Finished:
		line1, line2 = "Final", result(s)
		line2Color = highlight
	case s.Round == 0:
		line1, line2 = "Battle", "soon"
	default:
		line1 = fmt.Sprintf("Round %d / %d", s.Round, s.Rounds)
		switch {
		case s.Turn != 0:
			rem := max(s.Remaining, 0)
			line2 = fmt.Sprintf("%d:%02d", rem/60, rem%60)
			if rem <= 10 {
				line2Color = hurry
			}
		case s.VotingOpen:
			line2 = "Vote!"
			line2Color = highlight
		default:
			line2 = "–"
		}
	}
	line2 = fitText(r.big, line2, media.ProgramWidth-80)
	w := max(topMinWidth, font.MeasureString(r.big, line2).Ceil()+40, font.MeasureString(r.small, line1).Ceil()+40)
	x := (media.ProgramWidth - w) / 2
	img := image.NewRGBA(image.Rect(x, topY, x+w, topY+topHeight))
	fill(img, img.Rect, plate)
	drawCentered(img, r.small, line1, topY+30, dim)
	drawCentered(img, r.big, line2, topY+topHeight-18, line2Color)
	return img
}

// result says who won: "Ann wins 2–1", or "Draw".
func result(s media.Scene) string {
	if !s.Finished || s.Winner != 1 && s.Winner != 2 {
		return "Draw"
	}
	name := s.Names[s.Winner-1]
	if name == "" {
		name = "Singer " + strconv.Itoa(s.Winner)
	}
	if s.Score == [2]int{} {
		return name + " wins"
	}
	won, lost := s.Score[s.Winner-1], s.Score[2-s.Winner]
	return fmt.Sprintf("%s wins %d–%d", name, won, lost)
}

// voteBar shows the current round's split: slot 1's share from the
// left in its colour, slot 2's from the right, the counts beside it.
func (r *Renderer) voteBar(s media.Scene) *image.RGBA {
	x := (media.ProgramWidth - voteWidth) / 2
	img := image.NewRGBA(image.Rect(x, voteY, x+voteWidth, voteY+voteHeight))
	fill(img, img.Rect, plate)
	barX := (media.ProgramWidth - voteBarWidth) / 2
	barY := voteY + (voteHeight-voteBarHeight)/2
	bar := image.Rect(barX, barY, barX+voteBarWidth, barY+voteBarHeight)
	left, right := slotColors[0], slotColors[1]
	total := max(s.Votes[0], 0) + max(s.Votes[1], 0)
	split := barX + voteBarWidth/2
	if total > 0 {
		split = barX + voteBarWidth*max(s.Votes[0], 0)/total
	} else {
		left, right = noVotes, noVotes
	}
	if !s.VotingOpen {
		left, right = darken(left), darken(right)
	}
	fill(img, image.Rect(bar.Min.X, bar.Min.Y, split, bar.Max.Y), left)
	fill(img, image.Rect(split, bar.Min.Y, bar.Max.X, bar.Max.Y), right)
	if total > 0 && split > bar.Min.X && split < bar.Max.X {
		fill(img, image.Rect(split-1, bar.Min.Y, split+1, bar.Max.Y), white)
	}
	base := baseline(r.count, voteY, voteHeight)
	n1, n2 := strconv.Itoa(s.Votes[0]), strconv.Itoa(s.Votes[1])
	gap := (barX - x - font.MeasureString(r.count, n1).Ceil()) / 2
	drawText(img, r.count, n1, x+gap, base, slotColors[0])
	w2 := font.MeasureString(r.count, n2).Ceil()
	drawText(img, r.count, n2, bar.Max.X+(x+voteWidth-bar.Max.X-w2)/2, base, slotColors[1])
	return img
}

func darken(c color.RGBA) color.RGBA {
	return color.RGBA{c.R / 2, c.G / 2, c.B / 2, 255}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

// baseline centres a line of face vertically in [y, y+h).
func baseline(face font.Face, y, h int) int {
	m := face.Metrics()
	return y + (h+(m.Ascent-m.Descent).Ceil())/2
}

func drawText(img *image.RGBA, face font.Face, text string, x, base int, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, base)}
	d.DrawString(text)
}

func drawCentered(img *image.RGBA, face font.Face, text string, base int, c color.RGBA) {
	b := img.Bounds()
	w := font.MeasureString(face, text).Ceil()
	drawText(img, face, text, b.Min.X+(b.Dx()-w)/2, base, c)
}

// fitText shortens text with an ellipsis until it is at most width
// pixels wide.
func fitText(face font.Face, text string, width int) string {
	if font.MeasureString(face, text).Ceil() <= width {
		return text
	}
	runes := []rune(text)
	for len(runes) > 0 {
		runes = runes[:len(runes)-1]
		if t := string(runes) + "…"; font.MeasureString(face, t).Ceil() <= width {
			return t
		}
	}
	return ""
}
