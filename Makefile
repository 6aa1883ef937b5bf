# ak2vault — GNU make build.
#
#   make            build bin/ak2vault and the loopback stand-ins
#   make test       install missing Debian packages, build, run every test
#   make demo       install missing Debian packages, build, run the demo
#                   (on mock-kafka; KAFKA=real: on Apache Kafka, `make kafka`
#                   first)
#   make asan       build everything with AddressSanitizer + UBSan into build/asan
#   make test-asan  run the whole suite against the sanitizer build
#   make lint       clang-format check, cppcheck, banned-call grep
#   make image      the container image with podman (below; as root)
#   make install    install the binary, configuration and systemd unit
#                   (PREFIX=/usr/local, SYSCONFDIR=/etc, DESTDIR)
#   make bench      the benchmark (small sizes; FULL=1 for the full run;
#                   KAFKA=real on Apache Kafka, `make kafka` first;
#                   BENCH_ARGS= more options of tests/bench/bench.py)
#   make fuzz       libFuzzer targets with clang, FUZZ_TIME seconds each (below)
#
# The packages are probed with pkg-config at parse time, so targets that may
# have to install them first (test, demo) re-invoke make once they are there.

DEB_PKGS := build-essential pkg-config librdkafka-dev libcurl4-openssl-dev \
            libcjson-dev libconfig-dev libmicrohttpd-dev libcmocka-dev kcat \
            python3 python3-yaml python3-requests procps curl shellcheck \
            prometheus jq systemd python3-venv openssl podman runc \
            debootstrap
PKGS     := rdkafka libcurl libcjson libconfig libmicrohttpd

# The release: `ak2vault version`, the image's tag and OCI labels; the
# Dockerfile's default (AK2VAULT_VERSION), Chart.yaml's appVersion and the
# kustomization's image tag say the same, which tests check.
VERSION := 0.1.0

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
           -Icommon
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS  += -Wl,--as-needed $(PKG_LIBS) -lpthread -lm

# The worker's parts (worker/README.md), each a static library compiled
# with its own include path: common/, itself and the parts in DEPS_<part>.
# An include that points up the layers does not compile, and core/ sees
# stubs that refuse libcurl, librdkafka and libmicrohttpd (core/forbid/).
# PARTS is in link order: a part before those it uses.
PARTS := cli kafka sync ops upstream config core
DEPS_core     := forbid
DEPS_config   :=
DEPS_upstream := core config
DEPS_ops      := core
DEPS_sync     := core config upstream ops
DEPS_kafka    := core config ops sync
DEPS_cli      := core config upstream ops sync kafka
part_inc = -Iworker/$(1) $(foreach d,$(DEPS_$(1)),\
               -Iworker/$(if $(filter forbid,$(d)),core/forbid,$(d)))
part_src = $(filter-out worker/cli/main.c,$(wildcard worker/$(1)/*.c))
part_lib = $(BUILD)/libakv_$(1).a
# Tests and tools see every part.
ALL_INC := $(PARTS:%=-Iworker/%)
PART_INC := $(ALL_INC)
$(foreach p,$(PARTS),\
    $(eval $(BUILD)/worker/$(p)/%.o: PART_INC := $(call part_inc,$(p))))
$(BUILD)/common/%.o: PART_INC :=
# The stand-ins' parts (tests/fakes/vault/, ...) include what tests/fakes/
# shares.
$(BUILD)/tests/fakes/%.o: PART_INC += -Itests/fakes

COMMON_SRC := $(wildcard common/*.c)
WORKER_SRC := $(foreach p,$(PARTS),$(call part_src,$(p)))
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
LIBCOMMON  := $(BUILD)/libakv_common.a
LIBWORKER  := $(foreach p,$(PARTS),$(call part_lib,$(p)))
FAKEHTTP   := $(BUILD)/tests/fakes/fakehttp.o
FAKEFAULT  := $(BUILD)/tests/fakes/fakefault.o
FAKEHTAB   := $(BUILD)/tests/fakes/fakehtab.o

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
	$(CC) $(CFLAGS) $(PART_INC) $(PKG_CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(COMMON_OBJ)
	$(AR) rcs $@ $^

define part_rules
$(call part_lib,$(1)): $$(patsubst %.c,$(BUILD)/%.o,$(call part_src,$(1)))
	$$(AR) rcs $$@ $$^
endef
$(foreach p,$(PARTS),$(eval $(call part_rules,$(p))))

# The version is compiled into main.o alone, which is rebuilt when this
# file changes.
$(BUILD)/worker/cli/main.o: CFLAGS += -DAKV_VERSION='"$(VERSION)"'
$(BUILD)/worker/cli/main.o: Makefile

$(BIN)/ak2vault: $(BUILD)/worker/cli/main.o $(LIBWORKER) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/mock-kafka: $(BUILD)/tests/fakes/mock_kafka.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The stand-ins, one folder each (tests/fakes/vault/, tests/fakes/authentik/).
FAKE_VAULT_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/fakes/vault/*.c))
FAKE_AUTHENTIK_OBJ := \
    $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/fakes/authentik/*.c))

$(BIN)/fake-vault: $(FAKE_VAULT_OBJ) $(FAKEFAULT) $(FAKEHTAB) $(FAKEHTTP) \
                   $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/fake-authentik: $(FAKE_AUTHENTIK_OBJ) $(FAKEFAULT) $(FAKEHTAB) \
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

# The suites run on both brokers and both Vaults: the real ones are
# installed (or built) first; so is the container image, where podman
# works.
test: deps
	@$(MAKE) --no-print-directory kafka
	@$(MAKE) --no-print-directory k8s-tools venv vault image-if-podman
	@$(MAKE) --no-print-directory check

check: all
	@AKV_BIN=$(abspath $(BIN)) AKV_UNIT_DIR=$(abspath $(BUILD)/tests) \
	    tests/run-tests.sh

unit: all
	@AKV_BIN=$(abspath $(BIN)) AKV_UNIT_DIR=$(abspath $(BUILD)/tests) \
	    tests/run-tests.sh --unit-only

# The broker of `make demo` and `make bench`: mock (mock-kafka) unless
# KAFKA=real (Apache Kafka; `make kafka`, idempotent, installs it first).
KAFKA ?= mock

demo: deps
	@$(MAKE) --no-print-directory all
	@$(if $(filter real,$(KAFKA)),$(MAKE) --no-print-directory kafka,:)
	@AKV_BIN=$(abspath $(BIN)) /usr/bin/python3 tests/demo.py \
	    --kafka $(KAFKA)

bench: deps
	@$(MAKE) --no-print-directory all
	@$(if $(filter real,$(KAFKA)),$(MAKE) --no-print-directory kafka,:)
	@AKV_BIN=$(abspath $(BIN)) /usr/bin/python3 tests/bench/bench.py \
	    --kafka $(KAFKA) $(if $(FULL),--full) $(BENCH_ARGS)

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/bin SAN=1 all

test-asan: deps
	@$(MAKE) --no-print-directory kafka asan
	@$(MAKE) --no-print-directory k8s-tools venv vault image-if-podman
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    AKV_BIN=$(abspath build/asan/bin) \
	    AKV_UNIT_DIR=$(abspath build/asan/tests) tests/run-tests.sh

BANNED := '\b(sprintf|vsprintf|strcpy|strcat|strncpy|strtok|atoi|atol|gets)\('
lint:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --inline-suppr -Icommon $(ALL_INC) -Itests/fakes common worker tests
	@! git grep -nE $(BANNED) -- '*.c' '*.h' || \
	    { echo "banned call found"; exit 1; }

clean:
	rm -rf $(BUILD) $(BIN)

# ---------------------------------------------------------------------------
# Installing on a machine with systemd (README, "Production quick start"):
#
#   make install     bin/ak2vault to $(PREFIX)/bin, the example configuration
#                    to $(SYSCONFDIR)/ak2vault/ak2vault.cfg unless one is
#                    there, the unit to $(UNITDIR) (its ExecStart follows
#                    PREFIX and SYSCONFDIR), README to the doc directory
#   make uninstall   removes them again, the configuration directory kept
#
# DESTDIR is put in front of every path (packaging).
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/ak2vault
UNIT       := configs/systemd/ak2vault.service

.PHONY: install uninstall

install: $(BIN)/ak2vault
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/ak2vault
	install -m 0755 $(BIN)/ak2vault $(DESTDIR)$(PREFIX)/bin/ak2vault
	@cfg=$(DESTDIR)$(SYSCONFDIR)/ak2vault/ak2vault.cfg; \
	if [ -e "$$cfg" ]; then echo "make install: $$cfg kept"; \
	else install -m 0640 configs/ak2vault.cfg "$$cfg" && \
	    echo "install -m 0640 configs/ak2vault.cfg $$cfg"; fi
	sed -e 's|/usr/local/bin/|$(PREFIX)/bin/|' \
	    -e 's|/usr/local/share/doc/ak2vault/|$(DOCDIR)/|' \
	    -e 's|/etc/ak2vault/|$(SYSCONFDIR)/ak2vault/|g' $(UNIT) \
	    >$(DESTDIR)$(UNITDIR)/ak2vault.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/ak2vault.service
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ak2vault \
	    $(DESTDIR)$(UNITDIR)/ak2vault.service $(DESTDIR)$(DOCDIR)/README.md
	-rmdir $(DESTDIR)$(DOCDIR)

# ---------------------------------------------------------------------------
# Fuzzing: libFuzzer targets in tests/fuzz (one fuzz_*.c per target, seed
# corpora in tests/fuzz/corpus/<target>/).
#
#   make fuzz        install clang and its libFuzzer runtime if missing, build
#                    every target with -fsanitize=fuzzer,address,undefined
#                    into build/fuzz and run each for FUZZ_TIME seconds on a
#                    copy of its corpus in build/fuzz/corpus/<target>; new
#                    crash inputs land in build/fuzz/crashes/<target>/ and
#                    make fuzz fails if any target crashed
#   make fuzz FUZZ_TARGETS="fuzz_matcher fuzz_jscan" FUZZ_TIME=20 FUZZ_JOBS=2
#   make fuzz FUZZ_KEEP_GOING=1   run past crashes for the whole time and
#                    show the distinct failures found
#   make fuzz-build  build the fuzzers only
#
# `make test` needs no clang: `all` builds each target a second time with
# $(CC) and the standalone driver tests/fuzz/replay_main.c, and
# tests/run-tests.sh replays the committed corpora through it (so a crash
# input copied into a corpus stays a regression test), under SAN=1 too.

FUZZ_NAMES := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/%)

all: $(FUZZ_REPLAY)

$(FUZZ_REPLAY): $(BUILD)/tests/fuzz/%: $(BUILD)/tests/fuzz/%.o \
                $(BUILD)/tests/fuzz/replay_main.o $(LIBWORKER) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

FUZZ_CC      ?= clang
FUZZ_DIR     ?= build/fuzz
FUZZ_TIME    ?= 120
FUZZ_JOBS    ?= 1
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_KEEP_GOING ?= 0
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# The library is compiled without -Werror: clang warns about other things
# than gcc, and a fuzzing run should not depend on that. The targets keep it.
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link \
                $(FUZZ_SAN) -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -MMD -MP \
                -Icommon $(ALL_INC)
FUZZ_LIB     := $(FUZZ_DIR)/libakv_fuzz.a
FUZZ_BIN     := $(FUZZ_NAMES:%=$(FUZZ_DIR)/bin/%)

.PHONY: fuzz fuzz-deps fuzz-build fuzz-run

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/obj/tests/fuzz/%.o: FUZZ_CFLAGS += -Werror

$(FUZZ_LIB): $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(COMMON_SRC) $(WORKER_SRC))
	$(AR) rcs $@ $^

$(FUZZ_BIN): $(FUZZ_DIR)/bin/%: $(FUZZ_DIR)/obj/tests/fuzz/%.o $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(LDLIBS)

# clang and the libFuzzer runtime of its version, installed like DEB_PKGS;
# not part of DEB_PKGS: `make test` does not need them.
fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS=clang
	@v=$$($(FUZZ_CC) -dumpversion | cut -d. -f1); \
	    $(MAKE) --no-print-directory deps DEB_PKGS="libclang-rt-$$v-dev"

fuzz-build: $(FUZZ_BIN)

fuzz-run:
	@FUZZ_KEEP_GOING=$(FUZZ_KEEP_GOING) tests/fuzz/run-fuzz.sh \
	    "$(FUZZ_DIR)" "$(FUZZ_TIME)" "$(FUZZ_JOBS)" $(FUZZ_TARGETS)

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	@$(MAKE) --no-print-directory fuzz-run

# ---------------------------------------------------------------------------
# Real Kafka for tests: an Apache Kafka broker (KRaft) from Maven Central's
# jars, run on the machine's Java by tests/kafka/kafka-local.
#
#   make kafka       install java and mvn if missing (KAFKA_DEB_PKGS, like
#                    DEB_PKGS but apart: a machine with its own JDK keeps
#                    it; `make test` runs this first),
#                    copy the jars of the release pinned in
#                    tests/kafka/pom.xml into build/kafka/libs (once: the
#                    stamp build/kafka/libs/.kafka-VERSION skips it after),
#                    those of the 3.9 release pinned in
#                    tests/kafka/kafka-3.9/pom.xml into build/kafka/libs-3.9
#                    (the same way: test_kafka_security's SCRAM-SHA-512 run,
#                    which librdkafka < 2.6.1 cannot do with Kafka 4.x)
#                    and install the launcher as bin/kafka-local
#   tests/kafka/selftest.py   checks the launcher with kcat and ak2vault lag
#   AKV_KAFKA=real   runs an integration suite on it (tests/run-tests.sh
#                    does for REAL_KAFKA_SUITES and tests/integration/
#                    test_kafka_*)

KAFKA_DEB_PKGS := openjdk-17-jre-headless maven
KAFKA_POM      := tests/kafka/pom.xml
KAFKA_LIBS     := build/kafka/libs
KAFKA_VERSION  := $(shell sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' $(KAFKA_POM))
KAFKA_STAMP    := $(KAFKA_LIBS)/.kafka-$(KAFKA_VERSION)
KAFKA3_POM     := tests/kafka/kafka-3.9/pom.xml
KAFKA3_LIBS    := build/kafka/libs-3.9
KAFKA3_VERSION := $(shell sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' $(KAFKA3_POM))
KAFKA3_STAMP   := $(KAFKA3_LIBS)/.kafka-$(KAFKA3_VERSION)

.PHONY: kafka kafka-deps

kafka-deps:
	@command -v java >/dev/null && command -v mvn >/dev/null || \
	    $(MAKE) --no-print-directory deps DEB_PKGS="$(KAFKA_DEB_PKGS)"

kafka: kafka-deps
	@$(MAKE) --no-print-directory $(KAFKA_STAMP) $(KAFKA3_STAMP) \
	    $(BIN)/kafka-local

# A new pinned version (a new stamp name) starts from an empty directory, so
# no jar of the old release is left on the class path.
$(KAFKA_STAMP): $(KAFKA_POM)
	rm -rf $(KAFKA_LIBS)
	mvn -q -B -f $(KAFKA_POM) dependency:copy-dependencies \
	    -DoutputDirectory=$(abspath $(KAFKA_LIBS))
	@ls $(KAFKA_LIBS)/kafka_2.13-$(KAFKA_VERSION).jar >/dev/null
	@touch $@

$(KAFKA3_STAMP): $(KAFKA3_POM)
	rm -rf $(KAFKA3_LIBS)
	mvn -q -B -f $(KAFKA3_POM) dependency:copy-dependencies \
	    -DoutputDirectory=$(abspath $(KAFKA3_LIBS))
	@ls $(KAFKA3_LIBS)/kafka_2.13-$(KAFKA3_VERSION).jar >/dev/null
	@touch $@

$(BIN)/kafka-local: tests/kafka/kafka-local
	@mkdir -p $(dir $@)
	install -m 755 $< $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------------------
# helm and kustomize for the tests of the Helm chart (docker/helm/ak2vault)
# and the kustomization (docker/kubernetes), built from source with the Go
# toolchain: neither is a Debian package and CI machines have no kubectl.
# tests/tools/k8s/go.mod pins both (its `tool` lines), go.sum their
# checksums; GOTOOLCHAIN=local builds with the machine's Go and never
# downloads another.
#
#   make k8s-tools   build build/k8s/bin/helm and build/k8s/bin/kustomize
#                    (`make test` and `make test-asan` do it first); only
#                    when they are missing or go.mod / go.sum changed, and
#                    Go's build cache makes a rebuild cheap. Go comes from
#                    PATH, else /usr/local/go/bin/go (GO= another).

GO           ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
K8S_MOD      := tests/tools/k8s
K8S_BIN      := build/k8s/bin
K8S_TOOLS    := $(K8S_BIN)/helm $(K8S_BIN)/kustomize
HELM_VERSION := $(shell sed -n 's:^\s*helm.sh/helm/v3 \(v[^ ]*\).*:\1:p' $(K8S_MOD)/go.mod 2>/dev/null)
# The Kubernetes version helm template and lint assume (their
# .Capabilities.KubeVersion) is that of the client-go helm links, v0.N:
# 1.N. helm's release builds set it the same way.
K8S_MINOR    := $(shell sed -n 's:^\s*k8s.io/client-go v0\.\([0-9]*\)\..*:\1:p' $(K8S_MOD)/go.mod 2>/dev/null)
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
    $(foreach p,pkg/chartutil pkg/lint/rules,\
        -X helm.sh/helm/v3/$(p).k8sVersionMajor=1 \
        -X helm.sh/helm/v3/$(p).k8sVersionMinor=$(K8S_MINOR))

.PHONY: k8s-tools

k8s-tools: $(K8S_TOOLS)

# One `go build` for both: they share most of their packages. Static
# (CGO_ENABLED=0, as helm's own release builds), stripped.
$(K8S_TOOLS) &: $(K8S_MOD)/go.mod $(K8S_MOD)/go.sum
	@test -x "$(GO)" || command -v "$(GO)" >/dev/null || \
	    { echo "make k8s-tools: no Go toolchain (GO=$(GO))"; exit 1; }
	@mkdir -p $(K8S_BIN)
	cd $(K8S_MOD) && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly \
	    $(GO) build -trimpath -ldflags "$(HELM_LDFLAGS)" \
	    -o $(abspath $(K8S_BIN))/ helm.sh/helm/v3/cmd/helm \
	    sigs.k8s.io/kustomize/kustomize/v5
	@touch $(K8S_TOOLS)

# ---------------------------------------------------------------------------
# A Python virtual environment for the checks that need packages from PyPI
# (tests/integration/test_authentik_schema.py: authentik's API client, generated from
# its OpenAPI schema). Nothing is installed into the system; `python3 -m
# venv` needs Debian's python3-venv.
#
#   make venv        create build/venv with /usr/bin/python3 -m venv and
#                    install tests/authentik/requirements.txt into it
#                    (exact versions, --require-hashes); once: the stamp
#                    build/venv/.requirements-SHA (the requirements file's
#                    checksum) skips it after, a changed file starts over
#                    from an empty venv

VENV          := build/venv
VENV_REQS     := tests/authentik/requirements.txt
VENV_REQS_SUM := $(firstword $(shell sha256sum $(VENV_REQS) 2>/dev/null))
VENV_STAMP    := $(VENV)/.requirements-$(VENV_REQS_SUM)

.PHONY: venv

venv: $(VENV_STAMP)

$(VENV_STAMP): $(VENV_REQS)
	rm -rf $(VENV)
	/usr/bin/python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps \
	    -r $(VENV_REQS)
	@touch $@

# ---------------------------------------------------------------------------
# Vault (issue 16): a real Vault dev server and CLI for tests, built from
# source (tests/vault/go.mod pins Vault v1.21.4 and its dependencies).
#
#   make vault       build build/vault/bin/vault (`vault server -dev`, which
#                    tests/vault/vault-local starts, and the CLI that
#                    docker/vault/setup.sh runs); only when it is missing or
#                    go.mod, go.sum or the patch changed, and Go's build
#                    cache makes a rebuild cheap. Go comes from PATH, else
#                    /usr/local/go/bin/go (GO= another). `make test` and
#                    `make test-asan` do it first. On 2 cores the first
#                    build takes about 17 minutes (647 MB of modules from
#                    the Go proxy, 4.5 GB of memory at its peak), a
#                    rebuild with Go's cache warm under half a minute.
#   AKV_VAULT=real   runs an integration suite on it (tests/run-tests.sh
#                    does for REAL_VAULT_SUITES; tests/integration/
#                    test_vault_* start it themselves)
#
# Vault's source is copied from Go's module cache (its checksum compared
# with go.sum's) into build/vault/src and patched there: its nested sdk
# module resolves to the released v0.21.0, which differs from Vault's own
# tree in two signatures (tests/vault/go.mod explains). Its two paths named
# *.d (META.d, .release/linux/package/etc/vault.d: release metadata, no Go)
# are removed, as this Makefile includes every *.d under build/. Static
# (CGO_ENABLED=0), stripped; Vault's web UI is not built in.

VAULT_MOD     := tests/vault
VAULT_DIR     := build/vault
VAULT_BIN     := $(VAULT_DIR)/bin/vault
VAULT_PATCH   := $(VAULT_MOD)/vault-v1.21.4-sdk-v0.21.0.patch
VAULT_VERSION := $(shell sed -n 's:^\s*github.com/hashicorp/vault \(v[^ ]*\).*:\1:p' $(VAULT_MOD)/go.mod 2>/dev/null)

.PHONY: vault

vault: $(VAULT_BIN)

$(VAULT_BIN): $(VAULT_MOD)/go.mod $(VAULT_MOD)/go.sum $(VAULT_PATCH)
	@test -x "$(GO)" || command -v "$(GO)" >/dev/null || \
	    { echo "make vault: no Go toolchain (GO=$(GO))"; exit 1; }
	@mkdir -p $(VAULT_DIR)/bin
	rm -rf $(VAULT_DIR)/src $(VAULT_DIR)/src.json
	cd $(VAULT_MOD) && GOTOOLCHAIN=local GOFLAGS=-mod=readonly $(GO) mod download \
	    -json github.com/hashicorp/vault@$(VAULT_VERSION) \
	    >$(abspath $(VAULT_DIR))/src.json
	@sum=$$(sed -n 's|^\s*"Sum": "\(.*\)",$$|\1|p' $(VAULT_DIR)/src.json); \
	grep -qxF "github.com/hashicorp/vault $(VAULT_VERSION) $$sum" \
	    $(VAULT_MOD)/go.sum || \
	    { echo "make vault: Vault's source does not match go.sum"; exit 1; }
	cp -R "$$(sed -n 's|^\s*"Dir": "\(.*\)",$$|\1|p' $(VAULT_DIR)/src.json)" \
	    $(VAULT_DIR)/src
	chmod -R u+w $(VAULT_DIR)/src
	find $(VAULT_DIR)/src -name '*.d' -prune -exec rm -rf {} +
	patch -d $(VAULT_DIR)/src -p1 --no-backup-if-mismatch <$(VAULT_PATCH)
	cd $(VAULT_MOD) && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly \
	    $(GO) build -trimpath -ldflags "-s -w" \
	    -o $(abspath $(VAULT_BIN)) github.com/hashicorp/vault
	@touch $(VAULT_BIN)

# ---------------------------------------------------------------------------
# The container image (docker/Dockerfile), built with podman on a Debian
# base made here: no registry is needed.
#
#   make image       install podman, runc and debootstrap if missing
#                    (IMAGE_DEB_PKGS), make the base the Dockerfile's FROM
#                    names with docker/image/debian-base (debootstrap from
#                    the Debian mirror this machine's apt uses, DEBIAN_MIRROR=
#                    another) into build/image/ once, import it into podman
#                    when podman lacks it, then `podman build` the image as
#                    $(IMAGE):$(VERSION) and $(IMAGE):latest, with the
#                    version, commit and build time as build arguments (OCI
#                    labels; `ak2vault version`). Needs root. The build uses
#                    the host's network (apt reaches the mirror as apt does
#                    here) and podman's layer cache: a rebuild after a
#                    change to the C code recompiles, nothing more.
#   PODMAN_CONF=     podman's own configuration instead of
#                    docker/image/containers.conf (which sets runc and no
#                    default ulimits; it says why)
#   `make test` runs `make image` where podman works (image-if-podman,
#   below); tests/integration/test_image.py and test_image_manifests.py
#   run the image (and say why they skip where podman does not work).

# The same as in DEB_PKGS, for `make image` alone.
IMAGE_DEB_PKGS := podman runc debootstrap
IMAGE          ?= localhost/ak2vault
IMAGE_DIR      := build/image
IMAGE_FROM     := $(shell sed -n 's/^FROM[[:space:]]\+\([^[:space:]]*\).*/\1/p' docker/Dockerfile | sort -u)
IMAGE_SUITE    := $(firstword $(subst -, ,$(lastword $(subst :, ,$(IMAGE_FROM)))))
IMAGE_BASE_TAR := $(IMAGE_DIR)/$(subst :,-,$(subst /,-,$(IMAGE_FROM))).tar
PODMAN_CONF    ?= $(abspath docker/image/containers.conf)
PODMAN         := $(if $(PODMAN_CONF),CONTAINERS_CONF=$(PODMAN_CONF)) podman
DEBIAN_MIRROR  ?=

.PHONY: image image-deps image-if-podman

image-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(IMAGE_DEB_PKGS)"

$(IMAGE_BASE_TAR): docker/image/debian-base
	@test $(words $(IMAGE_FROM)) = 1 || \
	    { echo "make image: the Dockerfile's stages start FROM" \
	      "'$(IMAGE_FROM)', not one base"; exit 1; }
	@mkdir -p $(IMAGE_DIR)
	docker/image/debian-base $(IMAGE_SUITE) $@ $(DEBIAN_MIRROR)

# The base is imported again when podman lacks it or it is older than the
# archive (the archive was made again).
image: image-deps
	@$(MAKE) --no-print-directory $(IMAGE_BASE_TAR)
	@id=$$($(PODMAN) image inspect --format '{{.Id}}' $(IMAGE_FROM) \
	        2>/dev/null); \
	if [ -z "$$id" ] || [ $(IMAGE_BASE_TAR) -nt $(IMAGE_DIR)/base.imported ]; \
	then \
	    echo "podman import $(IMAGE_BASE_TAR) $(IMAGE_FROM)"; \
	    $(PODMAN) import --quiet --change 'CMD ["bash"]' \
	        $(IMAGE_BASE_TAR) $(IMAGE_FROM) >/dev/null && \
	    touch $(IMAGE_DIR)/base.imported || exit 1; \
	fi
	$(PODMAN) build --pull=never --network host --format docker \
	    --build-arg AK2VAULT_VERSION=$(VERSION) \
	    --build-arg AK2VAULT_REVISION=$$(git rev-parse HEAD 2>/dev/null) \
	    --build-arg AK2VAULT_CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
	    -f docker/Dockerfile -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .
	@$(PODMAN) image inspect --format \
	    '$(IMAGE):$(VERSION) {{.Id}}: {{.Size}} bytes' $(IMAGE):$(VERSION)

# For `make test`: the image when podman works here (root, `podman info`
# answers), its output in build/image/build.log (the end of it shown when
# the build fails); else a line saying why test_image will skip.
image-if-podman:
	@if [ "$$(id -u)" != 0 ]; then \
	    echo "make: no image: not root (test_image skips)"; \
	elif ! command -v podman >/dev/null || \
	     ! $(PODMAN) info >/dev/null 2>&1; then \
	    echo "make: no image: podman does not work here (test_image skips)"; \
	else \
	    mkdir -p $(IMAGE_DIR); \
	    echo "make image >$(IMAGE_DIR)/build.log"; \
	    $(MAKE) --no-print-directory image >$(IMAGE_DIR)/build.log 2>&1 || \
	    { tail -n 40 $(IMAGE_DIR)/build.log; exit 1; }; \
	    tail -n 1 $(IMAGE_DIR)/build.log; \
	fi
