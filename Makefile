# singoff: `make run` and `make test` install what is missing, then build.
APT_PACKAGES := libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev \
	libswscale-dev libswresample-dev libavutil-dev libopus-dev pkg-config ffmpeg chromium nginx-light \
	postgresql fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji
GO ?= go

# staticcheck, pinned; `make lint` installs it with `go install` (the Go
# proxy is all CI needs) into GOBIN, else GOPATH/bin.
STATICCHECK_VERSION := 0.8.2
GOBIN_DIR := $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)
STATICCHECK := $(GOBIN_DIR)/staticcheck

# The race detector runs the tests that do not run media in real time at
# full load: the real-time ones (compositor, e2e, ingest's 20 rooms) run
# several times slower under it and would starve the two cores. ingest
# runs with -short, which leaves out its 20 rooms.
RACE_PACKAGES := ./battle ./storage/... ./internal/... ./hls ./web ./cmd/... ./compositor/overlay

.PHONY: deps
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "missing Debian packages; run: sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

# SeaweedFS, the S3 server the recording and multi-origin tests run: its
# go.mod carries a replace directive, so `go install` refuses it; a
# wrapper module made here (in a temporary directory; nothing of it is
# committed) requires it and repeats the replace. Built once (a few
# minutes, a 230 MB binary) into a cache outside the repository; the
# tests find it through SINGOFF_WEED.
WEED_VERSION := v0.0.0-20261109003541-7506e5f91cd6
SINGOFF_CACHE ?= $(HOME)/.cache/singoff
WEED := $(SINGOFF_CACHE)/weed-$(WEED_VERSION)
export SINGOFF_WEED := $(WEED)

.PHONY: weed
weed: $(WEED)
$(WEED):
	@mkdir -p $(dir $@)
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	printf 'module singoff.local/weed\n\ngo 1.26.6\n\nrequire github.com/seaweedfs/seaweedfs $(WEED_VERSION)\n\nreplace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0\n' > "$$tmp/go.mod"; \
	echo "building SeaweedFS $(WEED_VERSION) into $@ (once; a few minutes)"; \
	cd "$$tmp" && GOFLAGS=-mod=mod $(GO) build -trimpath -o "$@.tmp" github.com/seaweedfs/seaweedfs/weed; \
	mv "$@.tmp" "$@"

# The players are pinned in web/package.json + lockfile and copied into
# the embedded assets; the copies are not committed. hls.js plays on the
# pages; Shaka Player (its HLS build) and video.js (with VHS) are there
# for ?player=shaka and ?player=videojs, which the e2e tests play with.
HLSJS := web/assets/vendor/hls.min.mjs
SHAKA := web/assets/vendor/shaka-player.hls.js
VIDEOJS := web/assets/vendor/video.min.js
VENDOR := $(HLSJS) $(SHAKA) $(VIDEOJS)
FUZZTIME ?= 8s

.PHONY: web-assets build run test lint race fuzz clean
web-assets: $(VENDOR)
$(VENDOR) &: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js (Debian: apt-get install npm)"; exit 1; }
	cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	mkdir -p $(dir $(HLSJS))
	cp web/node_modules/hls.js/dist/hls.min.mjs $(HLSJS)
	cp web/node_modules/shaka-player/dist/shaka-player.hls-es2021.js $(SHAKA)
	cp web/node_modules/video.js/dist/video.min.js $(VIDEOJS)

build: deps web-assets
	$(GO) build -o bin/singoff ./cmd/singoff

# The server on :8080 with a demo battle of two synthetic singers.
run: build
	./bin/singoff serve --demo

# Vet, lint, the race detector, every test once (benchmarks are not run:
# see docs/BENCHMARKS.md), then every fuzz target briefly.
test: deps web-assets weed
	$(GO) vet ./...
	$(MAKE) lint
	$(MAKE) race
	# One package at a time: the media tests run in real time and must
	# not starve each other of the two cores.
	$(GO) test -count=1 -p 1 -timeout 20m ./...
	$(MAKE) fuzz

# gofmt, then staticcheck (its default checks).
lint:
	@$(STATICCHECK) -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION))' || \
		{ echo "installing staticcheck $(STATICCHECK_VERSION) into $(GOBIN_DIR)"; \
		  GOBIN=$(GOBIN_DIR) $(GO) install honnef.co/go/tools/cmd/staticcheck@v$(STATICCHECK_VERSION); }
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "not gofmt-ed:"; echo "$$unformatted"; exit 1; fi
	$(STATICCHECK) ./...

race:
	$(GO) test -race -count=1 -p 1 -timeout 10m $(RACE_PACKAGES)
	$(GO) test -race -short -count=1 -timeout 10m ./ingest

# Every fuzz target, briefly: the parsers of untrusted bytes.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg > /tmp/singoff-fuzz.log 2>&1 || { cat /tmp/singoff-fuzz.log; exit 1; }; \
		done; \
	done; echo "fuzz: all targets passed"

clean:
	rm -rf bin $(VENDOR)
