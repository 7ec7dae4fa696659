GO      ?= go
BIN     := bin/outpost
DATA    ?= .outpost-demo

.PHONY: build run test lint bench clean

build:
	$(GO) build -o $(BIN) ./cmd/outpost

# The all-in-one main job on the embedded defaults with a live demo fleet.
run: build
	./$(BIN) up --demo --data $(DATA)

test:
	$(GO) test -race ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./store/ ./relay/...

clean:
	rm -rf bin $(DATA)
