package encoder

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Slate draws the "signal lost" picture the box shows when capture is gone:
// dark grey with a centred caption and a thin red band, as packed YUV 4:2:0 of
// the given size. It is drawn once at start; no file or device is involved, so
// it works when everything else has failed.
func Slate(width, height int, caption string) ([]byte, error) {
	ft, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return nil, fmt.Errorf("encoder: slate font: %w", err)
	}
	size := float64(height) / 10
	face, err := opentype.NewFace(ft, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, fmt.Errorf("encoder: slate face: %w", err)
	}
	defer func() { _ = face.Close() }() // frees the rasteriser; nothing to report

	const bg, band = 40, 16 // luma of background and of the band under the caption
	y := image.NewGray(image.Rect(0, 0, width, height))
	draw.Draw(y, y.Bounds(), &image.Uniform{color.Gray{bg}}, image.Point{}, draw.Src)
	bandTop, bandBot := height*58/100, height*62/100
	draw.Draw(y, image.Rect(0, bandTop, width, bandBot), &image.Uniform{color.Gray{band}}, image.Point{}, draw.Src)

	d := &font.Drawer{Dst: y, Src: image.White, Face: face}
	w := d.MeasureString(caption)
	d.Dot = fixed.Point26_6{X: (fixed.I(width) - w) / 2, Y: fixed.I(height * 50 / 100)}
	d.DrawString(caption)

	cw, ch := (width+1)/2, (height+1)/2
	out := make([]byte, width*height+2*cw*ch)
	copy(out, y.Pix)
	u, v := out[width*height:width*height+cw*ch], out[width*height+cw*ch:]
	for row := 0; row < ch; row++ {
		red := row*2 >= bandTop && row*2 < bandBot
		for col := 0; col < cw; col++ {
			if red { // saturated red band: Cb low, Cr high
				u[row*cw+col], v[row*cw+col] = 90, 240
			} else {
				u[row*cw+col], v[row*cw+col] = 128, 128
			}
		}
	}
	return out, nil
}

// Black is a black YUV 4:2:0 picture of the given size.
func Black(width, height int) []byte {
	cw, ch := (width+1)/2, (height+1)/2
	out := make([]byte, width*height+2*cw*ch)
	for i := range out[:width*height] {
		out[i] = 16
	}
	for i := width * height; i < len(out); i++ {
		out[i] = 128
	}
	return out
}
