# ak2vault — GNU make build.
#
#   make            build bin/ak2vault and the loopback stand-ins
#   make test       install missing Debian packages, build, run every test
#   make demo       install missing Debian packages, build, run the demo
#   make asan       build everything with AddressSanitizer + UBSan into build/asan
#   make test-asan  run the whole suite against the sanitizer build
#   make lint       clang-format check, cppcheck, banned-call grep
#   make bench      the benchmark (small sizes; FULL=1 for the full run)
#
# The packages are probed with pkg-config at parse time, so targets that may
# have to install them first (test, demo) re-invoke make once they are there.

DEB_PKGS := build-essential pkg-config librdkafka-dev libcurl4-openssl-dev \
            libcjson-dev libconfig-dev libmicrohttpd-dev libcmocka-dev kcat \
            python3 python3-yaml python3-requests procps curl shellcheck
PKGS     := rdkafka libcurl libcjson libconfig libmicrohttpd

BUILD ?= build
BIN   ?= bin

CC      ?= cc
CFLAGS  ?= -O2 -g
# SAN=1: AddressSanitizer + UBSan (used by `make asan` / `make test-asan`).
ifeq ($(SAN),1)
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
           -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Wshadow \
           -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral -MMD -MP \
           -Icommon -Iworker
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS  += -Wl,--as-needed $(PKG_LIBS) -lpthread -lm

COMMON_SRC := $(wildcard common/*.c)
WORKER_SRC := $(filter-out worker/main.c,$(wildcard worker/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
WORKER_OBJ := $(WORKER_SRC:%.c=$(BUILD)/%.o)
LIBCOMMON  := $(BUILD)/libakv_common.a
LIBWORKER  := $(BUILD)/libakv_worker.a
FAKEHTTP   := $(BUILD)/tests/fakes/fakehttp.o
FAKEFAULT  := $(BUILD)/tests/fakes/fakefault.o

PROGS := $(BIN)/ak2vault $(BIN)/mock-kafka $(BIN)/fake-vault \
         $(BIN)/fake-authentik $(BIN)/akv-bench-gen $(BIN)/akv-produce
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# Keep object files of the test binaries (make would delete them as
# intermediates and rebuild every time).
.SECONDARY:

.PHONY: all deps test check demo unit asan test-asan lint clean bench

all: $(PROGS) $(UNIT_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(COMMON_OBJ)
	$(AR) rcs $@ $^

$(LIBWORKER): $(WORKER_OBJ)
	$(AR) rcs $@ $^

$(BIN)/ak2vault: $(BUILD)/worker/main.o $(LIBWORKER) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/mock-kafka: $(BUILD)/tests/fakes/mock_kafka.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/fake-vault: $(BUILD)/tests/fakes/fake_vault.o $(FAKEFAULT) $(FAKEHTTP) \
                   $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/fake-authentik: $(BUILD)/tests/fakes/fake_authentik.o $(FAKEFAULT) \
                       $(FAKEHTTP) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/akv-bench-gen: $(BUILD)/tests/bench/gen.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/akv-produce: $(BUILD)/tests/tools/produce.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(LIBWORKER) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# Installs whatever of DEB_PKGS is missing; uses sudo when not root.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
	        grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    echo "make deps: installing$$missing"; \
	    $$sudo apt-get update && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

test: deps
	@$(MAKE) --no-print-directory check

check: all
	@AKV_BIN=$(abspath $(BIN)) AKV_UNIT_DIR=$(abspath $(BUILD)/tests) \
	    tests/run-tests.sh

unit: all
	@AKV_BIN=$(abspath $(BIN)) AKV_UNIT_DIR=$(abspath $(BUILD)/tests) \
	    tests/run-tests.sh --unit-only

demo: deps
	@$(MAKE) --no-print-directory all
	@AKV_BIN=$(abspath $(BIN)) /usr/bin/python3 tests/demo.py

bench: deps
	@$(MAKE) --no-print-directory all
	@AKV_BIN=$(abspath $(BIN)) /usr/bin/python3 tests/bench/bench.py \
	    $(if $(FULL),--full) $(BENCH_ARGS)

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/bin SAN=1 all

test-asan: deps
	@$(MAKE) --no-print-directory asan
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    AKV_BIN=$(abspath build/asan/bin) \
	    AKV_UNIT_DIR=$(abspath build/asan/tests) tests/run-tests.sh

BANNED := '\b(sprintf|vsprintf|strcpy|strcat|strncpy|strtok|atoi|atol|gets)\('
lint:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --inline-suppr -Icommon -Iworker common worker tests
	@! git grep -nE $(BANNED) -- '*.c' '*.h' || \
	    { echo "banned call found"; exit 1; }

clean:
	rm -rf $(BUILD) $(BIN)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
