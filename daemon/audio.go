package daemon

import (
	"time"

	"onair/audio"
	"onair/encoder/link"
	"onair/encoder/ring"
	"onair/encoder/wire"
	"onair/web/api"
)

// audioStallAfter: an audio chain with no frame for this long is restarted
// (the selector stops waiting for it after audio.late_after).
const audioStallAfter = time.Second

// buildAudio makes the selector and the audio chains (main, backup) that
// feed it; add makes one chain's child.
func (d *Daemon) buildAudio(clock ring.Cadence, add func(wire.ChildArgs, hooks) (*child, error)) error {
	a := d.cfg.Audio
	var err error
	d.sel, err = audio.New(audio.Config{Clock: clock, SilenceDBFS: a.SilenceDBFS, SilenceAfter: a.SilenceAfter.D(),
		ReturnAfter: a.ReturnAfter.D(), LateAfter: a.LateAfter.D()}, d.prog, ring.MonotonicNs, d.clock, d.log.Named("audio"))
	if err != nil {
		return err
	}
	for _, ch := range []struct {
		c         audio.Chain
		name, src string
	}{
		{audio.Main, "audio-main", a.Main.Source.String()},
		{audio.Backup, "audio-backup", a.Backup.Source.String()},
	} {
		if ch.src == "" {
			continue
		}
		c := ch.c
		args := wire.ChildArgs{Role: wire.RoleAudio, Name: ch.name, Source: ch.src, EpochNs: d.ring.EpochNs(), BitrateKbps: a.BitrateKbps}
		kid, err := add(args, hooks{
			deliver: func(m link.Msg) {
				if l, adts, err := wire.SplitAudio(m.Data); err == nil { // the link checked it
					d.sel.Put(c, m.H.Index, l, adts)
				}
			},
			up:   func() { d.sel.Up(c) },
			down: func() { d.sel.Down(c) },
		})
		if err != nil {
			return err
		}
		d.chains[c] = kid
	}
	return nil
}

// audioStatus is the programme's audio, the selector and the chains' rates.
func (d *Daemon) audioStatus() api.AudioStatus {
	st := d.sel.Status()
	prog := d.prog.Status()
	st.Frames, st.LastIndex, st.GapFrames, st.Duplicates = prog.AudioFrames, prog.AudioLast, prog.AudioGaps, prog.AudioDups
	chains := st.Chains[:0]
	for c, ch := range st.Chains {
		kid := d.chains[c]
		if kid == nil {
			continue // not configured
		}
		p := kid.link.Progress()
		ch.RatePPM, ch.RateMeasured, ch.OffsetMs = p.RatePPM, p.RateMeasured, p.OffsetMs
		chains = append(chains, ch)
	}
	st.Chains = chains
	return st
}

// SetAudioSource sets the audio mode (web.Box).
func (b box) SetAudioSource(m api.AudioMode) (api.AudioStatus, error) {
	if err := b.d.sel.SetMode(m); err != nil {
		return api.AudioStatus{}, err
	}
	return b.d.audioStatus(), nil
}
