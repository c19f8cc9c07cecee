// Package captcha makes the challenges of XEP-0158 CAPTCHA Forms that an open in-band
// registration (XEP-0077), the web sign-up page and CAPTCHA-protected rooms ask for: a
// short random text drawn as a distorted PNG image (the "ocr" challenge), the check of the
// text a human read from it, and the challenge's fields and image as XEP-0158 and
// XEP-0231 carry them (xmpp.go).
//
// It draws with the standard library and the 7×13 bitmap font of golang.org/x/image, and
// keeps nothing: the caller keeps a Challenge for as long as its answer may come, and
// writes the rest of the form and the stanza around it. A CAPTCHA slows scripted sign-ups
// down and makes them cost a solver; it does not stop a determined one, which is why the
// registration budget per address stays.
package captcha

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"image"
	"image/color"
	"image/png"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Size of the image, and of the text in it.
const (
	Width   = 220
	Height  = 70
	Letters = 6
	// TTL is how long an answer is taken after the challenge was made.
	TTL = 5 * time.Minute
)

// alphabet leaves out what reads as something else in a small bitmap font: 0/O/Q, 1/I,
// 2/Z, 5/S, 6/G, 8/B.
const alphabet = "ACDEFHJKLMNPRTUVWXY34679"

// Challenge is one CAPTCHA: its id (for the form's challenge field), the image, and what
// checks the answer.
type Challenge struct {
	ID      string
	PNG     []byte
	Expires time.Time
	answer  string
}

// New makes a challenge at now.
func New(now time.Time) (*Challenge, error) {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	r := mrand.New(mrand.NewChaCha8(seed))
	text := make([]byte, Letters)
	for i := range text {
		text[i] = alphabet[r.IntN(len(alphabet))]
	}
	img := draw(string(text), r)
	var b bytes.Buffer
	if err := (&png.Encoder{BufferPool: encoders{}}).Encode(&b, img); err != nil {
		return nil, err
	}
	var id [12]byte
	rand.Read(id[:])
	return &Challenge{ID: hex.EncodeToString(id[:]), PNG: b.Bytes(), Expires: now.Add(TTL), answer: string(text)}, nil
}

// encoders keeps png's encoder state (most of it zlib's, ~800 KB) between challenges.
type encoders struct{}

var encoderPool sync.Pool

func (encoders) Get() *png.EncoderBuffer {
	b, _ := encoderPool.Get().(*png.EncoderBuffer)
	return b
}

func (encoders) Put(b *png.EncoderBuffer) { encoderPool.Put(b) }

// Text is what the image shows (for tests that cannot read it).
func (c *Challenge) Text() string { return c.answer }

// CID is the XEP-0231 content id the form's media element names the image by.
func (c *Challenge) CID() string {
	h := sha1.Sum(c.PNG)
	return "sha1+" + hex.EncodeToString(h[:]) + "@bob.xmpp.org"
}

// Check reports whether answer is the challenge's text at now: letter case and spaces do
// not matter, and an expired challenge takes no answer.
func (c *Challenge) Check(answer string, now time.Time) bool {
	if now.After(c.Expires) {
		return false
	}
	a := strings.ToUpper(strings.Join(strings.Fields(answer), ""))
	return subtle.ConstantTimeCompare([]byte(a), []byte(c.answer)) == 1
}

// draw renders text in the bitmap font, then maps every pixel of the image back into
// that bitmap through a per-letter offset, a shear and two waves, over a noisy
// background crossed by lines.
func draw(text string, r *mrand.Rand) *image.Paletted {
	const gw, gh = 7, 13 // basicfont.Face7x13's cell
	src := image.NewAlpha(image.Rect(0, 0, gw*len(text), gh))
	d := font.Drawer{Dst: src, Src: image.Opaque, Face: basicfont.Face7x13, Dot: fixed.P(0, 11)}
	d.DrawString(text)

	pal := make(color.Palette, 16)
	for i := range pal {
		v := uint8(255 - i*16)
		pal[i] = color.Gray{Y: v}
	}
	img := image.NewPaletted(image.Rect(0, 0, Width, Height), pal)
	// The text fills the width but for margins that the waves and jitter below cannot
	// push it out of.
	scale := min(float64(Width-28)/float64(gw*len(text)), float64(Height-20)/gh)
	left := (Width - float64(gw*len(text))*scale) / 2
	dy := make([]float64, len(text))
	shear := make([]float64, len(text))
	for i := range dy {
		dy[i] = (r.Float64() - 0.5) * 1.6
		shear[i] = (r.Float64() - 0.5) * 0.5
	}
	ax, fx, px := 0.8+r.Float64()*0.6, 0.05+r.Float64()*0.05, r.Float64()*2*math.Pi
	ay, fy, py := 0.5+r.Float64()*0.5, 0.03+r.Float64()*0.04, r.Float64()*2*math.Pi
	top := (Height - gh*scale) / 2
	for y := range Height {
		for x := range Width {
			sx := (float64(x)-left)/scale + ax*math.Sin(float64(y)*fx+px)
			i := int(sx) / gw
			shade := 1 + r.IntN(3) // the background's grain
			if i >= 0 && i < len(text) {
				sy := (float64(y)-top)/scale + dy[i] + ay*math.Sin(float64(x)*fy+py)
				sx += shear[i] * (sy - gh/2)
				if src.AlphaAt(int(sx), int(sy)).A > 0 {
					shade = 12 + r.IntN(4)
				}
			}
			img.SetColorIndex(x, y, uint8(shade))
		}
	}
	for range 5 + r.IntN(3) { // lines across the text, thinner than its strokes
		x0, y0 := r.Float64()*Width/3, r.Float64()*Height
		x1, y1 := Width-r.Float64()*Width/3, r.Float64()*Height
		for t := 0.0; t <= 1; t += 1.0 / Width {
			x, y := int(x0+(x1-x0)*t), int(y0+(y1-y0)*t+2*math.Sin(t*9))
			img.SetColorIndex(x, y, uint8(7+r.IntN(6)))
		}
	}
	return img
}
