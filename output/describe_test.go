package output

import (
	"errors"
	"testing"

	"onair/output/srturl"
)

func TestDescribeDialError(t *testing.T) {
	tg := srturl.URL{Host: "127.0.0.1", Port: 9}
	for _, tc := range []struct{ in, want string }{
		{"connection rejected: REJECT (vi)", "rejected: wrong passphrase"}, // 1010
		{"connection rejected: REJECT (vj)", "rejected: passphrase missing or not expected"},
		{"connection rejected: REJECT (2b3)", "rejected: by receiver (code 403)"}, // 2403
	} {
		if got := describeDialError(errors.New(tc.in), tg.Addr()); got != tc.want {
			t.Errorf("%q -> %q, want %q", tc.in, got, tc.want)
		}
	}
}
