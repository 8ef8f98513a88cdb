package daemon

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
	"periph.io/x/conn/v3/gpio"

	"onair/board"
	"onair/internal/config"
	"onair/internal/gpioline"
	"onair/supervisor"
	"onair/web"
	"onair/web/api"
)

// buildPanel makes the front panel on the GPIO lines the config names and
// this board has; with none it is the virtual panel (status and API only).
// A line the board does not have is skipped (logged), not fatal.
func (d *Daemon) buildPanel() error {
	pc := d.cfg.Panel
	log := d.log.Named("panel")
	find := func(key string, l config.Line) gpio.PinIO {
		if !l.Fitted() {
			return nil
		}
		p, err := gpioline.Find(l.Name)
		if err != nil {
			level := log.Warn
			if !errors.Is(err, gpioline.ErrNotFound) {
				level = log.Error
			}
			level("panel: GPIO line skipped", zap.String("key", key), zap.Error(err))
			return nil
		}
		return p
	}
	pins := board.Pins{Buttons: map[board.Button]board.Input{}, LEDs: map[string]board.Output{}}
	buttons := map[board.Button]config.Line{board.GoLive: pc.Buttons.GoLive, board.Failover: pc.Buttons.Failover, board.Audio: pc.Buttons.Audio}
	for name, l := range buttons {
		if p := find("panel.buttons."+string(name), l); p != nil {
			pins.Buttons[name] = board.Input{Pin: p, ActiveLow: l.ActiveLow}
		}
	}
	var uplinks []string
	if d.bond != nil {
		for _, u := range d.cfg.Uplinks {
			uplinks = append(uplinks, u.Name)
		}
	}
	leds := map[string]config.Line{"power": pc.LEDs.Power, "encoder-a": pc.LEDs.EncoderA, "encoder-b": pc.LEDs.EncoderB,
		"audio": pc.LEDs.Audio, "tally": pc.LEDs.Tally, "recording": pc.LEDs.Recording}
	for name, l := range pc.LEDs.Uplinks {
		leds["uplink:"+name] = l
	}
	for name, l := range leds {
		if p := find("panel.leds."+name, l); p != nil {
			pins.LEDs[name] = board.Output{Pin: p, ActiveLow: l.ActiveLow}
		}
	}
	b, err := board.New(board.Config{LongPress: pc.LongPress.D(), Debounce: pc.Debounce.D(), Uplinks: uplinks},
		pins, box{d}, panelActions{d}, log, d.clock)
	if err != nil {
		return err
	}
	d.panel = b
	return d.front.Add(supervisor.ComponentSpec{Name: "panel", Run: b.Run, Backoff: d.backoff()})
}

// panelActions is the box as the panel's buttons act on it.
type panelActions struct{ d *Daemon }

func (a panelActions) GoLive(reason string) error { return a.d.live.GoLive(reason) }

func (a panelActions) Stop(ctx context.Context, reason string) error {
	_, err := a.d.live.Stop(ctx, reason)
	return err
}

func (a panelActions) FailoverVideo() (api.FailoverResult, error) {
	r, err := a.d.twins.Failover()
	res := api.FailoverResult{Result: api.FailoverSwitched, Target: r.Target}
	if r.Pending {
		res.Result, res.Detail = api.FailoverPending, "the twins are not locked"
	}
	return res, err
}

func (a panelActions) SetAudioMode(m api.AudioMode) error { return a.d.sel.SetMode(m) }

// PanelPress presses a front-panel button (the virtual panel; a GPIO press
// takes the same path).
func (b box) PanelPress(button string, long bool) (api.PanelPressResult, error) {
	if b.d.panel == nil {
		return api.PanelPressResult{}, errors.New("daemon: the panel is not running yet")
	}
	r, err := b.d.panel.Press(context.Background(), button, long)
	if errors.Is(err, board.ErrUnknownButton) {
		return r, fmt.Errorf("%w: %w", web.ErrNotFound, err)
	}
	return r, err
}
