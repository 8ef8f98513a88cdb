package encoder

import "testing"

// The slate is what the viewer sees when capture is gone: a caption above a
// thin red band across the whole width, on dark grey. Pinned: the caption is
// drawn, the band's luma and chroma are where the doc says, and nothing else
// is coloured.
func TestSlateHasCaptionAndBand(t *testing.T) {
	for _, sz := range [][2]int{{1280, 720}, {720, 576}, {320, 240}} {
		w, h := sz[0], sz[1]
		s, err := Slate(w, h, "SIGNAL LOST")
		if err != nil {
			t.Fatal(err)
		}
		cw, ch := (w+1)/2, (h+1)/2
		if len(s) != w*h+2*cw*ch {
			t.Fatalf("%dx%d: size %d", w, h, len(s))
		}
		y, u, v := s[:w*h], s[w*h:w*h+cw*ch], s[w*h+cw*ch:]
		bandTop, bandBot := h*58/100, h*62/100
		if bandBot <= bandTop {
			t.Fatalf("%dx%d: no band rows", w, h)
		}

		bright := 0
		for _, p := range y[:bandTop*w] {
			if p > 200 {
				bright++
			}
		}
		if want := w * h / 500; bright < want {
			t.Errorf("%dx%d: caption not drawn: %d bright luma pixels above the band, want ≥ %d", w, h, bright, want)
		}
		for row := bandTop; row < bandBot; row++ {
			for col := 0; col < w; col++ {
				if p := y[row*w+col]; p != 16 {
					t.Fatalf("%dx%d: band luma at row %d col %d is %d, want 16", w, h, row, col, p)
				}
			}
		}
		for _, row := range []int{bandBot, h - 1} { // below the band: plain background
			if p := y[row*w+w/2]; p != 40 {
				t.Errorf("%dx%d: luma at row %d is %d, want the background 40", w, h, row, p)
			}
		}
		red, neutral := 0, 0
		for row := 0; row < ch; row++ {
			inBand := row*2 >= bandTop && row*2 < bandBot
			for col := 0; col < cw; col++ {
				cb, cr := u[row*cw+col], v[row*cw+col]
				switch {
				case inBand && cb < 110 && cr > 200:
					red++
				case !inBand && cb == 128 && cr == 128:
					neutral++
				default:
					t.Fatalf("%dx%d: chroma row %d col %d (band %v): Cb %d Cr %d", w, h, row, col, inBand, cb, cr)
				}
			}
		}
		if red == 0 || red+neutral != cw*ch {
			t.Errorf("%dx%d: %d red and %d neutral chroma samples of %d", w, h, red, neutral, cw*ch)
		}
	}
}
