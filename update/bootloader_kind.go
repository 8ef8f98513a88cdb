package update

import "fmt"

// BootloaderKind is where the boot state lives (update.bootloader).
type BootloaderKind string

// The bootloaders.
const (
	// BootloaderGrub keeps the state in the GRUB environment block
	// (GrubEnv): the target.
	BootloaderGrub BootloaderKind = "grub"
	// BootloaderFile keeps it in a JSON file (FileBootloader): the tests
	// and the nspawn image, where nothing boots but the file says what
	// would.
	BootloaderFile BootloaderKind = "file"
)

// Validate says whether k is a known bootloader.
func (k BootloaderKind) Validate() error {
	switch k {
	case BootloaderGrub, BootloaderFile:
		return nil
	}
	return fmt.Errorf("%q: want grub or file", string(k))
}
