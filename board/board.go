// Package board is the front panel: three buttons and a row of LEDs, on
// GPIO lines through periph (gpio.PinIn / gpio.PinOut on the chardev lines
// the config names), or virtual where no GPIO exists (a laptop, CI, the
// demo): the same logic then shows its LEDs in /api/status and takes
// presses from POST /api/panel/press.
//
// Buttons:
//
//	go_live   short press while stopped: go live; while live a short press
//	          does nothing (a bump cannot end a show); held for
//	          panel.long_press (2 s): stop, a clean end
//	failover  force video failover to the other encoder, without a gap
//	audio     force backup audio; pressed again: back to auto
//
// Presses are debounced (a level counts once it held panel.debounce, 50 ms:
// periph's gpioutil.Debounce does not filter bounces on every driver, so the
// lockout is done here), and a press acts exactly once. The LEDs come from
// one table (Table), refreshed from the box's status every Refresh.
//
// Not for: what an action does (the box's live control, the twins and the
// audio selector do it, through Actions), or finding GPIO lines
// (internal/gpioline). It never imports package web, only its types.
package board

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"periph.io/x/conn/v3/gpio"

	"onair/web/api"
)

// Button names a panel button.
type Button string

// The buttons.
const (
	GoLive   Button = "go_live"
	Failover Button = "failover"
	Audio    Button = "audio"
)

// Buttons are the panel's buttons, in panel order.
var Buttons = []Button{GoLive, Failover, Audio}

// ErrUnknownButton is returned by Press for a name that is not a button.
var ErrUnknownButton = errors.New("board: no such button")

// Input is a button's line.
type Input struct {
	Pin       gpio.PinIn
	ActiveLow bool // pressed reads low (a button to ground with a pull-up)
}

// Output is an LED's line.
type Output struct {
	Pin       gpio.PinOut
	ActiveLow bool // lit when driven low
}

// Pins are the GPIO lines found; what is missing exists only virtually.
type Pins struct {
	Buttons map[Button]Input
	LEDs    map[string]Output // by LED name (LEDNames)
}

// Config configures the panel.
type Config struct {
	LongPress time.Duration // default 2 s
	Debounce  time.Duration // default 50 ms
	Refresh   time.Duration // default 100 ms: LED states recomputed from the status
	Uplinks   []string      // uplink names, one LED each
}

// StatusSource is the box. Run calls it outside the board's lock: the box's
// Status calls the board's Status.
type StatusSource interface{ Status() api.Status }

// Actions are what the buttons do.
type Actions interface {
	GoLive(reason string) error
	// Stop ends the stream cleanly; it takes seconds, so it runs apart
	// from the buttons and the LEDs.
	Stop(ctx context.Context, reason string) error
	FailoverVideo() (api.FailoverResult, error)
	SetAudioMode(m api.AudioMode) error
}

// Board is the panel. Status and Press are safe for concurrent use.
type Board struct {
	cfg   Config
	pins  Pins
	src   StatusSource
	act   Actions
	log   *zap.Logger
	clock clockwork.Clock

	press sync.Mutex // one press at a time: each acts on the status it read

	mu      sync.Mutex
	ctx     context.Context // Run's: a stop under way is cut when Run ends
	stops   sync.WaitGroup  // stops under way (Add under mu, while !closing)
	closing bool
	leds    []api.LEDStatus
	last    string
	at      time.Time
}

// New checks the configuration. Nothing runs until Run.
func New(cfg Config, pins Pins, src StatusSource, act Actions, log *zap.Logger, clock clockwork.Clock) (*Board, error) {
	if src == nil || act == nil {
		return nil, errors.New("board: a status source and actions are required")
	}
	if cfg.LongPress <= 0 {
		cfg.LongPress = 2 * time.Second
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 50 * time.Millisecond
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 100 * time.Millisecond
	}
	if cfg.Debounce >= cfg.LongPress {
		return nil, fmt.Errorf("board: debounce %s must be shorter than the long press %s", cfg.Debounce, cfg.LongPress)
	}
	for b := range pins.Buttons {
		if !validButton(string(b)) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownButton, b)
		}
	}
	known := map[string]bool{}
	for _, n := range LEDNames(cfg.Uplinks) {
		known[n] = true
	}
	for n := range pins.LEDs {
		if !known[n] {
			return nil, fmt.Errorf("board: no LED %q", n)
		}
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	b := &Board{cfg: cfg, pins: pins, src: src, act: act, log: log, clock: clock, ctx: context.Background()}
	for _, n := range LEDNames(cfg.Uplinks) {
		b.leds = append(b.leds, api.LEDStatus{Name: n, Pattern: api.LEDOff, Meaning: "starting"})
	}
	return b, nil
}

func validButton(s string) bool {
	for _, b := range Buttons {
		if string(b) == s {
			return true
		}
	}
	return false
}

// Run watches the buttons, refreshes the LED states and drives the LED
// lines until ctx is done; it returns after its goroutines (and any stop it
// started) have exited, with every LED line off.
func (b *Board) Run(ctx context.Context) error {
	b.mu.Lock()
	b.ctx, b.closing = ctx, false
	b.mu.Unlock()
	var wg sync.WaitGroup
	for name, in := range b.pins.Buttons {
		if in.Pin == nil {
			continue
		}
		pull := gpio.PullDown // idle low, pressed high
		if in.ActiveLow {
			pull = gpio.PullUp // a button to ground
		}
		err := in.Pin.In(pull, gpio.BothEdges)
		if err != nil { // a line without configurable bias: the board has its own resistor
			err = in.Pin.In(gpio.PullNoChange, gpio.BothEdges)
		}
		if err != nil {
			b.log.Error("board: button line unusable", zap.String("button", string(name)), zap.Error(err))
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); b.watch(ctx, name, in) }()
	}
	b.refresh()
	refresh := b.clock.NewTicker(b.cfg.Refresh)
	defer refresh.Stop()
	// The blink phases drive LED lines; with none fitted (the virtual
	// panel) there is nothing to drive and no reason to wake 8 times a
	// second (issue 14).
	var blinkC <-chan time.Time
	if b.hasLEDLines() {
		blink := b.clock.NewTicker(125 * time.Millisecond) // fast blink 4 Hz: one phase per tick; slow 1 Hz: four
		defer blink.Stop()
		blinkC = blink.Chan()
	}
	phase := 0
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			b.mu.Lock()
			b.closing = true
			b.mu.Unlock()
			b.stops.Wait()
			for _, o := range b.pins.LEDs {
				if o.Pin != nil {
					_ = o.Pin.Out(level(false, o.ActiveLow))
				}
			}
			return nil
		case <-refresh.Chan():
			b.refresh()
		case <-blinkC:
			phase++
			b.drive(phase)
		}
	}
}

// hasLEDLines reports whether any LED has a GPIO line.
func (b *Board) hasLEDLines() bool {
	for _, o := range b.pins.LEDs {
		if o.Pin != nil {
			return true
		}
	}
	return false
}

// refresh recomputes the LEDs from the box's status (read without the lock).
func (b *Board) refresh() {
	leds := LEDs(b.src.Status(), b.cfg.Uplinks)
	b.mu.Lock()
	b.leds = leds
	b.mu.Unlock()
}

// drive sets every LED line for blink phase n (a tick every 125 ms).
func (b *Board) drive(n int) {
	b.mu.Lock()
	leds := b.leds
	b.mu.Unlock()
	for _, l := range leds {
		o, ok := b.pins.LEDs[l.Name]
		if !ok || o.Pin == nil {
			continue
		}
		if err := o.Pin.Out(level(Lit(l.Pattern, n), o.ActiveLow)); err != nil && n%80 == 0 {
			b.log.Warn("board: LED line", zap.String("led", l.Name), zap.Error(err))
		}
	}
}

// Lit says whether an LED with pattern p is lit in blink phase n (one phase
// per 125 ms: fast blink 4 Hz, slow blink 1 Hz).
func Lit(p api.LEDPattern, n int) bool {
	switch p {
	case api.LEDSolid:
		return true
	case api.LEDFastBlink:
		return n%2 == 0
	case api.LEDSlowBlink:
		return n%8 < 4
	}
	return false
}

func level(on, activeLow bool) gpio.Level { return gpio.Level(on != activeLow) }

// watch follows one button line: a level counts once it held for the
// debounce time; a press held for LongPress acts as long at that moment
// (its release does nothing more), one released before acts as short.
func (b *Board) watch(ctx context.Context, name Button, in Input) {
	read := func() bool { return (in.Pin.Read() == gpio.High) != in.ActiveLow }
	accepted := read()
	cand, candAt := accepted, b.clock.Now()
	var downAt time.Time
	longDone := false
	settle := func(now time.Time) { // the candidate held since candAt: accept it once it held the debounce time
		if cand == accepted || now.Sub(candAt) < b.cfg.Debounce {
			return
		}
		accepted = cand
		if accepted {
			downAt, longDone = candAt, false
		} else if !downAt.IsZero() && !longDone {
			b.act1(name, false)
		}
	}
	for ctx.Err() == nil {
		wait := 100 * time.Millisecond
		if cand != accepted || accepted {
			wait = max(b.cfg.Debounce/5, time.Millisecond)
		}
		in.Pin.WaitForEdge(wait)
		now := b.clock.Now()
		settle(now) // the level before this edge may have held long enough
		if lvl := read(); lvl != cand {
			cand, candAt = lvl, now
		}
		settle(now)
		if accepted && !longDone && !downAt.IsZero() && now.Sub(downAt) >= b.cfg.LongPress {
			longDone = true
			b.act1(name, true)
		}
	}
}

func (b *Board) act1(name Button, long bool) {
	b.mu.Lock()
	ctx := b.ctx
	b.mu.Unlock()
	if _, err := b.Press(ctx, string(name), long); err != nil {
		b.log.Warn("board: press", zap.String("button", string(name)), zap.Error(err))
	}
}

// Press is one press of a button (a GPIO press or the virtual panel's):
// it acts once and says what it did. A stop it starts runs under Run's
// context (cut when the panel ends), not the caller's.
func (b *Board) Press(_ context.Context, button string, long bool) (api.PanelPressResult, error) {
	if !validButton(button) {
		return api.PanelPressResult{}, fmt.Errorf("%w: %q (buttons: go_live, failover, audio)", ErrUnknownButton, button)
	}
	b.press.Lock()
	defer b.press.Unlock()
	st := b.src.Status() // outside the lock
	res := api.PanelPressResult{Button: button, Long: long}
	var err error
	switch Button(button) {
	case GoLive:
		switch {
		case st.OnAir.Phase == api.OnAirStopped:
			res.Action = "go live"
			err = b.act.GoLive("panel")
		case st.OnAir.Phase == api.OnAirStopping:
			res.Action = "ignored: a stop is under way"
		case !long:
			res.Action = "ignored: go_live needs a long press to stop"
		default:
			res.Action = "stop (long press)"
			b.mu.Lock()
			if b.closing {
				b.mu.Unlock()
				return res, errors.New("board: the panel is shutting down")
			}
			stopCtx := b.ctx
			b.stops.Add(1)
			b.mu.Unlock()
			go func() {
				defer b.stops.Done()
				if serr := b.act.Stop(stopCtx, "panel"); serr != nil {
					b.log.Error("board: stop", zap.Error(serr))
				}
			}()
		}
	case Failover:
		var r api.FailoverResult
		r, err = b.act.FailoverVideo()
		switch {
		case err != nil:
			res.Action = "refused: " + err.Error()
		case r.Result == api.FailoverPending:
			res.Action = "failover video: pending, " + r.Target + " takes over at its next seamless point"
		default:
			res.Action = "failover video: switched to " + r.Target
		}
	case Audio:
		if st.Audio.Mode == api.AudioAuto || st.Audio.Mode == "" {
			res.Action = "force backup audio"
			err = b.act.SetAudioMode(api.AudioBackup)
		} else {
			res.Action = "audio back to auto"
			err = b.act.SetAudioMode(api.AudioAuto)
		}
	}
	kind := "short"
	if long {
		kind = "long"
	}
	b.log.Info("panel press", zap.String("button", button), zap.String("press", kind), zap.String("action", res.Action), zap.Error(err))
	b.mu.Lock()
	b.last, b.at = fmt.Sprintf("%s (%s): %s", button, kind, res.Action), b.clock.Now()
	b.mu.Unlock()
	if err != nil && Button(button) == Failover {
		return res, nil // the refusal is the answer
	}
	return res, err
}

// Status is the panel: the LEDs as last refreshed, the buttons, the last
// press. It never calls the status source.
func (b *Board) Status() api.PanelStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := api.PanelStatus{Virtual: len(b.pins.Buttons) == 0 && len(b.pins.LEDs) == 0,
		LEDs: append([]api.LEDStatus(nil), b.leds...), LastPress: b.last, LastPressAt: b.at}
	for _, n := range Buttons {
		st.Buttons = append(st.Buttons, string(n))
	}
	return st
}
