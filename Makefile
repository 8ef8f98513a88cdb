# onair — make help lists the targets. Every target installs what it needs
# through scripts/deps.sh (idempotent, quick when all is there).

SHELL   := /bin/bash
# The build's version, ordered as the box's downgrade protection orders it
# (update/version.go): git describe of the last v tag, v0.0.0-COMMITS-gHASH
# before the first one.
VERSION ?= $(shell sh scripts/version.sh)
LDFLAGS := -X onair/internal/version.Version=$(VERSION)
GO      ?= $(shell command -v go || echo /usr/local/go/bin/go)
export PATH := $(dir $(GO)):$(PATH)
export GOFLAGS := -mod=mod
PUREGO  := ./cmd/onaird ./cmd/onairctl ./cmd/onair-ingest
# Packages whose tests stream in real time (live encoders, ffmpeg -re, SRT):
# they run one package at a time so they never compete for the 2 cores.
# internal/netlab builds network namespaces and measures shaped traffic;
# internal/pulselab runs a PulseAudio server and captures its sinks in real time;
# internal/nutlab and power/nut run NUT's real upsd and dummy-ups (seconds per state);
# internal/sshlab and maintenance/tunnel run real sshd in network namespaces;
# web/page drives a headless chromium through the page (a few seconds).
LIVE_RACE := ./output/ ./ingest/ ./cmd/onair-ingest/ ./internal/fault/ ./bond/uplink/ ./bond/sender/ ./internal/netlab/ ./internal/pulselab/ ./internal/nutlab/ ./power/nut/ ./internal/sshlab/ ./maintenance/tunnel/ ./web/page/
LIVE      := ./encoder/av/ ./e2e/
LIVE_RE   := -e /e2e -e /encoder/av -e /output -e /ingest -e /cmd/onair-ingest -e /internal/fault -e /bond/uplink -e /bond/sender -e /internal/netlab -e /internal/pulselab -e /internal/nutlab -e /power/nut -e /internal/sshlab -e /maintenance/tunnel -e /web/page
GOLANGCI_LINT := bin/golangci-lint

.PHONY: help deps build bundle run test test-image test-unit test-fuzz test-live test-nocgo bench lint tidy-check clean image integration

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

## deps: install everything the build, the demo and the tests need (Debian, apt)
deps:
	@bash scripts/deps.sh

## build: build onaird, onairctl, onair-ingest (pure Go) and onair-av (cgo) into bin/
build: deps
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ $(PUREGO)
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/onair-av

## bundle: sign the image's root slot (make image) into an update bundle: make bundle KEY=/outside/the/repo/onair-update.key [ROOTFS=FILE VERSION=V] [OUT=DIR|FILE]
# The image's out/image/rootfs.ext4 by default, with the version of the onaird
# in it; ROOTFS=FILE signs another with VERSION (this tree's by default). The
# bundle goes to OUT (a directory, default out: DIR/onair-VERSION.bundle). The
# key is made once, outside the repository (onair-bundle refuses a key inside
# a git work tree), and its .pub is update.public_key on the box.
IMAGE_OUT ?= out/image
bundle:
	@test -n "$(KEY)" || { echo "usage: make bundle KEY=PRIVATE_KEY [ROOTFS=FILE VERSION=V] [OUT=DIR|FILE]; a key pair, once, outside the repo: go run ./cmd/onair-bundle -genkey ~/onair-keys (keep the .key secret; its .pub is update.public_key on the box)"; exit 1; }
	@mkdir -p out
	$(GO) run -trimpath ./cmd/onair-bundle -key "$(KEY)" $(if $(ROOTFS),-rootfs "$(ROOTFS)" -version "$(VERSION)",-image "$(IMAGE_OUT)") -out "$(or $(OUT),out)"

## run: build and start the box in demo mode (test pattern + tone, twin encoders, bonded over an emulated lab as root, local receiver, status API)
run: build
	@CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./scripts/nsforward
	@bash scripts/demo.sh

## image: build the box image as root (Debian 12 rootfs, root slot, data partition, GPT disk in out/image; rootfs/README.md); prints where and how big
image: build
	@bash scripts/image.sh

## integration: build the image and boot it in systemd-nspawn (root): onaird READY under systemd, on air to a receiver outside, SIGKILL and SIGSTOP restarts timed, a clean poweroff; a blank data partition seeded; then the whole disk in QEMU (UEFI, GRUB): on air from power-on, and a trial slot that cannot boot rolled back by GRUB
integration: image
	@ONAIR_QEMU=1 bash scripts/deps.sh
	ONAIR_IMAGE=1 ONAIR_QEMU=1 $(GO) test -count=1 -timeout 30m -run '^TestImage' -v ./e2e/

## test: install what is needed and run every test (unit, fuzz smoke, then live encoder tests one at a time, then the image in systemd-nspawn)
test: deps lint test-nocgo test-unit test-fuzz test-live test-image

## test-image: build the image (root; cached, about 50 s warm, 3 min cold) and boot it in systemd-nspawn: on air under systemd, killed and hung restarts, poweroff, a blank data partition seeded, the disk's UEFI and A/B layout (the QEMU boots are make integration's)
test-image: image
	ONAIR_IMAGE=1 $(GO) test -count=1 -timeout 15m -run '^TestImage(OnAirUnderSystemd|SeedsBlankDataPartition|DiskIsLaidOutForUEFIAndAB)$$' -v ./e2e/

# Fuzz targets (package:target) run for FUZZTIME each by test-fuzz; their
# committed corpora under testdata/fuzz run in every plain go test too.
FUZZ     := ./bond/srtla:FuzzUnmarshal ./ingest/relay:FuzzRelay ./encoder/link:FuzzRead ./output/srturl:FuzzParse ./internal/config:FuzzParse ./ingest:FuzzAnalyzer ./power/nut:FuzzParse ./update:FuzzReadBundle ./update:FuzzSignedManifest ./update:FuzzVersionOrder
# Counts, not durations: a duration races Go 1.26's fuzz coordinator at its
# deadline (golang/go#75804: "context deadline exceeded" with no failing
# input; seen twice in CI here), a count has no deadline to race.
FUZZTIME ?= 30000x

## test-fuzz: run every fuzz target for FUZZTIME (default 30000 inputs) on top of its committed corpus
test-fuzz: deps
	@for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2000x $$pkg || exit 1; done

## test-unit: fast tests of every package that does not stream in real time, with the race detector
test-unit: deps
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v $(LIVE_RE))

## test-live: real-time tests (SRT peers, live encoders), strictly one package and one test at a time
test-live: build
	$(GO) test -race -p 1 -count=1 -timeout 15m $(LIVE_RACE)
	$(GO) test -p 1 -count=1 -timeout 30m $(LIVE)

## test-nocgo: the supervisor side must build and vet without cgo
test-nocgo: deps
	CGO_ENABLED=0 $(GO) build $(PUREGO)
	CGO_ENABLED=0 $(GO) vet $$($(GO) list ./... | grep -v -e /encoder/av -e /cmd/onair-av -e /e2e)

## bench: measure CPU, memory, latency, (as root) bonding, update and image figures (ONAIR_IMAGE=1: also the image booted in nspawn); prints one "name value unit" line per figure; -only PART: make bench BENCH="-only image"
bench: build
	@$(GO) run ./scripts/bench -bin bin $(BENCH)

## lint: gofmt, go vet and golangci-lint (.golangci.yml; the linter is built into bin/ on first use)
lint: deps $(GOLANGCI_LINT)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

# golangci-lint is pinned in its own module (tools/golangci-lint/go.mod), so its
# dependencies never move onair's go.mod; changing the pin rebuilds it.
$(GOLANGCI_LINT): tools/golangci-lint/go.mod tools/golangci-lint/go.sum
	@mkdir -p bin
	$(GO) build -C tools/golangci-lint -mod=readonly -trimpath -o ../../$(GOLANGCI_LINT) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

## tidy-check: go.mod and go.sum are tidy
tidy-check:
	$(GO) mod tidy -diff

## clean: remove build output and demo recordings
clean:
	rm -rf bin out
