# dhosauth: the two commands a fresh machine needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

MODULES  := gen pkg services/activation services/device services/token services/session gateway .
SERVICES := activation device token session
BIN      := $(CURDIR)/bin
TOOLBIN  := $(CURDIR)/.bin
export PATH := $(TOOLBIN):$(PATH)
# Build with the Go release go.work names (toolchain line), fetched through
# the module proxy when the installed one is older: standard-library fixes
# arrive by moving that line.
export GOTOOLCHAIN ?= auto

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
HASH    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILD   ?= 0
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.hash=$(HASH) -X main.build=$(BUILD)

# Pinned code generators and linters, installed from the Go module proxy.
BUF_VERSION          := v1.75.0
PROTOC_GEN_GO        := v1.36.12
PROTOC_GEN_GO_GRPC   := v1.6.2
GRPC_GATEWAY_VERSION := v2.33.0
STATICCHECK_VERSION  := v0.8.2
GRPCURL_VERSION      := v1.9.4
KUSTOMIZE_VERSION    := v5.8.2
GOVULNCHECK_VERSION  := v1.9.0

# The Go vulnerability database govulncheck reads: by default a pinned copy
# built from golang.org/x/vulndb (fetched through the Go module proxy, so it
# works where vuln.go.dev cannot be reached); VULNDB=https://vuln.go.dev reads
# the live one. Update the pin with VULNDB_VERSION=latest.
VULNDB_VERSION ?= v0.0.0-20261105234957-e22db6528018
VULNDB_DIR     := $(CURDIR)/.cache/vulndb-$(VULNDB_VERSION)
VULNDB         ?= file://$(VULNDB_DIR)

# Fuzz targets (package:function) and how long `make fuzz` runs each.
FUZZTIME ?= 10s
FUZZ_TARGETS := \
	gateway/internal/edge:FuzzEdgeRequest \
	gateway/internal/edge:FuzzDecodeBody \
	pkg/auth:FuzzVerify \
	pkg/auth:FuzzParseUnverified \
	services/activation/internal/activation:FuzzNormalizeCode

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## build every binary into bin/
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$s ./services/$$s/cmd/$$s || exit 1; done
	@go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/gateway ./gateway/cmd/gateway
	@go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/dhosctl ./cmd/dhosctl

.PHONY: run
run: build ## build and start the whole suite (embedded SQLite unless DATABASE_* is set)
	@./scripts/run.sh

.PHONY: test
test: ## run every test: unit, store conformance (SQLite, and PostgreSQL with TEST_DATABASE_URL), end-to-end
	@go test -count=1 -timeout 20m $(addsuffix /...,$(addprefix ./,$(filter-out .,$(MODULES)))) ./...

BENCH ?= quick

.PHONY: bench
bench: build ## benchmark the suite on PostgreSQL (BENCH=quick, under 2 min, or full): bench/results/<run>.json and chart.png
	@go build -o $(BIN)/bench/bench ./bench/cmd/bench
	@go test -c -o $(BIN)/bench/activation-floor.test ./services/activation/internal/activationgrpc
	@go test -c -o $(BIN)/bench/token-floor.test ./services/token/internal/tokengrpc
	@go test -c -o $(BIN)/bench/device-floor.test ./services/device/internal/devicegrpc
	@go test -c -o $(BIN)/bench/session-floor.test ./services/session/internal/sessiongrpc
	@$(BIN)/bench/bench -mode $(BENCH) -bin $(BIN) -out bench/results $(BENCH_FLAGS)

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 10s) each; failing inputs land in the package's testdata/fuzz
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz: $$fn in ./$$pkg for $(FUZZTIME)"; \
	  go test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) ./$$pkg || exit 1; done

.PHONY: vulndb
vulndb: ## build the pinned Go vulnerability database into .cache/ (from the Go module proxy)
	@if [ ! -f $(VULNDB_DIR)/index/db.json ]; then \
	  echo "vulndb: building golang.org/x/vulndb@$(VULNDB_VERSION) into $(VULNDB_DIR)"; \
	  src=$$(cd /tmp && GOWORK=off GOFLAGS=-mod=mod go mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  [ -d "$$src/data/osv" ] || { echo "vulndb: no OSV data in $$src" >&2; exit 1; }; \
	  rm -rf $(VULNDB_DIR).tmp && mkdir -p $(dir $(VULNDB_DIR)) && \
	  (cd /tmp && GOWORK=off GOFLAGS=-mod=mod go run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) -vulns "$$src/data/osv" -out $(VULNDB_DIR).tmp) && \
	  mv $(VULNDB_DIR).tmp $(VULNDB_DIR); fi

.PHONY: vulncheck
vulncheck: vulndb ## govulncheck (pinned, into .bin/) over every module against the pinned vulnerability database
	@mkdir -p $(TOOLBIN)
	@GOBIN=$(TOOLBIN) go install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	@for m in $(MODULES); do echo "vulncheck: $$m"; (cd $$m && govulncheck -db $(VULNDB) ./...) || exit 1; done

.PHONY: tools
tools: ## install the pinned code generators and linters into .bin/
	@mkdir -p $(TOOLBIN)
	@GOBIN=$(TOOLBIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@GOBIN=$(TOOLBIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO)
	@GOBIN=$(TOOLBIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC)
	@GOBIN=$(TOOLBIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
	@GOBIN=$(TOOLBIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
	@GOBIN=$(TOOLBIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@GOBIN=$(TOOLBIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

.PHONY: protodeps
protodeps:
	@GRPC_GATEWAY_VERSION=$(GRPC_GATEWAY_VERSION) ./scripts/protodeps.sh

.PHONY: generate
generate: tools protodeps ## regenerate gen/ and the OpenAPI document from proto/
	@rm -rf gen/go gateway/internal/apidocs/dhos.swagger.json
	@buf generate
	@go run ./gateway/internal/apidocs/successstatus gateway/internal/apidocs/dhos.swagger.json

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && GOWORK=off GOFLAGS=-mod=mod go mod tidy) || exit 1; done

.PHONY: verify
verify: generate tidy ## fail when generated code or any go.mod/go.sum is stale
	@if [ -n "$$(git status --porcelain -- gen gateway/internal/apidocs '*go.mod' '*go.sum' go.work)" ]; then \
	  git status --porcelain -- gen gateway/internal/apidocs '*go.mod' '*go.sum' go.work; \
	  echo "verify: generated code or go.mod/go.sum is stale: run 'make generate tidy' and commit"; exit 1; fi
	@echo "verify: generated code and modules are up to date"

.PHONY: lint
lint: tools protodeps ## buf lint, go vet and staticcheck over every module
	@buf lint
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	@go vet $(addsuffix /...,$(addprefix ./,$(filter-out .,$(MODULES)))) ./...
	@staticcheck $(addsuffix /...,$(addprefix ./,$(filter-out .,$(MODULES)))) ./...

.PHONY: breaking
breaking: protodeps ## buf breaking against main
	@buf breaking --against '.git#branch=main'

.PHONY: manifests
manifests: ## render the Kubernetes overlays (deploy/k8s) into bin/k8s/{dev,prod}.yaml
	@mkdir -p $(BIN)/k8s
	@for o in dev prod; do go run sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION) build deploy/k8s/overlays/$$o > $(BIN)/k8s/$$o.yaml || exit 1; done
	@echo "manifests: $(BIN)/k8s/dev.yaml $(BIN)/k8s/prod.yaml"

.PHONY: image
image: ## build the container image dhosauth:$(VERSION) (needs docker)
	@docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) --build-arg GIT_HASH=$(HASH) --build-arg BUILD_NUMBER=$(BUILD) -t dhosauth:$(VERSION) .

.PHONY: clean
clean: ## remove binaries and local data
	@rm -rf $(BIN) data
