# UserSwap: `make run`, `make test`, `make bench`, `make clean`; `make soak` and `make tsan` for
# the long and the sanitized test runs.
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

.PHONY: all run test bench clean build release bootstrap soak tsan docs format lint check-release clib preload install test-c test-python test-exec

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
# XCTest or Swift Testing reports a failure). Then the C library's tests against a scratch
# installation, and the Python module's.
test: build
	$(SWIFT) test
	$(MAKE) test-c test-python test-exec

# libuserswap.so for C, C++ and Python: a release build of the UserSwapC product with the Swift
# runtime linked in (-static-stdlib; its symbols stay hidden), so that the installed library
# needs no Swift toolchain at run time (docs/C-AND-PYTHON.md says why). Its own build directory:
# the flag changes every module. Bound at load (`-z now`): a fault served on the faulting thread
# calls libc from a SIGBUS handler, where a first call must not enter the dynamic loader.
CLIB_BUILD := .build/clib
SWIFT_STATIC_LIBS := $(realpath $(dir $(realpath $(SWIFT)))../lib/swift_static/linux)
USERSWAP_VERSION := $(shell sed -n 's/^\#define USERSWAP_VERSION_MAJOR //p' include/userswap.h).$(shell sed -n 's/^\#define USERSWAP_VERSION_MINOR //p' include/userswap.h)
clib: bootstrap
	$(SWIFT) build -c release --product UserSwapC -Xswiftc -static-stdlib -Xlinker -L$(SWIFT_STATIC_LIBS) \
		-Xlinker -z -Xlinker now --scratch-path $(CLIB_BUILD)
	$(MAKE) preload

# libuserswap-preload.so, the LD_PRELOAD library of `userswap exec` (docs/EXEC.md): C over
# libuserswap.so (found beside it: run path $$ORIGIN) and mimalloc (loaded at run time).
PRELOAD := $(CLIB_BUILD)/release/libuserswap-preload.so
preload:
	ln -sf libUserSwapC.so $(CLIB_BUILD)/release/libuserswap.so
	cc -std=gnu11 -shared -fPIC -O2 -Wall -Wextra -Werror -fvisibility=hidden -Iinclude \
		-o $(PRELOAD) Sources/UserSwapPreload/userswap_preload.c \
		-L$(CLIB_BUILD)/release -luserswap -ldl -pthread -Wl,-rpath,'$$ORIGIN' -Wl,-z,nodelete

# Installs the library, its header and its pkg-config file under PREFIX (DESTDIR for packaging).
PREFIX ?= /usr/local
install: clib
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 -s $(CLIB_BUILD)/release/libUserSwapC.so $(DESTDIR)$(PREFIX)/lib/libuserswap.so
	install -m 755 -s $(PRELOAD) $(DESTDIR)$(PREFIX)/lib/libuserswap-preload.so
	install -m 644 include/userswap.h $(DESTDIR)$(PREFIX)/include/userswap.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(USERSWAP_VERSION)|' include/userswap.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/userswap.pc

# The C tests (tests/c): installs into a scratch prefix, then compiles each test with
# `cc -Wall -Werror` and `pkg-config --cflags --libs userswap` and runs it.
SCRATCH_PREFIX := $(CURDIR)/.build/clib-prefix
test-c:
	$(MAKE) install PREFIX=$(SCRATCH_PREFIX)
	tests/c/run $(SCRATCH_PREFIX)

# The Python module's tests (python/tests) in .venv, against the scratch installation.
test-python:
	$(MAKE) install PREFIX=$(SCRATCH_PREFIX)
	scripts/bootstrap --python
	USERSWAP_LIBRARY=$(SCRATCH_PREFIX)/lib/libuserswap.so $(PYTHON) -m pytest -q python/tests

# `userswap exec` (tests/exec/run): unmodified programs (a C program, python3 as the user
# nobody, sort, sqlite3) under the CLI of `make build` with the preload library of the scratch
# installation, each compared with a plain run, and the C program within and past group limits;
# about two minutes.
test-exec: build
	$(MAKE) install PREFIX=$(SCRATCH_PREFIX)
	scripts/bootstrap --python
	$(PYTHON) tests/exec/run $(CURDIR)/.build/debug/userswap $(SCRATCH_PREFIX)/lib/libuserswap-preload.so

# The model-based random test at soak length: 10⁷ steps over its cases, four models at
# once on each space, in a release build (testable imports need -enable-testing) kept in its own
# build directory so that it does not replace the one `make release` uses; -DDEBUG compiles in
# the test hooks and planted bugs that release builds leave out. A failure prints its
# seed; USERSWAP_SEED=<seed> with the same SOAK_OPS and SOAK_THREADS replays its steps (exactly
# with SOAK_THREADS=1; with threads, the interleaving differs).
# The transparent-region stress test runs SOAK_TRANSPARENT_OPS steps per owner thread (1500 in
# `make test`).
SOAK_OPS ?= 10000000
SOAK_THREADS ?= 4
SOAK_TRANSPARENT_OPS ?= 200000
soak: bootstrap
	USERSWAP_MODEL_OPS=$(SOAK_OPS) USERSWAP_MODEL_THREADS=$(SOAK_THREADS) USERSWAP_TRANSPARENT_OPS=$(SOAK_TRANSPARENT_OPS) \
		$(SWIFT) test -c release -Xswiftc -enable-testing -Xswiftc -DDEBUG --scratch-path .build/soak --filter 'ModelTests|TransparentStressTests'

# ThreadSanitizer over the concurrency suites, in its own build directory so that the
# instrumented build does not replace the normal debug one. `-D USERSWAP_TSAN` tells TSan about
# every Mutex's lock and unlock (Sources/UserSwap/Support/AnnotatedMutex.swift: this toolchain's
# Synchronization.Mutex is not instrumented); scripts/tsan.supp would name a false report, each
# with why it is false — it has none (`make tsan TSAN_SUPPRESSIONS=` runs without the file). Then
# scripts/tsan-planted-race proves that a lock-asymmetry race is reported.
# The concurrent model runs TSAN_MODEL_OPS steps in all (4 threads, over its cases).
# allocator_may_return_null: a test asks for a page table too large to allocate and expects
# the typed error; TSan's allocator would abort the run instead of returning null.
# Transparent regions run clean under it; TSan checks the engine's and the fault handlers'
# accesses, but cannot know that a window page's two views are one memory.
# TransparentCrashTests is left out: it checks that a crashing child dies of its signal under
# Swift's backtracer, and under TSan the child's SIGSEGV, SIGABRT and SIGBUS are TSan's own
# (its DEADLYSIGNAL report, then exit status 66), so the path it tests never runs there.
TSAN_SUITES := SwapInRaceTests|AllocationWaitTests|AsyncPinTests|FrameWaitQueueTests|EngineThreadLifetimeTests|ReadaheadTests|PrefetchTests|ReclaimStressTests|MemoryGroupTests|SwapDeviceAllocationTests|TransparentRegionTests|TransparentStressTests|IOEngineTests|SwapOffTests|SlotReclaimTests|SlotReclaimWorkerTests|LegacyProtocolTests|SwappableArrayTests|ModelTests/concurrentModels|FaultInjectionTests|CompressedTierTests|SpaceEncryptionTests|RedisBackendTests/spaceUnderReclaim|RedisBackendTests/concurrentThreads|ScheduleExplorationTests|RedisClusterBackendTests|SignalFaultRouterTests|FrameWindowTests|TicketQueueTests|TransparentDiscardTests|FrameCensusTests|TransparentLateFaultTests|TransparentReleaseTests|TransparentAccessTrackingTests|TransparentGroupLimitTests|IORequestTableTests|SealTableTests|EncryptedTierTests/scratchReused
TSAN_SUPPRESSIONS ?= $(CURDIR)/scripts/tsan.supp
TSAN_MODEL_OPS ?= 20000
tsan: bootstrap
	TSAN_OPTIONS="$(if $(TSAN_SUPPRESSIONS),suppressions=$(TSAN_SUPPRESSIONS) )halt_on_error=0 allocator_may_return_null=1" \
		USERSWAP_MODEL_CONCURRENT_OPS=$(TSAN_MODEL_OPS) \
		$(SWIFT) test --sanitize=thread -Xswiftc -DUSERSWAP_TSAN --scratch-path .build/tsan --filter '$(TSAN_SUITES)'
	SWIFT=$(SWIFT) TSAN_SUPPRESSIONS=$(TSAN_SUPPRESSIONS) scripts/tsan-planted-race

# The library's documentation (DocC, from the toolchain) into .build/docs/<Module>/; fails on
# a DocC warning and on a public symbol without a doc comment (scripts/docs says how to view it).
docs: bootstrap
	scripts/docs

# The toolchain's swift-format with the checked-in .swift-format: `make format` rewrites the
# tree, `make lint` fails on anything it would change or flag, and on a break of the
# architecture's rules (scripts/check-architecture says which; its self-test first plants one
# violation of each rule and fails unless every one is reported). The release binary's symbols
# are checked when a release build newer than the sources exists; `make check-release` builds
# one and checks it.
FORMATTED := Sources Tests Examples Package.swift
format:
	swift-format format --in-place --recursive --parallel $(FORMATTED)

lint:
	swift-format lint --strict --recursive --parallel $(FORMATTED)
	scripts/check-architecture --self-test
	scripts/check-architecture

check-release: release
	scripts/check-architecture --require-release

# The standard benchmark suite into bench/results/*.json, then plots of whatever is there.
# A scenario that is not written yet is skipped with a note, not an error.
bench:
	scripts/bootstrap --plots
	$(SWIFT) build -c release
	@mkdir -p $(RESULTS)
	@scenarios="$$($(RELEASE_BIN) bench --list)"; \
	for s in alloc pin race faults zipf random seq usemem hashtable multiget tiers device-limits array; do \
		case $$s in \
			race) args="--protocol all --threads 8" ;; \
			zipf) args="--param policy=all" ;; \
			tiers) args="--seconds 1 --param devices=memory,file,compressed,encrypted" ;; \
			multiget) args="--param batch=32" ;; \
			*) args="" ;; \
		esac; \
		if printf '%s\n' "$$scenarios" | grep -qx "$$s"; then \
			echo "== bench $$s $$args"; \
			$(RELEASE_BIN) bench $$s $$args --json $(RESULTS)/$$s.json || exit 1; \
		else \
			echo "== bench $$s: scenario not written yet, skipped"; \
		fi; \
	done
	@# The same stream in 64 KiB folios (one contiguous transfer per folio, the kernel's mTHP).
	$(RELEASE_BIN) bench seq --param folio=64K --json $(RESULTS)/seq-64k.json
	@# What a fault costs when the faulting thread resolves it (the default above: handler threads).
	$(RELEASE_BIN) bench faults --param faults=faulting_thread --json $(RESULTS)/faults-faulting-thread.json
	@# The I/O engines side by side (one interleaved round: synchronous, io_uring, thread pool).
	bench/io-engines --reps 1 --scenarios "random seq zipf" --out $(RESULTS) --tag quick
	@# Unmodified programs under userswap exec against the kernel's route (each in a memory
	@# cgroup of the same budget with a swap file; root): bench/results/exec-kernel.json.
	$(MAKE) clib
	scripts/bootstrap --python
	$(PYTHON) tests/exec/run --kernel $(RESULTS) $(CURDIR)/$(RELEASE_BIN) $(CURDIR)/$(PRELOAD)
	@# Far memory side by side: random and zipf over the swap file, one Redis server, and a
	@# 3-master Redis Cluster without and with a replica's copy per write (docs/REDIS-CLUSTER.md).
	bench/redis-cluster --out $(RESULTS)
	@# multiget (batches of 32 keys) against the kernel with and without MADV_WILLNEED on each
	@# batch, beside the disk's raw random-read IOPS at depths 1, 2 and 32 measured in each
	@# UserSwap run; the explicit API prefetches with what it has (docs/PERFORMANCE.md).
	@# UserSwap against the kernel's own swap (root only): every comparison gives every side the
	@# same swap and the same memory for data (a cgroup of the budget + the side's own baseline),
	@# runs three rounds in rotating order and reports medians and ranges (bench/kernel-compare).
	@# Beside the kernel driven by the Swift harness, the C driver (bench/kernel-driver.c).
	@# The C driver also over libuserswap's `userswap_map` (plain memory, UMap-style) against the
	@# same C driver over anonymous memory (kernel-compare-clib-*.json, docs/C-AND-PYTHON.md).
	@if [ "$$(id -u)" -eq 0 ]; then \
		compare() { echo "== bench/kernel-compare $$*"; bench/kernel-compare --no-progress "$$@" || exit 1; }; \
		compare --scenario zipf --transparent --json $(RESULTS)/kernel-compare-zipf.json; \
		compare --scenario random --transparent --json $(RESULTS)/kernel-compare-random.json; \
		compare --scenario random --data 1G --memory 256M --param write_ratio=0 --json $(RESULTS)/kernel-compare-random-1G-read.json; \
		compare --scenario zipf --data 1G --memory 256M --param write_ratio=0 --json $(RESULTS)/kernel-compare-zipf-1G-read.json; \
		compare --scenario multiget --data 1G --memory 256M --param batch=32 --json $(RESULTS)/kernel-compare-multiget-1G.json; \
		compare --scenario taskgroup --param tasks=256 --memory 64M --seconds 10 --json $(RESULTS)/kernel-compare-taskgroup.json; \
		$(MAKE) --no-print-directory install PREFIX=$(SCRATCH_PREFIX) >/dev/null || exit 1; \
		for s in random zipf; do \
			compare --scenario $$s --c-library $(SCRATCH_PREFIX) --json $(RESULTS)/kernel-compare-clib-$$s.json; \
		done; \
		for m in 32M 128M; do \
			compare --scenario zipf --memory $$m --no-c-driver --json $(RESULTS)/kernel-compare-zipf-budget-$$m.json; \
		done; \
		for r in 4 1; do \
			compare --zram --scenario random --data 1G --memory 256M --param write_ratio=0 --param repeats=$$r --no-c-driver \
				--json $(RESULTS)/kernel-compare-zram-random-repeats$$r.json; \
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
