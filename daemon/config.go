package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"onair/internal/atomicfile"
	"onair/internal/config"
	"onair/record"
	"onair/web"
	"onair/web/api"
)

// liveKeys are the configuration keys config apply changes without a
// restart ([*]: any index); every other changed key is saved and takes effect at the next
// start of onaird.
var liveKeys = []string{
	"video.bitrate_kbps",
	"audio.silence_dbfs", "audio.silence_after", "audio.return_after", "audio.late_after",
	"recording.dir", "recording.segment",
	"uplinks[*].policy", "uplinks[*].cap_mb",
}

// isLive: key is one of liveKeys (an uplink's by any index).
func isLive(key string) bool {
	if i, j := strings.Index(key, "["), strings.Index(key, "]"); i > 0 && j > i {
		key = key[:i+1] + "*" + key[j:]
	}
	return slices.Contains(liveKeys, key)
}

// invalid is a configuration that does not validate: it reads as the
// config's own error (the key named) and is web.ErrInvalid.
type invalid struct{ err error }

func (e invalid) Error() string        { return e.err.Error() }
func (e invalid) Unwrap() error        { return e.err }
func (e invalid) Is(target error) bool { return target == web.ErrInvalid }

// ApplyConfig validates raw and, unless dryRun, applies the keys that can
// change live, then saves raw as the configuration file. A configuration
// that does not validate changes nothing; so does one whose live part
// cannot be prepared (the new recorder). What can fail is done before
// anything changes; what follows cannot be refused.
func (b box) ApplyConfig(_ context.Context, raw []byte, dryRun bool) (api.ConfigResult, error) {
	d := b.d
	d.cfgMu.Lock()
	defer d.cfgMu.Unlock()
	next, err := config.Parse(raw)
	if err != nil {
		if !dryRun {
			d.events.Add(api.Event{Kind: api.EventConfig, Reason: "refused: " + err.Error()})
		}
		return api.ConfigResult{}, invalid{err}
	}
	changed, err := config.Changed(d.running, next)
	if err != nil {
		return api.ConfigResult{}, err
	}
	res := api.ConfigResult{DryRun: dryRun, Live: []string{}, Restart: []string{}}
	for _, k := range changed {
		if isLive(k) && d.canApplyLive(k, next) {
			res.Live = append(res.Live, k)
		} else {
			res.Restart = append(res.Restart, k)
		}
	}
	if dryRun {
		return res, nil
	}
	var rec *record.Recorder
	if slices.Contains(res.Live, "recording.dir") || slices.Contains(res.Live, "recording.segment") {
		r := next.Recording
		if rec, err = record.New(record.Config{Dir: r.Dir, Segment: r.Segment.D()},
			record.Deps{Log: d.log.Named("recording"), Clock: d.clock}); err != nil {
			d.events.Add(api.Event{Kind: api.EventConfig, Reason: "refused: recording: " + err.Error()})
			return api.ConfigResult{}, fmt.Errorf("recording: %w", err)
		}
	}
	if slices.Contains(res.Live, "video.bitrate_kbps") {
		// In range (canApplyLive): refused only by a box that is stopping.
		if _, err := (box{d}).SetVideoBitrate(next.Video.BitrateKbps); err != nil {
			d.events.Add(api.Event{Kind: api.EventConfig, Reason: "refused: video.bitrate_kbps: " + err.Error()})
			return api.ConfigResult{}, fmt.Errorf("video.bitrate_kbps: %w", err)
		}
	}
	d.applyLive(res.Live, next, rec)
	d.running = effective(d.running, next, res.Live)
	if d.ConfigPath != "" {
		if err := writeFileAtomic(d.ConfigPath, raw); err != nil {
			d.log.Error("config applied live but not saved", zap.Error(err))
			d.events.Add(api.Event{Kind: api.EventConfig, Reason: fmt.Sprintf("applied live %s but NOT saved: %v", listOrNone(res.Live), err)})
			return res, fmt.Errorf("config: applied live (%s) but not saved: %w", listOrNone(res.Live), err)
		}
		res.Saved = d.ConfigPath
	}
	d.events.Add(api.Event{Kind: api.EventConfig, Reason: fmt.Sprintf("applied: live %s; at the next restart %s",
		listOrNone(res.Live), listOrNone(res.Restart))})
	return res, nil
}

func listOrNone(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}

// canApplyLive: the bitrate within what the encoders started with; a
// recording key while recording stays configured; an uplink's policy or
// cap while the uplinks are the same, in the same order, as running.
func (d *Daemon) canApplyLive(key string, next config.Config) bool {
	switch {
	case key == "video.bitrate_kbps":
		return next.Video.BitrateKbps >= 100 && next.Video.BitrateKbps <= d.cfg.Video.BitrateKbps
	case strings.HasPrefix(key, "recording."):
		return d.recorder() != nil && next.Recording.Dir != ""
	case strings.HasPrefix(key, "audio."):
		return d.sel != nil
	case strings.HasPrefix(key, "uplinks["):
		old := d.running.Uplinks
		if d.bond == nil || len(old) != len(next.Uplinks) {
			return false
		}
		for i := range old {
			if old[i].Name != next.Uplinks[i].Name || old[i].Interface != next.Uplinks[i].Interface {
				return false
			}
		}
	}
	return true
}

// applyLive applies the live keys of next but the bitrate (done first, by
// the caller): none of these can be refused any more.
func (d *Daemon) applyLive(keys []string, next config.Config, rec *record.Recorder) {
	a := next.Audio
	if slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "audio.") }) {
		if err := d.sel.SetThresholds(a.SilenceDBFS, a.SilenceAfter.D(), a.ReturnAfter.D(), a.LateAfter.D()); err != nil {
			d.log.Error("[unexpected] validated audio thresholds refused", zap.Error(err))
		}
	}
	for i, u := range next.Uplinks {
		p := fmt.Sprintf("uplinks[%d].", i)
		if slices.Contains(keys, p+"policy") || slices.Contains(keys, p+"cap_mb") {
			if err := d.bond.SetPolicy(u.Name, u.Policy, u.CapBytes()); err != nil {
				d.log.Error("[unexpected] validated uplink policy refused", zap.String("uplink", u.Name), zap.Error(err))
			}
		}
	}
	if rec != nil {
		d.replaceRecorder(rec, next.Recording.Dir)
	}
}

// effective is running with the live keys of next applied: what the box
// now runs, against which the next config apply is compared (a key that
// waits for a restart stays different, and is said again).
func effective(running, next config.Config, live []string) config.Config {
	eff := running
	eff.Uplinks = slices.Clone(running.Uplinks)
	for _, k := range live {
		switch {
		case k == "video.bitrate_kbps":
			eff.Video.BitrateKbps = next.Video.BitrateKbps
		case k == "audio.silence_dbfs":
			eff.Audio.SilenceDBFS = next.Audio.SilenceDBFS
		case k == "audio.silence_after":
			eff.Audio.SilenceAfter = next.Audio.SilenceAfter
		case k == "audio.return_after":
			eff.Audio.ReturnAfter = next.Audio.ReturnAfter
		case k == "audio.late_after":
			eff.Audio.LateAfter = next.Audio.LateAfter
		case k == "recording.dir":
			eff.Recording.Dir = next.Recording.Dir
		case k == "recording.segment":
			eff.Recording.Segment = next.Recording.Segment
		case strings.HasPrefix(k, "uplinks["):
			var i int
			if _, err := fmt.Sscanf(k, "uplinks[%d]", &i); err == nil && i < len(eff.Uplinks) && i < len(next.Uplinks) {
				eff.Uplinks[i].Policy, eff.Uplinks[i].CapMB = next.Uplinks[i].Policy, next.Uplinks[i].CapMB
			}
		}
	}
	return eff
}

// replaceRecorder swaps in rec (the new dir or segment): the old recorder
// ends its segment (synced) on a context of its own, so a client that
// goes away cannot leave it half done; rec records from the next keyframe
// if the old one was recording.
func (d *Daemon) replaceRecorder(rec *record.Recorder, dir string) {
	d.recMu.Lock()
	defer d.recMu.Unlock()
	old := d.recorder()
	was := old.Status().State == api.RecordingRecording
	// The old Run still runs: it closes the segment. Then the component
	// runs the new recorder (the new segment starts at the next keyframe
	// anyway, so the bytes between are not a loss of playable video).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := old.Stop(ctx, "config apply: recording moves to "+dir); err != nil {
		d.log.Warn("the old recording's last segment did not close cleanly", zap.Error(err))
	}
	d.rec.Store(rec)
	if err := d.tail.Restart("recording", "config apply: "+dir); err != nil {
		d.log.Warn("recording component restart", zap.Error(err))
	}
	if was {
		if err := rec.Start("config apply"); err != nil {
			d.log.Warn("recording did not start in the new directory", zap.Error(err)) // its status says why
		}
	}
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed over it: a power cut leaves the old file
// or the new one, never half of one. A symlink is followed (the file it
// points at is replaced) and the file keeps its mode (0600 when new).
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o600)
	if target, lerr := filepath.EvalSymlinks(path); lerr == nil {
		path = target // replace the file a symlink points at, keep the link
		if fi, serr := os.Stat(path); serr == nil {
			mode = fi.Mode().Perm()
		}
	}
	return atomicfile.WriteFile(path, data, mode)
}
