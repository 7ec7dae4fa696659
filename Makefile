GO      ?= go
BIN     := bin/outpost
DATA    ?= .outpost-demo

.PHONY: build run test lint bench load clean

build:
	$(GO) build -o $(BIN) ./cmd/outpost

# The all-in-one main job on the embedded defaults with a live demo fleet.
run: build
	rm -rf $(DATA)
	./$(BIN) up --demo --data $(DATA) --listen https://127.0.0.1:8443 --listen http://127.0.0.1:8080

test:
	$(GO) test -race ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 20x -benchmem ./store/ ./relay/...

# Fleet load harness: 10,000 simulated agents through one relay process for
# 60 s at 1 event/s each, the relay killed with SIGKILL mid-run; prints the
# report and fails on any lost event. Tune with OUTPOST_LOAD_AGENTS,
# OUTPOST_LOAD_DURATION, OUTPOST_LOAD_KILL=0.
load:
	OUTPOST_LOAD=1 $(GO) test -run '^TestLoad$$' -count=1 -v -timeout 30m ./agentsim/

clean:
	rm -rf bin $(DATA)
