package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The files of make image's output directory (scripts/image.sh) a bundle
// is made from.
const (
	imageRootfs  = "rootfs.ext4"                        // one root slot's file system: the bundle's rootfs part
	imageVersion = "rootfs/usr/share/doc/onair/VERSION" // onaird -version of the onaird in it
)

// fromImage returns make image's root slot in dir and the version of the
// onaird inside it: a bundle's version must be the build it carries, which
// is what the box will compare the next bundle with.
func fromImage(dir string) (rootfs, version string, err error) {
	rootfs = filepath.Join(dir, imageRootfs)
	fs, err := os.Stat(rootfs)
	if err != nil {
		return "", "", fmt.Errorf("image %s: %w (make image builds it, as root)", dir, err)
	}
	vpath := filepath.Join(dir, imageVersion)
	b, err := os.ReadFile(vpath)
	if err != nil {
		return "", "", fmt.Errorf("image %s: the version of its onaird: %w", dir, err)
	}
	vs, err := os.Stat(vpath)
	if err != nil {
		return "", "", fmt.Errorf("image %s: %w", dir, err)
	}
	if fs.ModTime().Before(vs.ModTime()) {
		return "", "", fmt.Errorf("image %s: %s is older than the tree's %s: the last make image did not finish; run it again", dir, imageRootfs, imageVersion)
	}
	version = strings.TrimSpace(string(b))
	if version == "" || strings.ContainsAny(version, "\n\r") {
		return "", "", fmt.Errorf("image %s: %s: want one line, got %q", dir, vpath, b)
	}
	return rootfs, version, nil
}

// outPath is where the bundle goes: out itself, or, when out is a
// directory, out/onair-VERSION.bundle.
func outPath(out, version string) string {
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		return filepath.Join(out, "onair-"+version+".bundle")
	}
	return out
}
