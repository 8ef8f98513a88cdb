// Command onair-bundle makes and checks onair update bundles (package
// onair/update) on a build machine; the box only verifies and installs them.
//
//	onair-bundle -genkey DIR                       a key pair: DIR/onair-update.key (0600), .pub
//	onair-bundle -key PRIV -version V -rootfs FILE -out BUNDLE
//	onair-bundle -verify BUNDLE -pub PUB           prints the manifest
//
// The signing key stays out of the repository: -genkey refuses a directory
// inside a git work tree.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"onair/update"
)

func main() {
	genkey := flag.String("genkey", "", "write a new key pair into this directory")
	key := flag.String("key", "", "private key to sign with (PEM, PKCS #8)")
	version := flag.String("version", "", "version of the build in the bundle")
	rootfs := flag.String("rootfs", "", "root file system image for the slot")
	out := flag.String("out", "", "bundle to write")
	verify := flag.String("verify", "", "bundle to verify")
	pub := flag.String("pub", "", "public key to verify with (PEM, PKIX)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *genkey, *key, *version, *rootfs, *out, *verify, *pub); err != nil {
		fmt.Fprintln(os.Stderr, "onair-bundle:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, genkey, key, version, rootfs, out, verify, pub string) error {
	switch {
	case genkey != "":
		priv, pubPath, err := update.GenerateKeyFiles(genkey)
		if err == nil {
			fmt.Printf("private key %s (keep it off the repository)\npublic key %s (update.public_key)\n", priv, pubPath)
		}
		return err
	case verify != "":
		m, err := update.VerifyFile(ctx, verify, pub)
		if err == nil {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(m)
		}
		return err
	case key != "" && version != "" && rootfs != "" && out != "":
		return update.MakeFile(ctx, out, key, version, time.Now(), rootfs)
	}
	return errors.New("want -genkey DIR, -verify BUNDLE -pub PUB, or -key -version -rootfs -out")
}
