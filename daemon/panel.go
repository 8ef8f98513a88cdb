package daemon

import (
	"fmt"

	"onair/web"
	"onair/web/api"
)

// PanelPress presses a front-panel button.
func (b box) PanelPress(button string, _ bool) (api.PanelPressResult, error) {
	return api.PanelPressResult{}, fmt.Errorf("daemon: button %q: no front panel in this build: %w", button, web.ErrNotFound)
}
