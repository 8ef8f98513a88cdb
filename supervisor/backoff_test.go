package supervisor

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestBackoffDelayIsCappedExponential(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		b    Backoff
		want []time.Duration // Delay(1), Delay(2), …
	}{
		{"defaults", Backoff{}, []time.Duration{1 * s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s}},
		{"custom", Backoff{Initial: 100 * time.Millisecond, Max: 250 * time.Millisecond},
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}},
		{"initial equals max", Backoff{Initial: 5 * s, Max: 5 * s}, []time.Duration{5 * s, 5 * s}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.b.Delay(i + 1); got != want {
					t.Errorf("Delay(%d) = %s, want %s", i+1, got, want)
				}
			}
		})
	}
	// A child that crash-loops for days must not overflow the delay.
	if got := (Backoff{}).Delay(1 << 20); got != 30*s {
		t.Errorf("Delay(huge) = %s, want 30s", got)
	}
	if got := (Backoff{}).Delay(0); got != s {
		t.Errorf("Delay(0) = %s, want 1s", got)
	}
}

func TestBackoffValidate(t *testing.T) {
	tests := []struct {
		name    string
		b       Backoff
		wantErr bool
	}{
		{"zero is defaults", Backoff{}, false},
		{"negative", Backoff{Initial: -time.Second}, true},
		{"max below initial", Backoff{Initial: 10 * time.Second, Max: time.Second}, true},
		{"initial above default max", Backoff{Initial: time.Minute}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.b.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestOverlongOutputLineIsTruncatedNotBuffered(t *testing.T) {
	in := "short\n" + strings.Repeat("x", 40) + "\nafter\npartial"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	var got []string
	for {
		line, err := readLine(br)
		if line != "" || err == nil {
			got = append(got, line)
		}
		if err != nil {
			break
		}
	}
	want := []string{"short", strings.Repeat("x", 16) + " [truncated]", "after", "partial"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

func TestLineRingKeepsNewest(t *testing.T) {
	r := newLineRing(3)
	if got := r.snapshot(); len(got) != 0 {
		t.Fatalf("empty ring = %q", got)
	}
	for _, l := range []string{"a", "b"} {
		r.add(l)
	}
	if got := strings.Join(r.snapshot(), ""); got != "ab" {
		t.Errorf("ring = %q, want ab", got)
	}
	for _, l := range []string{"c", "d", "e"} {
		r.add(l)
	}
	if got := strings.Join(r.snapshot(), ""); got != "cde" {
		t.Errorf("ring = %q, want cde", got)
	}
}
