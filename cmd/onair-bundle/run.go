package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"onair/update"
)

// run does what the flags ask (see the package comment).
func run(ctx context.Context, genkey, key, version, rootfs, image, out, verify, pub string) error {
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
	case key != "" && image != "" && rootfs == "" && out != "":
		r, v, err := fromImage(image)
		if err != nil {
			return err
		}
		if version != "" && version != v {
			return fmt.Errorf("-version %s, but the image's onaird is %s", version, v)
		}
		return bundle(ctx, key, v, r, out)
	case key != "" && version != "" && rootfs != "" && image == "" && out != "":
		return bundle(ctx, key, version, rootfs, out)
	}
	return errors.New("want -genkey DIR, -verify BUNDLE -pub PUB, -key -image -out, or -key -version -rootfs -out")
}

func bundle(ctx context.Context, key, version, rootfs, out string) error {
	path := outPath(out, version)
	if err := update.MakeFile(ctx, path, key, version, time.Now(), rootfs); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Printf("bundle %s (version %s, %d MB, rootfs %s)\n", path, version, fi.Size()>>20, rootfs)
	return nil
}
