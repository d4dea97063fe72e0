// Package overlay draws the battle's state into the program: the singers'
// names, the round and the turn's countdown, the current round's vote
// split, the audience's cheer meter for each side and the result, with
// the singer whose turn it is highlighted. It draws small positioned
// images the compositor blends over the picture, so the live program and
// its recording tell the same story.
//
// Names may be in any script: text is shaped with HarfBuzz (go-text's
// port: Arabic joins, marks sit, ligatures form), laid out by the
// Unicode bidi algorithm (Hebrew and Arabic read right to left) and drawn
// with the Noto fonts found at start-up, a face per script, falling back
// character by character; emoji come from Noto Color Emoji. Without
// fonts, Go's own draw what they can (Latin, Greek, Cyrillic).
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

	"golang.org/x/image/vector"

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
	topMaxWidth     = media.ProgramWidth - 2*(cheerX+cheerWidth+16) // clear of the cheer meters

	nameY, nameHeight = 612, 44 // under each half
	nameMaxWidth      = halfWidth - 40

	voteY, voteHeight = 664, 48 // the vote bar, centred
	voteWidth         = 680
	voteBarWidth      = 480
	voteBarHeight     = 22

	// The cheer meters, in the top corners: a heart, the count, and a
	// bar of the side's cheers against the leader's.
	cheerX, cheerY          = 24, 30 // the left one; the right one mirrors it
	cheerWidth, cheerHeight = 220, 60
	cheerPad                = 14
	cheerRow                = 44 // the heart and the count; the bar below
	cheerIcon               = 26
	cheerBarHeight          = 6
)

// Text styles.
var (
	nameStyle  = style{size: 28, bold: true}
	smallStyle = style{size: 24}
	bigStyle   = style{size: 52, bold: true}
	countStyle = style{size: 26, bold: true}
)

// maxCachedTexts bounds the drawn texts kept: the names, the overlay's
// words and the last counts; when full, it starts over.
const maxCachedTexts = 256

// Renderer draws states. It holds the fonts, loaded once, and the texts
// it drew last; it is safe for concurrent use.
type Renderer struct {
	mu    sync.Mutex // the fonts' faces, the shaper and the cache are not
	fonts *fonts
	sh    shaper
	z     vector.Rasterizer
	texts map[textKey]*textImage
}

type textKey struct {
	text     string
	st       style
	maxWidth int
}

// NewRenderer loads the fonts: Noto's, by file name from dirs (the first
// dir holding a file wins; see DefaultFontDirs), and Go's, which draw
// Latin when Noto Sans is missing and are the last resort. With no dirs
// it draws with Go's fonts alone. A dir that cannot be read, or a font
// file that does not parse, is an error; fonts not found are not:
// Coverage says what can be drawn.
func NewRenderer(dirs ...string) (*Renderer, error) {
	f, err := loadFonts(dirs)
	if err != nil {
		return nil, err
	}
	return &Renderer{fonts: f, sh: shaper{fonts: f}, texts: map[textKey]*textImage{}}, nil
}

// Coverage says what the renderer's fonts draw.
func (r *Renderer) Coverage() Coverage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fonts.coverage()
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
	if s.Round > 0 || s.Cheers != [2]int{} {
		for i := range s.Cheers {
			layers = append(layers, r.cheerMeter(s, i))
		}
	}
	return layers
}

// text is s drawn in st, cut with an ellipsis to at most maxWidth
// pixels (0: as long as it is).
func (r *Renderer) text(s string, st style, maxWidth int) *textImage {
	key := textKey{s, st, maxWidth}
	if ti, ok := r.texts[key]; ok {
		return ti
	}
	runes := clean(s)
	var l line
	if maxWidth > 0 {
		l = r.sh.fit(runes, st, maxWidth)
	} else {
		l = r.sh.shape(runes, st)
	}
	ti := rasterize(l, &r.z)
	if len(r.texts) >= maxCachedTexts {
		clear(r.texts)
	}
	r.texts[key] = ti
	return ti
}

// baseline centres a line of st vertically in [y, y+h), by the Latin
// face's ascent and descent whatever the script, so that names of any
// script sit on one line.
func (r *Renderer) baseline(st style, y, h int) int {
	face := r.fonts.latin.face(st.bold)
	ext, _ := face.FontHExtents()
	scale := float32(st.size) / float32(face.Upem())
	return y + round((float32(h)+(ext.Ascender+ext.Descender)*scale)/2)
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

// singerName is slot i's name, or "Singer i" when it has none.
func singerName(s media.Scene, i int) string {
	if name := string(clean(s.Names[i])); name != "" {
		return name
	}
	return "Singer " + strconv.Itoa(i+1)
}

// namePlate is singer i's name under their half, lit while they sing.
func (r *Renderer) namePlate(s media.Scene, i int) *image.RGBA {
	const pad, mark = 16, 8 // text padding; the slot's colour mark on the left
	name := r.text(singerName(s, i), nameStyle, nameMaxWidth-2*pad-mark)
	w := mark + 2*pad + name.width
	x := i*halfWidth + (halfWidth-w)/2
	img := image.NewRGBA(image.Rect(x, nameY, x+w, nameY+nameHeight))
	bg, fg := plate, white
	if s.Turn == i+1 {
		bg, fg = highlight, ink
	}
	fill(img, img.Rect, bg)
	fill(img, image.Rect(x, nameY, x+mark, nameY+nameHeight), slotColors[i])
	name.draw(img, x+mark+pad, r.baseline(nameStyle, nameY, nameHeight), fg)
	return img
}

// topPlate shows the round and the turn's countdown, or the result.
func (r *Renderer) topPlate(s media.Scene) *image.RGBA {
	var line1 string
	var line2 []*textImage
	line2Color := white
	big := func(t string) []*textImage { return []*textImage{r.text(t, bigStyle, topMaxWidth-40)} }
	switch {
	case s.Finished:
		line1 = "Final"
		line2 = r.result(s)
		line2Color = highlight
	case s.Round == 0:
		line1, line2 = "Battle", big("soon")
	default:
		line1 = fmt.Sprintf("Round %d / %d", s.Round, s.Rounds)
		switch {
		case s.Turn != 0:
			rem := max(s.Remaining, 0)
			line2 = big(fmt.Sprintf("%d:%02d", rem/60, rem%60))
			if rem <= 10 {
				line2Color = hurry
			}
		case s.VotingOpen:
			line2 = big("Vote!")
			line2Color = highlight
		default:
			line2 = big("–")
		}
	}
	small := r.text(line1, smallStyle, 0)
	w2 := 0
	for _, t := range line2 {
		w2 += t.width
	}
	w := max(topMinWidth, w2+40, small.width+40)
	x := (media.ProgramWidth - w) / 2
	img := image.NewRGBA(image.Rect(x, topY, x+w, topY+topHeight))
	fill(img, img.Rect, plate)
	small.draw(img, x+(w-small.width)/2, topY+30, dim)
	at := x + (w-w2)/2
	for _, t := range line2 {
		t.draw(img, at, topY+topHeight-18, line2Color)
		at += t.width
	}
	return img
}

// result says who won, "Ann wins 2–1", or "Draw", in pieces drawn left
// to right: the name is a paragraph of its own, so a right-to-left name
// keeps the English after it in place (as an isolate would). The name
// is cut to leave the rest room.
func (r *Renderer) result(s media.Scene) []*textImage {
	name, rest := result(s)
	tail := r.text(rest, bigStyle, 0)
	if name == "" {
		return []*textImage{tail}
	}
	space := r.space(bigStyle)
	return []*textImage{r.text(name, bigStyle, max(topMaxWidth-40-space.width-tail.width, 1)), space, tail}
}

// result is the result's words: the winner's name and the rest ("Ann",
// "wins 2–1"), or no name and "Draw".
func result(s media.Scene) (name, rest string) {
	if !s.Finished || s.Winner != 1 && s.Winner != 2 {
		return "", "Draw"
	}
	name = singerName(s, s.Winner-1)
	if s.Score == [2]int{} {
		return name, "wins"
	}
	won, lost := s.Score[s.Winner-1], s.Score[2-s.Winner]
	return name, fmt.Sprintf("wins %d–%d", won, lost)
}

// space is an empty piece as wide as a space of st.
func (r *Renderer) space(st style) *textImage {
	face := r.fonts.latin.face(st.bold)
	gid, _ := face.NominalGlyph(' ')
	w := face.HorizontalAdvance(gid) * float32(st.size) / float32(face.Upem())
	return &textImage{width: round(w), mask: image.NewAlpha(image.Rectangle{})}
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
	base := r.baseline(countStyle, voteY, voteHeight)
	n1, n2 := r.text(strconv.Itoa(s.Votes[0]), countStyle, 0), r.text(strconv.Itoa(s.Votes[1]), countStyle, 0)
	n1.draw(img, x+(barX-x-n1.width)/2, base, slotColors[0])
	n2.draw(img, bar.Max.X+(x+voteWidth-bar.Max.X-n2.width)/2, base, slotColors[1])
	return img
}

// cheerMeter is side i's cheers: a heart in the side's colour, the
// count, and a bar as long as the side's cheers against the leader's
// (full for the side cheered most). Slot 1's sits in the top left
// corner, slot 2's mirrors it in the top right.
func (r *Renderer) cheerMeter(s media.Scene, i int) *image.RGBA {
	x := cheerX
	if i == 1 {
		x = media.ProgramWidth - cheerX - cheerWidth
	}
	img := image.NewRGBA(image.Rect(x, cheerY, x+cheerWidth, cheerY+cheerHeight))
	fill(img, img.Rect, plate)
	count := r.text(formatCount(s.Cheers[i]), nameStyle, cheerWidth-3*cheerPad-cheerIcon)
	heart := image.Rect(0, 0, cheerIcon, cheerIcon-2).Add(image.Pt(x+cheerPad, cheerY+(cheerRow-cheerIcon)/2+1))
	countX := heart.Max.X + cheerPad/2
	if i == 1 {
		heart = heart.Add(image.Pt(cheerWidth-2*cheerPad-cheerIcon, 0))
		countX = heart.Min.X - cheerPad/2 - count.width
	}
	r.drawHeart(img, heart, slotColors[i])
	count.draw(img, countX, r.baseline(nameStyle, cheerY, cheerRow), white)

	track := image.Rect(x+cheerPad, cheerY+cheerRow, x+cheerWidth-cheerPad, cheerY+cheerRow+cheerBarHeight)
	fill(img, track, noVotes)
	lead := max(s.Cheers[0], s.Cheers[1])
	if n := max(s.Cheers[i], 0); lead > 0 && n > 0 {
		w := max(track.Dx()*n/lead, 1)
		filled := image.Rect(track.Min.X, track.Min.Y, track.Min.X+w, track.Max.Y)
		if i == 1 {
			filled = image.Rect(track.Max.X-w, track.Min.Y, track.Max.X, track.Max.Y)
		}
		fill(img, filled, slotColors[i])
	}
	return img
}

// formatCount writes a count short: 999, 12,345, 1.2M, 34M.
func formatCount(n int) string {
	n = max(n, 0)
	switch {
	case n >= 10_000_000:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1_000_000:
		return fmt.Sprintf("%d.%dM", n/1_000_000, n/100_000%10)
	case n >= 1000:
		return fmt.Sprintf("%d,%03d", n/1000, n%1000)
	}
	return strconv.Itoa(n)
}

// drawHeart fills a heart into box.
func (r *Renderer) drawHeart(img *image.RGBA, box image.Rectangle, c color.RGBA) {
	w, h := float32(box.Dx()), float32(box.Dy())
	r.z.Reset(box.Dx(), box.Dy())
	r.z.MoveTo(0.5*w, 0.97*h)
	r.z.CubeTo(0.2*w, 0.74*h, 0, 0.54*h, 0, 0.3*h)
	r.z.CubeTo(0, 0.12*h, 0.14*w, 0, 0.3*w, 0)
	r.z.CubeTo(0.4*w, 0, 0.47*w, 0.06*h, 0.5*w, 0.15*h)
	r.z.CubeTo(0.53*w, 0.06*h, 0.6*w, 0, 0.7*w, 0)
	r.z.CubeTo(0.86*w, 0, w, 0.12*h, w, 0.3*h)
	r.z.CubeTo(w, 0.54*h, 0.8*w, 0.74*h, 0.5*w, 0.97*h)
	r.z.ClosePath()
	r.z.Draw(img, box, image.NewUniform(c), image.Point{})
}

func darken(c color.RGBA) color.RGBA {
	return color.RGBA{c.R / 2, c.G / 2, c.B / 2, 255}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}
