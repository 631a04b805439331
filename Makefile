# certsync: one entry point for building and testing every component.
#
#   make            build libcertsync (static + shared), the certsync CLI, unit tests
#   make test       install Debian packages if missing, build, run every test
#   make demo       install, build, run the local-CA demo
#   make bench      run the benchmarks (not tests)
#   make fuzz       build the libFuzzer targets (clang) into out/fuzz/; make fuzz-run runs them
#   make install    build, then install with Debian's paths (PREFIX=/usr, DESTDIR=); make uninstall
#   make man        the man pages (doc/*.scd, scdoc) into out/man/
#   make deb        the Debian packages (debian/, dpkg-buildpackage) into out/deb/
#
# Objects go to out/ (out/asan/ for the ASan + UBSan build of the unit tests).

O        ?= out
CC       ?= cc
PKGS     := openssl jansson inih libcurl
CFLAGS   ?= -O2 -g
# CFLAGS is the user's (make CFLAGS=...); what the code needs is always added
CS_CFLAGS := -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 \
            -fPIC -Icommon/include $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS     := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TESTLIBS := $(LIBS) $(shell pkg-config --libs cmocka 2>/dev/null)

LIB_SRCS  := $(sort $(wildcard common/lib/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(O)/%.o)
CLI_SRCS  := $(sort $(wildcard common/cli/*.c))
CLI_OBJS  := $(CLI_SRCS:%.c=$(O)/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/%)
UNIT_HELP := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))
BENCH_BINS := $(O)/bench/bench_convert $(O)/bench/bench_staple
TOMCAT_BIN := $(O)/certsync-tomcat

.SECONDARY:

.PHONY: all lib cli tomcat modules unit deps test test-unit test-asan test-interop sdk-deps demo bench format \
        format-check clean install uninstall man deb

all: lib cli tomcat unit $(BENCH_BINS) modules

lib: $(O)/libcertsync.a
cli: $(O)/certsync
tomcat: $(TOMCAT_BIN)
unit: $(UNIT_BINS)

$(O)/%.o: %.c $(wildcard common/include/*.h common/lib/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CS_CFLAGS) -c $< -o $@

$(O)/libcertsync.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(O)/certsync: $(CLI_OBJS) $(O)/libcertsync.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJS) $(O)/libcertsync.a $(LIBS)

# the helper parses its options with the CLI's option table (common/cli/cli_opt.c) and logs
# for the journal as the CLI does (common/cli/cli_log.c)
$(O)/tomcat-helper/certsync-tomcat.o: CS_CFLAGS += -Icommon/cli
# the unit tests reach the core's private headers (common/lib); nothing else does
$(O)/tests/unit/%.o: CS_CFLAGS += -Icommon/lib
$(O)/tomcat-helper/certsync-tomcat.o: common/cli/cli_opt.h common/cli/cli_log.h
$(TOMCAT_BIN): $(O)/tomcat-helper/certsync-tomcat.o $(O)/common/cli/cli_opt.o \
    $(O)/common/cli/cli_log.o $(O)/libcertsync.a
	$(CC) $(CFLAGS) -o $@ $< $(O)/common/cli/cli_opt.o $(O)/common/cli/cli_log.o \
	    $(O)/libcertsync.a $(LIBS) \
	    $(shell pkg-config --libs libcurl)

$(O)/tests/%: $(O)/tests/unit/%.o $(UNIT_HELP:%.c=$(O)/%.o) $(O)/libcertsync.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(UNIT_HELP:%.c=$(O)/%.o) $(O)/libcertsync.a $(TESTLIBS)

$(O)/bench/bench_convert: $(O)/bench/bench_convert.o $(O)/libcertsync.a
	$(CC) $(CFLAGS) -o $@ $< $(O)/libcertsync.a $(LIBS)

$(O)/bench/bench_staple: $(O)/bench/bench_staple.o
	$(CC) $(CFLAGS) -o $@ $< -lssl -lcrypto -lpthread

# Server modules add their own rules, `all`/`test` prerequisites, packages and install paths
# (INSTALL_ENV) here.
MODULE_ALL :=
MODULE_TESTS :=

# make install: Debian's paths by default; build/install.sh does the work and records
# what it added, which is what make uninstall removes
PREFIX      ?= /usr
DESTDIR     ?=
SYSCONFDIR  ?= /etc
STATEDIR    ?= /var/lib/certsync
STORE_GROUP ?= www-data
SYSTEMD_UNITDIR ?= /lib/systemd/system
INSTALL_ENV  = O=$(O) DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) SYSCONFDIR=$(SYSCONFDIR) \
               STATEDIR=$(STATEDIR) STORE_GROUP=$(STORE_GROUP) SYSTEMD_UNITDIR=$(SYSTEMD_UNITDIR)
-include nginx-module/module.mk apache-module/module.mk
include tests/fuzz/fuzz.mk
include doc/man.mk

deps:
	@bash build/install-deps.sh

install: cli tomcat modules man
	@$(INSTALL_ENV) bash build/install.sh install

# the packages are built in a copy of the tree ($(O)/deb-build), which stays as it is
deb:
	@O=$(O) bash build/deb.sh

uninstall:
	@$(INSTALL_ENV) bash build/install.sh uninstall

# Unit tests run from a scratch directory; each binary prints cmocka's summary.
test-unit: unit
	@bash tests/run-unit.sh $(UNIT_BINS)

test-asan:
	$(MAKE) O=out/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	        -fno-sanitize-recover=undefined" unit
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    bash tests/run-unit.sh $(UNIT_BINS:$(O)/%=out/asan/%)

modules: $(MODULE_ALL)

# The official SDK (tests/sdk) pinned by its package-lock.json: the reference client of
# tests/interop/test_sdk_conformance.py. npm ci without install scripts.
sdk-deps: tests/sdk/node_modules/.package-lock.json

tests/sdk/node_modules/.package-lock.json: tests/sdk/package.json tests/sdk/package-lock.json
	cd tests/sdk && npm ci --ignore-scripts --no-audit --no-fund

test-interop: cli tomcat modules sdk-deps
	@CERTSYNC=$(abspath $(O)/certsync) CERTSYNC_TOMCAT=$(abspath $(TOMCAT_BIN)) /usr/bin/python3 -m pytest -q tests/interop

test: deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory fuzz-run
	$(MAKE) --no-print-directory test-interop

demo: deps
	$(MAKE) --no-print-directory cli tomcat modules
	@bash build/demo.sh $(abspath $(O)/certsync) $(abspath $(TOMCAT_BIN))

bench: deps
	$(MAKE) --no-print-directory cli tomcat $(BENCH_BINS)
	@bash bench/convert
	@/usr/bin/python3 bench/tomcat
	@/usr/bin/python3 bench/sync
	@/usr/bin/python3 bench/apache
	@/usr/bin/python3 bench/apache-ocsp
	@/usr/bin/python3 bench/nginx
	@/usr/bin/python3 bench/acme
	@/usr/bin/python3 bench/nginx-ocsp

# Every C file but nginx-module/, which keeps nginx's own style (as nginx's modules do).
FORMAT_FILES = $(wildcard common/include/*.h common/lib/*.[ch] common/cli/*.[ch] tests/unit/*.[ch] \
                 bench/*.c tomcat-helper/*.c apache-module/*.[ch] tests/fuzz/*.[ch])

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run -Werror $(FORMAT_FILES) && echo "clang-format: $(words $(FORMAT_FILES)) files clean"

clean:
	rm -rf $(O) out
