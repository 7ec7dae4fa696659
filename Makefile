GO      ?= go
BIN     := bin/outpost
DATA    ?= .outpost-demo

.PHONY: build run test lint bench load fuzz faults perf perf-tui clean

build:
	$(GO) build -o $(BIN) ./cmd/outpost

# The all-in-one main job on the embedded defaults with a live demo fleet.
run: build
	rm -rf $(DATA)
	./$(BIN) up --demo --data $(DATA) --listen https://127.0.0.1:8443 --listen http://127.0.0.1:8080

test:
	$(GO) test -race ./...

# staticcheck comes through the Go module proxy (built once, then cached).
STATICCHECK ?= v0.8.2
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...

# Every Go benchmark of the hot paths (store listing and check-in batches,
# event batch decode/frame, spool append, cache ring append, collector
# ingest; all of ./store, ./relay and ./agentsim). Time-based: a fixed count such as 20x leaves the fast ones in
# their warm-up and puts their figures several times off. Held check-ins
# measure one fleet per run, so they run once (OUTPOST_BENCH_AGENTS sizes it).
BENCHTIME  ?= 1s
BENCHCOUNT ?= 1
bench:
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkHeldCheckins$$' -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -benchmem ./store/... ./relay/... ./agentsim/...
	$(GO) test -run '^$$' -bench '^BenchmarkHeldCheckins$$' -benchtime 1x -benchmem ./relay/

# Outpost beside its peers on this machine, every process on loopback:
# event intake (forward and cache mode) and sustained forwarding against
# nginx as a plain reverse proxy in front of the same `outpost center`
# (installed with apt-get when missing, run as a child process with its own
# config, never the system service), relay CPU per event, relay memory per
# held agent against an idle net/http connection, check-ins/s against the
# store alone. Interleaved rounds, medians, one markdown table at the end
# (README "Performance"). About 10 minutes; OUTPOST_PERF_QUICK=1 takes one
# short round, OUTPOST_PERF_ROWS=intake,sustain,held,checkins picks rows,
# OUTPOST_PERF_AGENTS (15000), OUTPOST_PERF_PAIRS (3), OUTPOST_PERF_SUSTAIN
# (20s) tune it.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
perf: export PATH := $(PATH):/usr/sbin
perf: build
	@command -v nginx >/dev/null 2>&1 || $(SUDO) apt-get install -y nginx || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y nginx; }
	OUTPOST_PERF=1 $(GO) test -run '^TestPerf$$' -count=1 -v -timeout 30m ./cmd/outpost/

# Fleet load harness: 10,000 simulated agents through one relay process for
# 60 s at 1 event/s each, the relay killed with SIGKILL mid-run; prints the
# report and fails on any lost event. Tune with OUTPOST_LOAD_AGENTS,
# OUTPOST_LOAD_DURATION, OUTPOST_LOAD_KILL=0.
load:
	OUTPOST_LOAD=1 $(GO) test -run '^TestLoad$$' -count=1 -v -timeout 30m ./agentsim/

# Runs every native fuzz target for FUZZTIME each (go test -fuzz takes one
# target per run); `make test` runs only their seed corpora
# (testdata/fuzz/). Temp files go to /dev/shm when there is one, since the
# stores fsync on every run. New findings land in testdata/fuzz/ of the
# package: fix the bug and commit the file as a regression seed.
FUZZTIME ?= 30s
# Minimising every new interesting input stalls some targets for seconds at
# a time (0 execs/s); crashers are still written whole.
FUZZMIN  ?= 100x
FUZZTMP  ?= $(shell test -d /dev/shm && echo /dev/shm)
fuzz:
	@set -e; for f in $$(grep -l '^func Fuzz' $$(git ls-files '*_test.go')); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "== ./$$(dirname $$f) $$t"; \
			TMPDIR=$${FUZZTMP:-$${TMPDIR:-/tmp}} $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./$$(dirname $$f); \
		done; \
	done

# Fault run: a relay process under load is killed with SIGKILL several
# times and a forwarded spool record is damaged between two runs; fails on
# any acknowledged event lost and on damage missing from /metrics.
faults:
	OUTPOST_FAULTS=1 $(GO) test -run '^TestFault' -count=1 -v -timeout 20m ./relay/

# Dashboard speed at 100,000 agents and 1,000 clusters: first frame (on a
# terminal and in tmux), key to frame, view switches, a filter over the
# fleet, and the process's RSS; prints the figures (needs tmux).
perf-tui:
	OUTPOST_TUI_SPEED=1 $(GO) test -run '^TestDashboardSpeed$$' -count=1 -v -timeout 10m ./cmd/outpost/

clean:
	rm -rf bin $(DATA)
