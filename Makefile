# Thin wrapper over CMake so that a newcomer types `make demo` and `make test`.
#   make demo    configure, build, run `objmem demo`
#   make test    build and run every test, then again under ASan + UBSan,
#                then the thread tests under ThreadSanitizer
#   make bench   build the benchmarks against their peers and run them
#   make fuzz    run each libFuzzer target in fuzz/ for FUZZ_SECONDS
#   make soak    a mixed multi-threaded workload for SOAK_SECONDS (600)
#                that fails if RSS drifts more than 2 % after warm-up
#   make valgrind  the tests under valgrind memcheck, on objmem's pools
#                and with OBJMEM_MALLOC=malloc; zero errors
#   make install PREFIX=/usr/local
#   make docs    regenerate docs/reference.md from the headers' doc-comments
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
CMAKE  ?= cmake
CTEST  ?= ctest

.PHONY: all build demo test test-release test-asan test-tsan bench fuzz fuzz-run soak valgrind install clean docs

all: build

build:
	$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOM_WERROR=ON
	$(CMAKE) --build build -j $(JOBS)

demo: build
	./build/objmem demo

test: test-deps test-release test-asan test-tsan

# Packages the tests need: Debian's chromium for the browser test of the
# HTML report (the script skips without root or network; the test then
# shows as skipped).
.PHONY: test-deps
test-deps:
	bash tests/install-chromium.sh

test-release:
	$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOM_WERROR=ON
	$(CMAKE) --build build -j $(JOBS)
	$(CTEST) --test-dir build --output-on-failure -j $(JOBS)

test-asan:
	$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DOM_WERROR=ON -DOM_SANITIZE=ON -DOM_DEBUG=2
	$(CMAKE) --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(CTEST) --test-dir build-asan --output-on-failure -j $(JOBS)

# The tests that run threads, under ThreadSanitizer (it must report nothing:
# halt_on_error makes any report fail the test). test-trace is left out: its
# RAW tracing reads in front of blocks, which TSan's allocator leaves unmapped
# (it crashes there, before and after runtimes).
TSAN_TESTS = test-gil test-runtime test-object test-heap test-domain test-thread-rules
empty :=
space := $(empty) $(empty)

test-tsan:
	$(CMAKE) -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DOM_WERROR=ON -DOM_TSAN=ON -DOM_DEBUG=2
	$(CMAKE) --build build-tsan -j $(JOBS) --target $(TSAN_TESTS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  $(CTEST) --test-dir build-tsan --output-on-failure -j $(JOBS) \
	  -R '^($(subst $(space),|,$(TSAN_TESTS)))$$'

bench:
	bash bench/install-peers.sh
	$(CMAKE) -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DOM_BUILD_BENCH=ON -DOM_BUILD_TESTS=OFF -DOM_VALGRIND=OFF
	$(CMAKE) --build build-bench -j $(JOBS)
	./build-bench/bench/alloc_bench $(BENCH_ARGS)

# Fuzzing (fuzz/): each target runs FUZZ_SECONDS under libFuzzer with ASan
# and UBSan, from its seeds and regressions in fuzz/corpus/<target>/ (read
# only; new inputs go to build-fuzz/corpus/<target>/, crashers to
# build-fuzz/<target>-crash-*). Without clang and libFuzzer (installed by
# fuzz/install-clang.sh when root) it says so and skips. Warnings are errors
# here too: the sources build clean under clang as under gcc.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS = fuzz_alloc fuzz_objects
FUZZ_FLAGS ?= -max_len=4096

fuzz:
	@if bash fuzz/install-clang.sh; then $(MAKE) --no-print-directory fuzz-run; \
	 else echo "make fuzz: skipped (no clang with libFuzzer)"; fi

fuzz-run:
	CC=clang $(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOM_SANITIZE=ON \
	  -DOM_FUZZ=ON -DOM_DEBUG=2 -DOM_BUILD_TOOLS=OFF -DOM_WERROR=ON
	$(CMAKE) --build build-fuzz -j $(JOBS) --target $(FUZZ_TARGETS)
	set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  ./build-fuzz/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/$$t- $(FUZZ_FLAGS) build-fuzz/corpus/$$t fuzz/corpus/$$t; \
	done

# Soak (issue 9): soak/soak.c's design comment has the workload and the
# drift statistic (medians of windows of the 1 s RSS samples).
SOAK_SECONDS ?= 600

soak:
	$(CMAKE) -S . -B build-soak -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOM_WERROR=ON -DOM_BUILD_SOAK=ON -DOM_BUILD_TESTS=OFF
	$(CMAKE) --build build-soak -j $(JOBS) --target soak
	./build-soak/soak/soak $(SOAK_SECONDS)

# valgrind memcheck (issue 9): tests/valgrind.sh runs the test programs on
# objmem's own pools announced with the client requests (OM_VALGRIND=ON),
# then the object tests with OBJMEM_MALLOC=malloc, and requires zero errors.
# The stress sizes are scaled down as under the sanitizers (OM_TEST_VALGRIND).
# Left out of the pools pass, and why:
#   test-arena, test-heap  assert that RSS falls after trims and deletes;
#                   under valgrind RSS is mostly memcheck's own shadow memory
#   test-sanitizer  only has work in the ASan build (exits 77 elsewhere)
#   test-trace      re-executes itself through /proc/self/exe to test
#                   OBJMEM_TRACEMALLOC, which under valgrind is memcheck's own
#                   launcher (memcheck found no error in it)
#   test-environment re-executes itself through /proc/self/exe with one
#                   OBJMEM_* setting each time, as test-trace does
#   test-gil        (both passes) counts GIL hand-overs within a wall-clock
#                   window of 40 switch intervals; valgrind runs one thread at
#                   a time, 20-50x slower (memcheck found no error in it)
# The malloc pass runs the programs whose checks hold whatever allocator the
# domains have; the others assert objmem's own tiers (statistics, usable
# sizes, arenas, fault injection, debug hooks, tracing headers) or free
# private-heap blocks through the domains, which OBJMEM_MALLOC=malloc hands
# to glibc (they fail that way without valgrind too).
VALGRIND_POOLS_EXCLUDE = test-arena test-heap test-sanitizer test-gil test-trace test-environment
VALGRIND_MALLOC_TESTS = test-dict test-gc test-sequences test-weakref

valgrind:
	bash tests/install-valgrind.sh
	$(CMAKE) -S . -B build-valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOM_WERROR=ON -DOM_VALGRIND=ON \
	  -DCMAKE_C_FLAGS=-DOM_TEST_VALGRIND=1
	$(CMAKE) --build build-valgrind -j $(JOBS)
	bash tests/valgrind.sh build-valgrind $(JOBS) "$(VALGRIND_POOLS_EXCLUDE)" "$(VALGRIND_MALLOC_TESTS)"

install: build
	$(CMAKE) --install build --prefix $(PREFIX)

clean:
	rm -rf build build-asan build-tsan build-bench build-fuzz build-soak build-valgrind

# docs/reference.md from the headers (checked by the CTest test docs-reference).
docs:
	python3 docs/gen-reference.py

# The examples that run threads also run under ThreadSanitizer (test-tsan).
TSAN_TESTS += example-threads_and_gil example-tiny_interpreter
