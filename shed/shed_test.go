package shed

import (
	"errors"
	"slices"
	"testing"

	"onair/internal/testutil"
)

type setter struct {
	got  []int
	whys []string
	fail bool
}

func (s *setter) SetCeiling(kbps int, why string) error {
	if s.fail {
		return errors.New("twins unlocked")
	}
	s.got, s.whys = append(s.got, kbps), append(s.whys, why)
	return nil
}

// Battery and heat together must not fight: the lowest cap holds until
// both are lifted, and lifting one keeps the other.
func TestLowestCapHoldsUntilEveryShedIsLifted(t *testing.T) {
	s := &setter{}
	c, err := New(4000, s, testutil.NilLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	must(t, c.Shed("power", true, 2000, "on battery"))
	must(t, c.Shed("thermal", true, 1500, "cpu 85 °C"))
	must(t, c.Shed("power", true, 2000, "on battery")) // again: nothing
	must(t, c.Shed("thermal", false, 0, ""))
	must(t, c.Shed("power", false, 0, ""))
	want := []int{2000, 1500, 2000, 4000}
	if !slices.Equal(s.got, want) {
		t.Fatalf("ceilings %v, want %v", s.got, want)
	}
	if s.whys[1] != "shed (thermal): cpu 85 °C" || s.whys[3] != "" {
		t.Errorf("whys %q", s.whys)
	}
}

// A shed lifted must give back the operator's ceiling, not the maximum.
func TestLiftedShedRestoresTheOperatorsCeiling(t *testing.T) {
	s := &setter{}
	c, _ := New(4000, s, testutil.NilLogger(t))
	must(t, c.SetOperator(3000))
	must(t, c.Shed("power", true, 0, "on battery")) // 0: half the maximum
	must(t, c.SetOperator(3500))                    // still shed: no change applied
	must(t, c.Shed("power", false, 0, ""))
	if want := []int{3000, 2000, 3500}; !slices.Equal(s.got, want) {
		t.Fatalf("ceilings %v, want %v", s.got, want)
	}
	if k, why := c.Ceiling(); k != 3500 || why != "operator cap 3500 kbps" {
		t.Errorf("ceiling %d %q", k, why)
	}
	if err := c.SetOperator(9000); err == nil {
		t.Error("a ceiling over the maximum was accepted")
	}
}

// A ceiling the encoders refuse (twins busy) is not recorded as applied, so
// the next change tries again.
func TestRefusedCeilingIsRetriedOnTheNextChange(t *testing.T) {
	s := &setter{fail: true}
	c, _ := New(4000, s, testutil.NilLogger(t))
	if err := c.Shed("power", true, 2000, "on battery"); err == nil {
		t.Fatal("a refused ceiling returned no error")
	}
	s.fail = false
	must(t, c.Shed("thermal", true, 2500, "hot"))
	if k, _ := c.Ceiling(); k != 2000 || !c.Shedding("power") {
		t.Errorf("ceiling %d, want 2000 (power's cap, retried)", k)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
