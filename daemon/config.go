package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.uber.org/zap"

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
	"recording.dir", "recording.segment", "recording.autostart",
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
// that does not validate changes nothing. Live changes are made one at a
// time, the only one that can be refused (the bitrate) first: if it is
// refused nothing has changed.
func (b box) ApplyConfig(ctx context.Context, raw []byte, dryRun bool) (api.ConfigResult, error) {
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
	if err := d.applyLive(ctx, res.Live, next); err != nil {
		d.events.Add(api.Event{Kind: api.EventConfig, Reason: "refused: " + err.Error()})
		return api.ConfigResult{}, err
	}
	if d.ConfigPath != "" {
		if err := writeFileAtomic(d.ConfigPath, raw); err != nil {
			d.log.Error("config applied live but not saved", zap.Error(err))
			return res, fmt.Errorf("config: applied live (%s) but not saved: %w", strings.Join(res.Live, ", "), err)
		}
		res.Saved = d.ConfigPath
	}
	d.running = next
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

// canApplyLive: a recording key changes live only while recording stays
// configured (a recorder exists and the new dir is set).
func (d *Daemon) canApplyLive(key string, next config.Config) bool {
	if strings.HasPrefix(key, "recording.") {
		return d.recorder() != nil && next.Recording.Dir != ""
	}
	if strings.HasPrefix(key, "audio.") {
		return d.sel != nil
	}
	if strings.HasPrefix(key, "uplinks[") {
		// The same uplinks in the same order: only their policy or cap moved.
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

// applyLive applies the live keys of next, the bitrate first (the only one
// that can be refused).
func (d *Daemon) applyLive(ctx context.Context, keys []string, next config.Config) error {
	if slices.Contains(keys, "video.bitrate_kbps") {
		if _, err := (box{d}).SetVideoBitrate(next.Video.BitrateKbps); err != nil {
			return fmt.Errorf("video.bitrate_kbps: %w", err)
		}
	}
	a := next.Audio
	if slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "audio.") }) {
		if err := d.sel.SetThresholds(a.SilenceDBFS, a.SilenceAfter.D(), a.ReturnAfter.D(), a.LateAfter.D()); err != nil {
			return fmt.Errorf("audio: %w", err) // validated already: not expected
		}
	}
	for i, u := range next.Uplinks {
		p := fmt.Sprintf("uplinks[%d].", i)
		if slices.Contains(keys, p+"policy") || slices.Contains(keys, p+"cap_mb") {
			if err := d.bond.SetPolicy(u.Name, u.Policy, u.CapBytes()); err != nil {
				return fmt.Errorf("%spolicy: %w", p, err)
			}
		}
	}
	if slices.Contains(keys, "recording.dir") || slices.Contains(keys, "recording.segment") {
		return d.replaceRecorder(ctx, next.Recording)
	}
	return nil
}

// replaceRecorder swaps in a recorder with the new dir or segment: the old
// one ends its segment (synced), the new one records from the next
// keyframe if the old one was recording.
func (d *Daemon) replaceRecorder(ctx context.Context, r config.Recording) error {
	old := d.recorder()
	rec, err := record.New(record.Config{Dir: r.Dir, Segment: r.Segment.D(), AutoStart: false},
		record.Deps{Log: d.log.Named("recording"), Clock: d.clock})
	if err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	was := old.Status().State == api.RecordingRecording
	if err := old.Stop(ctx, "config apply"); err != nil {
		return fmt.Errorf("recording: stop: %w", err)
	}
	d.rec.Store(rec)
	if err := d.tail.Restart("recording", "config apply: "+r.Dir); err != nil {
		d.log.Warn("recording component restart", zap.Error(err))
	}
	if was {
		if err := rec.Start("config apply"); err != nil {
			d.log.Warn("recording did not start in the new directory", zap.Error(err)) // its status says why
		}
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed over it: a power cut leaves the old file
// or the new one, never half of one.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer func() { _ = dir.Close() }()
	return dir.Sync()
}
