// Command onair-bundle makes and checks onair update bundles (package
// onair/update) on a build machine; the box only verifies and installs them.
//
//	onair-bundle -genkey DIR                       a key pair: DIR/onair-update.key (0600), .pub
//	onair-bundle -key PRIV -image DIR -out OUT     make image's DIR/rootfs.ext4, the version of its onaird
//	onair-bundle -key PRIV -version V -rootfs FILE -out OUT
//	onair-bundle -verify BUNDLE -pub PUB           prints the manifest
//
// OUT is the bundle, or a directory for OUT/onair-VERSION.bundle. The
// version must be one a box can order (update.ParseVersion: what
// scripts/version.sh stamps): a box refuses a bundle that is not newer
// than what it runs.
//
// The signing key stays out of the repository: -genkey refuses a directory
// inside a git work tree, and signing refuses a key inside one.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	genkey := flag.String("genkey", "", "write a new key pair into this directory")
	key := flag.String("key", "", "private key to sign with (PEM, PKCS #8)")
	version := flag.String("version", "", "version of the build in the bundle")
	rootfs := flag.String("rootfs", "", "root file system image for the slot")
	image := flag.String("image", "", "make image's output directory: its rootfs.ext4, with the version of the onaird in it")
	out := flag.String("out", "", "bundle to write, or a directory for onair-VERSION.bundle")
	verify := flag.String("verify", "", "bundle to verify")
	pub := flag.String("pub", "", "public key to verify with (PEM, PKIX)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *genkey, *key, *version, *rootfs, *image, *out, *verify, *pub); err != nil {
		fmt.Fprintln(os.Stderr, "onair-bundle:", err)
		os.Exit(1)
	}
}
