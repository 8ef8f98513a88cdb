package logindtest

import (
	"errors"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// The fake must answer the exact call systemd-logind answers, on a bus
// found through the address a process under test gets from Env.
func TestPowerOffIsRecordedAndCanBeRefused(t *testing.T) {
	l := Start(t)
	conn, err := dbus.Connect(l.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	obj := conn.Object(BusName, Path)
	if call := obj.Call(Interface+".PowerOff", 0, false); call.Err != nil {
		t.Fatalf("PowerOff: %v", call.Err)
	}
	c, err := l.WaitCall(1, 5*time.Second)
	if err != nil || c.Interactive {
		t.Fatalf("call %+v, %v", c, err)
	}
	l.FailWith("org.freedesktop.login1.OperationInProgress")
	call := obj.Call(Interface+".PowerOff", 0, false)
	var de dbus.Error
	if !errors.As(call.Err, &de) || de.Name != "org.freedesktop.login1.OperationInProgress" {
		t.Fatalf("refused PowerOff answered %v", call.Err)
	}
	if n := len(l.Calls()); n != 2 {
		t.Fatalf("%d calls recorded, want 2", n)
	}
}
