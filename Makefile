# cinemon — build, test, demo.  See README.md.
#   make deps    install every missing Debian package (idempotent, quiet when all present)
#   make         build libcinemon.a, cinemon-agent, cinemon-collector into $(B)/
#   make test    build and run every test (unit, end-to-end) on the plain and the ASan/UBSan build
#   make asan    build everything under AddressSanitizer + UBSan into build-asan/ and run the suite
#   make test-faults  the fault suite (kills, outages, full disk, corruption) three times
#   make bench   benchmarks: figures and ratios, never timed tests
#   make fuzz    every libFuzzer target for FUZZ_SECONDS (default 60) each
#   make demo    start snmpsim/snmpd, a collector on SQLite and an agent; print the URLs
#   make install PREFIX=/usr/local DESTDIR=   install binaries, profiles and example configs
#   make fmt     clang-format every C file

PREFIX  ?= /usr/local
DESTDIR ?=
B       ?= build
SAN     ?=
PYTHON  ?= /usr/bin/python3
VERSION ?= 0.1.0

DEB_PKGS := gcc make pkg-config python3 snmpd snmp snmpsim libsnmp-dev libjansson-dev \
	libuv1-dev libmicrohttpd-dev libcurl4-openssl-dev libinih-dev libcmocka-dev \
	libsqlite3-dev zlib1g-dev libssl-dev libpq-dev postgresql clang-format curl snmptrapd nginx \
	chromium fonts-wqy-microhei

# Only `make bench` needs these: the peers the polling benchmark measures against
# (collectd-core ships collectd and its snmp plugin; no service starts without
# /etc/collectd/collectd.conf, which only the `collectd` package installs).
BENCH_PKGS := prometheus-snmp-exporter collectd-core
# ... and the peers of the ingest benchmark (bench/ingest_bench.py).
BENCH_PKGS += influxdb prometheus

# Only `make fuzz` needs these (libFuzzer comes with clang's runtime).
FUZZ_PKGS := clang libclang-rt-14-dev
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

PKGS := netsnmp jansson libuv libcurl libmicrohttpd sqlite3 inih zlib libcrypto libpq

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wno-missing-field-initializers -I. -Icommon -MMD -MP \
	-DCINEMON_VERSION='"$(VERSION)"' -DCINEMON_PROFILES_DIR='"$(PREFIX)/share/cinemon/profiles"' \
	-DCINEMON_RULES_DIR='"$(PREFIX)/share/cinemon/rules"' \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
ifeq ($(SAN),1)
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

COMMON_SRC    := $(wildcard common/*.c)
AGENT_SRC     := $(filter-out agent/main.c,$(wildcard agent/*.c))
COLLECTOR_SRC := $(filter-out collector/main.c,$(wildcard collector/*.c))
UNIT_SRC      := $(wildcard tests/unit/test_*.c)
BENCH_SRC     := $(wildcard bench/*.c)
SIM_SRC       := $(wildcard sim/*.c)

COMMON_OBJ    := $(COMMON_SRC:%.c=$(B)/%.o)
AGENT_OBJ     := $(AGENT_SRC:%.c=$(B)/%.o)
COLLECTOR_OBJ := $(COLLECTOR_SRC:%.c=$(B)/%.o) $(B)/collector/webassets.o
WEB_FILES     := $(sort $(wildcard collector/web/*))
UNIT_BIN      := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_BIN     := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
SIM_OBJ       := $(filter-out $(B)/sim/main.o,$(SIM_SRC:%.c=$(B)/%.o))

LIBCM   := $(B)/libcinemon.a
LIBAG   := $(B)/libagent.a
LIBCO   := $(B)/libcollector.a
LIBSIM  := $(B)/libsim.a
BINS    := $(B)/cinemon-agent $(B)/cinemon-collector

.PHONY: all deps test test-unit test-faults asan bench bench-dashboard bench-ingest bench-poll bench-report fuzz demo demo-stop install clean fmt
all: $(BINS) $(B)/cinemon-sim $(UNIT_BIN) $(BENCH_BIN)

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { echo "deps: apt-get install failed for:$$missing" >&2; exit 1; }; \
	fi

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The dashboard (collector/web/*) embedded as byte arrays by the build tool tools/embed.c.
$(B)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -o $@ $<
$(B)/collector/webassets.c: $(B)/tools/embed $(WEB_FILES) collector/web
	@mkdir -p $(dir $@)
	$(B)/tools/embed $@ $(WEB_FILES)
$(B)/collector/webassets.o: $(B)/collector/webassets.c
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBCM): $(COMMON_OBJ)
	@rm -f $@; $(AR) rcs $@ $^
$(LIBAG): $(AGENT_OBJ)
	@rm -f $@; $(AR) rcs $@ $^
$(LIBCO): $(COLLECTOR_OBJ)
	@rm -f $@; $(AR) rcs $@ $^
$(LIBSIM): $(SIM_OBJ)
	@rm -f $@; $(AR) rcs $@ $^

$(B)/cinemon-agent: $(B)/agent/main.o $(LIBAG) $(LIBCM)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# the collector forwards upstream with the agent's uploader (collector/forward.c)
$(B)/cinemon-collector: $(B)/collector/main.o $(LIBCO) $(LIBAG) $(LIBCM)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/cinemon-sim: $(B)/sim/main.o $(LIBSIM) $(LIBCM)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/tests/%: $(B)/tests/unit/%.o $(LIBCO) $(LIBAG) $(LIBSIM) $(LIBCM)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(B)/bench/%: $(B)/bench/%.o $(LIBCO) $(LIBAG) $(LIBCM)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The whole suite: the plain build, then the same suite under ASan + UBSan.
test: deps
	@$(MAKE) --no-print-directory all >/dev/null
	@$(MAKE) --no-print-directory B=build-asan SAN=1 all >/dev/null
	@$(PYTHON) tests/run.py --build $(B) --asan-build build-asan

test-unit: deps all
	@$(PYTHON) tests/run.py --build $(B) --only unit

# The fault suite of the delivery guarantee, three times in a row.
test-faults: deps
	@$(MAKE) --no-print-directory all >/dev/null
	@$(PYTHON) tests/run.py --build $(B) --only faults --repeat 3

# Benchmarks print figures; they are never timed tests. Each Python benchmark also writes its
# figures to $(BENCH_OUT)/<name>.json (format: bench/report.py), and bench/report.py prints
# them last as one table with the machine and every ratio (also kept in $(BENCH_OUT)/report.md),
# even when a benchmark failed (then `make bench` fails after the table).
# bench/ingest_bench.py: ingest against InfluxDB and Prometheus; bench/poll_bench.py: polling
# 1000 SNMP devices against prometheus-snmp-exporter, collectd and net-snmp's tools;
# bench/dashboard_bench.py: the dashboard's API and pages.
BENCH_OUT := $(B)/bench-results
BENCH_JSON := $(BENCH_OUT)/ingest.json $(BENCH_OUT)/poll.json $(BENCH_OUT)/dashboard.json
bench: deps
	@$(MAKE) --no-print-directory DEB_PKGS="$(BENCH_PKGS)" deps
	@$(MAKE) --no-print-directory all >/dev/null
	@rm -f $(BENCH_JSON); mkdir -p $(BENCH_OUT)
	@for b in $(filter %_bench,$(BENCH_BIN)); do echo "== $$b"; $$b || exit 1; done
	@st=0; \
	echo "== bench/ingest_bench.py"; $(PYTHON) bench/ingest_bench.py --build $(B) --json $(BENCH_OUT)/ingest.json || st=1; \
	echo "== bench/poll_bench.py"; $(PYTHON) bench/poll_bench.py --build $(B) --json $(BENCH_OUT)/poll.json || st=1; \
	echo "== bench/dashboard_bench.py"; $(PYTHON) bench/dashboard_bench.py --build $(B) --json $(BENCH_OUT)/dashboard.json || st=1; \
	echo "== bench/report.py"; $(PYTHON) bench/report.py --out $(BENCH_OUT)/report.md $(BENCH_JSON) || st=1; \
	exit $$st

# The table of whatever $(BENCH_OUT) holds (after bench-ingest, bench-poll, bench-dashboard).
bench-report:
	@$(PYTHON) bench/report.py --out $(BENCH_OUT)/report.md $(wildcard $(BENCH_JSON))

# Only the polling benchmark (see docs/performance.md). POLL_ARGS=--quick: a smoke test.
bench-poll: deps
	@$(MAKE) --no-print-directory DEB_PKGS="$(BENCH_PKGS)" deps
	@$(MAKE) --no-print-directory all >/dev/null
	@mkdir -p $(BENCH_OUT)
	@$(PYTHON) bench/poll_bench.py --build $(B) --json $(BENCH_OUT)/poll.json $(POLL_ARGS)

# Only the dashboard benchmark (SQLite with 10,000 screens and a year of hourly roll-ups, then
# PostgreSQL with 90,000 screens; see docs/performance.md).
bench-dashboard: deps
	@$(MAKE) --no-print-directory all >/dev/null
	@mkdir -p $(BENCH_OUT)
	@$(PYTHON) bench/dashboard_bench.py --build $(B) --json $(BENCH_OUT)/dashboard.json

# Only the ingest benchmark (cinemon on SQLite and PostgreSQL against InfluxDB and Prometheus,
# stores preloaded with 20 M samples; see docs/performance.md). INGEST_ARGS=--quick: a smoke test.
bench-ingest: deps
	@$(MAKE) --no-print-directory DEB_PKGS="$(BENCH_PKGS)" deps
	@$(MAKE) --no-print-directory all >/dev/null
	@mkdir -p $(BENCH_OUT)
	@$(PYTHON) bench/ingest_bench.py --build $(B) --json $(BENCH_OUT)/ingest.json $(INGEST_ARGS)

# Every tests/fuzz/fuzz_*.c is a libFuzzer target over one parser of outside input; each runs
# FUZZ_SECONDS (default 60) and stops at the first crash, leak or sanitizer report.
# A target names the sources it needs on a line "// fuzz-sources: a.c b.c", and may name seed
# inputs for its corpus on a line "// fuzz-seeds: dir/*.json".
fuzz: deps
	@$(MAKE) --no-print-directory DEB_PKGS="$(FUZZ_PKGS)" deps
	@mkdir -p build-fuzz
	@set -e; for f in $(FUZZ_SRC); do \
	  n=$$(basename $$f .c); \
	  srcs=$$(sed -n 's|^// fuzz-sources:||p' $$f); \
	  clang -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined \
	    -I. -Icommon -Iagent -Icollector -Isim $$f $$srcs -o build-fuzz/$$n $(LDLIBS); \
	  mkdir -p build-fuzz/$$n.corpus; \
	  for seed in $$(sed -n 's|^// fuzz-seeds:||p' $$f); do cp $$seed build-fuzz/$$n.corpus/; done; \
	  echo "== $$n ($(FUZZ_SECONDS) s)"; \
	  build-fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-fuzz/$$n.corpus \
	    >build-fuzz/$$n.log 2>&1 || { tail -40 build-fuzz/$$n.log; echo "fuzz: $$n failed"; exit 1; }; \
	  tail -4 build-fuzz/$$n.log; \
	done

asan: deps
	@$(MAKE) --no-print-directory B=build-asan SAN=1 all >/dev/null
	@$(PYTHON) tests/run.py --build build-asan

demo: deps all
	@$(PYTHON) tests/demo.py --build $(B)

demo-stop:
	@$(PYTHON) tests/demo.py --stop

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/cinemon/profiles $(DESTDIR)$(PREFIX)/share/cinemon/examples \
	  $(DESTDIR)$(PREFIX)/share/cinemon/rules
	install -m 755 $(BINS) $(B)/cinemon-sim $(DESTDIR)$(PREFIX)/bin/
	install -m 644 profiles/*.json $(DESTDIR)$(PREFIX)/share/cinemon/profiles/
	install -m 644 collector/rules/*.json $(DESTDIR)$(PREFIX)/share/cinemon/rules/
	install -m 644 etc/*.ini $(DESTDIR)$(PREFIX)/share/cinemon/examples/

fmt:
	clang-format -i $(wildcard common/*.[ch] agent/*.[ch] collector/*.[ch] sim/*.[ch] tests/unit/*.[ch])

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(B) -name '*.d' 2>/dev/null)
