package gpioline

import (
	"errors"
	"testing"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// TestMissingLineIsNotFoundNotAPanic: this machine has no GPIO chip (the
// host drivers skip them): a configured line is reported missing, and an
// empty name is refused before periph is asked.
func TestMissingLineIsNotFoundNotAPanic(t *testing.T) {
	for _, name := range []string{"", "NO-SUCH-LINE-onair"} {
		if p, err := Find(name); !errors.Is(err, ErrNotFound) || p != nil {
			t.Errorf("Find(%q) = %v, %v; want ErrNotFound", name, p, err)
		}
	}
}

// TestRegisteredLineIsFoundByName: a line periph registered (here a test
// pin, on a board a gpiochip line) is found by its name.
func TestRegisteredLineIsFoundByName(t *testing.T) {
	pin := &gpiotest.Pin{N: "ONAIR-TEST-PG", Num: 4242}
	if err := gpioreg.Register(pin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gpioreg.Unregister(pin.N) })
	p, err := Find("ONAIR-TEST-PG")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "ONAIR-TEST-PG" {
		t.Errorf("found %s", p.Name())
	}
}
