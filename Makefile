# Two commands do everything on a fresh Debian 12 machine (as root or via sudo):
#   make demo   set-up + build + the example project end to end
#   make test   set-up + build + the whole test suite
PRESET ?= release
BUILD := build/$(PRESET)
SLUICE := $(BUILD)/src/sluice
JOBS ?= $(shell nproc)

.PHONY: all setup build test demo format tidy asan tsan fuzz bench bench-scheduler bench-api clean reliability soak

all: build

setup:
	@scripts/bootstrap.sh >/dev/null

build: setup
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

demo: build
	@scripts/demo.sh $(SLUICE)

asan:
	@$(MAKE) --no-print-directory test PRESET=asan

# The executor and server under ThreadSanitizer (libduckdb's own internals suppressed).
tsan: setup
	@cmake --preset tsan >/dev/null
	@cmake --build build/tsan -j $(JOBS)
	@ctest --preset tsan -j $(JOBS) --timeout 600

# Each parser's libFuzzer target for FUZZ_SECONDS, from its seed corpus (clang).
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/bootstrap.sh fuzz >/dev/null
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j $(JOBS)
# A fuzzer that finds a crash fails the target (its log is kept, its last lines shown).
	@for f in config template partition html_table fetch_helpers reader csv_load; do \
	  mkdir -p build/fuzz/corpus/$$f build/fuzz/artifacts/$$f && \
	  if build/fuzz/fuzz/$${f}_fuzzer -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	      -artifact_prefix=build/fuzz/artifacts/$$f/ \
	      build/fuzz/corpus/$$f fuzz/corpus/$$f >build/fuzz/$$f.log 2>&1; then \
	    tail -3 build/fuzz/$$f.log; \
	  else \
	    tail -30 build/fuzz/$$f.log; \
	    echo "fuzzer $$f failed: see build/fuzz/$$f.log and build/fuzz/artifacts/$$f/" >&2; \
	    exit 1; \
	  fi; \
	done

# The reliability runs of bench/RELIABILITY.md: kill -9 at random moments
# KILL9_ITERATIONS times, each kind of write/fsync/rename and each
# publication failed in turn (IO_FAULT_MAX calls of each kind), a real full
# disk, the whole suite under ASan+UBSan, and every fuzzer for FUZZ_SECONDS.
KILL9_ITERATIONS ?= 200
IO_FAULT_MAX ?= 30
reliability: build
	@cd $(BUILD) && KILL9_ITERATIONS=$(KILL9_ITERATIONS) IO_FAULT_MAX=$(IO_FAULT_MAX) \
	  ctest --output-on-failure -R 'case\.(kill9_loop|kill9_recovery|io_faults|disk_full|http_kill9|http_kill9_pages)$$'
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

# The API under wrk for SOAK_SECONDS while a schedule publishes every second:
# no errors, no half versions, RSS bounded (test/cases/soak).
SOAK_SECONDS ?= 300
soak: build
	@cd $(BUILD) && SOAK_SECONDS=$(SOAK_SECONDS) ctest --output-on-failure -V -R 'case\.soak$$' \
	  >soak.log 2>&1; rc=$$?; grep -E '^[0-9]+: (soak |Requests|  [0-9]+ requests)|FAIL' soak.log; \
	  echo "(full output: $(BUILD)/soak.log)"; exit $$rc

format:
	@clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.h' 'test/*.cpp' 'test/*.h' 'bench/*.cpp' 'fuzz/*.cpp')

tidy: build
	@clang-tidy -p $(BUILD) --quiet $$(git ls-files 'src/*.cpp')

bench: build
	@bench/ingest/run.sh $(SLUICE)

# The executor's overhead per model beside make -j2 and Celery (bench/scheduler).
bench-scheduler: build
	@scripts/bootstrap.sh bench >/dev/null
	@bench/scheduler/run.sh $(SLUICE)

bench-api: build
	@scripts/bootstrap.sh bench >/dev/null
	@bench/api/run.sh $(SLUICE)

clean:
	@rm -rf build
