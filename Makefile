# UserSwap: `make run`, `make test`, `make bench`, `make clean`.
# Every target installs what it needs first (scripts/bootstrap is idempotent and quick when
# nothing is missing).

# The Swift toolchain: from PATH, else where this machine kind keeps it.
ifndef SWIFT
SWIFT := $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
endif
# The toolchain's own tools (swift-build, clang, the linker driver) sit beside `swift`.
export PATH := $(dir $(SWIFT)):$(PATH)

RELEASE_BIN := .build/release/userswap
RESULTS := bench/results
PYTHON := .venv/bin/python

.PHONY: all run test bench clean build release bootstrap

all: build

bootstrap:
	scripts/bootstrap

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build -c release

# A short demonstration in a release build.
run: release
	$(RELEASE_BIN) run

# The whole test suite; fails when any test fails (`swift test` exits non-zero if either
# XCTest or Swift Testing reports a failure).
test: build
	$(SWIFT) test

# The standard benchmark suite into bench/results/*.json, then plots of whatever is there.
# A scenario that is not written yet is skipped with a note, not an error.
bench:
	scripts/bootstrap --plots
	$(SWIFT) build -c release
	@mkdir -p $(RESULTS)
	@scenarios="$$($(RELEASE_BIN) bench --list)"; \
	for s in alloc pin race zipf random seq usemem hashtable tiers; do \
		case $$s in \
			race) args="--protocol both --threads 8" ;; \
			zipf) args="--param workingset=both" ;; \
			tiers) args="--seconds 1 --param devices=memory,file,compressed,encrypted" ;; \
			*) args="" ;; \
		esac; \
		if printf '%s\n' "$$scenarios" | grep -qx "$$s"; then \
			echo "== bench $$s $$args"; \
			$(RELEASE_BIN) bench $$s $$args --json $(RESULTS)/$$s.json || exit 1; \
		else \
			echo "== bench $$s: scenario not written yet, skipped"; \
		fi; \
	done
	@# UserSwap against the kernel's own swap (root only): UserSwap outside any limit, then in a
	@# cgroup of its budget + 48M, which bounds the page cache of its buffered swap file; then
	@# zipf at two more budgets (with the 64M one: data 2×, 4× and 8× the budget).
	@if [ "$$(id -u)" -eq 0 ]; then \
		for s in zipf random; do \
			echo "== bench/kernel-compare --scenario $$s --threads 2"; \
			bench/kernel-compare --scenario $$s --threads 2 --json $(RESULTS)/kernel-compare-$$s.json || exit 1; \
			echo "== bench/kernel-compare --scenario $$s --threads 2 --userswap-slack 48M"; \
			bench/kernel-compare --scenario $$s --threads 2 --userswap-slack 48M --json $(RESULTS)/kernel-compare-$$s-cgroup.json || exit 1; \
		done; \
		for m in 32M 128M; do \
			echo "== bench/kernel-compare --scenario zipf --memory $$m --userswap-slack 48M (throughput by budget)"; \
			bench/kernel-compare --scenario zipf --threads 2 --memory $$m --userswap-slack 48M --json $(RESULTS)/budget-zipf-$$m.json || exit 1; \
		done; \
	else \
		echo "== bench/kernel-compare: skipped, it needs root (swapon, memory cgroups): sudo bench/kernel-compare --scenario zipf"; \
	fi
	@if ls $(RESULTS)/*.json >/dev/null 2>&1; then \
		$(PYTHON) scripts/plot; \
	else \
		echo "no results in $(RESULTS) to plot"; \
	fi

clean:
	rm -rf .build
	rm -f $(RESULTS)/*.tmp
