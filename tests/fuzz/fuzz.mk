# libFuzzer targets (tests/fuzz/fuzz_<target>.c), included by the Makefile.
#
#   make fuzz       build out/fuzz/fuzz_<target> with clang: libFuzzer + ASan + UBSan
#   make fuzz-run   run each for FUZZ_SECONDS (default 60) on a copy of its seed corpus
#
# The library is compiled again with clang into out/fuzz/ (instrumented for
# coverage and the sanitizers); gcc's objects in out/ are never reused.

FUZZ_CC     ?= clang
FUZZ_O      := $(O)/fuzz
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(filter-out tests/fuzz/fuzz_util.c, \
                 $(sort $(wildcard tests/fuzz/fuzz_*.c))))
FUZZ_BINS   := $(FUZZ_NAMES:%=$(FUZZ_O)/fuzz_%)
FUZZ_OBJS   := $(LIB_SRCS:%.c=$(FUZZ_O)/%.o) $(FUZZ_O)/tests/fuzz/fuzz_util.o

.PHONY: fuzz fuzz-run

fuzz: $(FUZZ_BINS)

$(FUZZ_O)/%.o: %.c $(wildcard common/include/*.h common/lib/*.h tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(CS_CFLAGS) -Icommon/lib -Itests/fuzz -c $< -o $@

$(FUZZ_O)/fuzz_%: $(FUZZ_O)/tests/fuzz/fuzz_%.o $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz-run: fuzz
	@bash tests/fuzz/run.sh $(FUZZ_O) $(FUZZ_NAMES)
