#!/usr/bin/env bash
# scripts/test.sh: the one command that runs every test of the repository.
# It installs what the tests need on a fresh machine first (npm packages from the
# lock files; Debian's chromium once browser tests exist), then runs the Go
# checks (gofmt, go vet, staticcheck) and tests (race detector on) and the
# Node test suites.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# Node packages: every folder with a package-lock.json gets a clean install.
node_dirs=()
while IFS= read -r lock; do node_dirs+=("$(dirname "$lock")"); done \
	< <(git ls-files '*package-lock.json' | grep -v node_modules || true)
for dir in "${node_dirs[@]}"; do
	say "npm ci in $dir"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done

# Debian's chromium, for the browser tests (only once browser tests exist).
if [ -n "$(git ls-files 'frontend/test/e2e/*')" ] && [ ! -x /usr/bin/chromium ]; then
	say "installing Debian's chromium"
	if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

say "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

say "go vet"
go vet ./...

# staticcheck's default checks (bugs, simplifications, deprecated APIs, unused
# code), pinned by the tool line in go.mod: nothing to install by hand.
say "staticcheck"
go tool staticcheck ./...

say "go test -race"
go test -race -count=1 -timeout 15m ./...

# Tests about stack depths, which the race detector's frames change.
say "go test (race detector off): stack tests"
go test -count=1 -run 'KeepsItsStack' ./sockets/engineio

# Node suites: every folder with a package.json that defines "test".
for dir in "${node_dirs[@]}"; do
	if node -e 'process.exit(require("./'"$dir"'/package.json").scripts?.test ? 0 : 1)'; then
		say "npm test in $dir"
		(cd "$dir" && npm test)
	fi
done

say "all tests passed"
