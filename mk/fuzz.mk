# mk/fuzz.mk - libFuzzer targets (clang only): the job protocol parser, the
# scheduler (its randomised test driven by the fuzzer's bytes) and the agent
# protocol's messages.
#
#   make fuzz        build $(FUZZ_BUILD)/fuzz_protocol, fuzz_sched and
#                    fuzz_agentwire
#   make fuzz-run    run fuzz_protocol for FUZZ_TIME seconds (default 60) from
#                    a seed corpus: examples/, the negative fixtures and the
#                    OpenPAI job corpus (tests/data/openpai-jobs); then
#                    fuzz_sched for FUZZ_SCHED_TIME seconds (default 45) from
#                    an empty corpus (any bytes are a valid input); then
#                    fuzz_agentwire for FUZZ_WIRE_TIME seconds (default 30)
#                    from fuzz/agentwire/ (requests and answers of every
#                    version, a version 3 delta among them)
# The library is rebuilt into its own folder with clang and
# -fsanitize=fuzzer-no-link,address,undefined; a crash, leak or abort fails
# the target and leaves crash-* / leak-* files in the current directory.

FUZZ_BUILD ?= build-fuzz
FUZZ_TIME  ?= 60
FUZZ_SCHED_TIME ?= 45
FUZZ_WIRE_TIME ?= 30
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer

.PHONY: fuzz fuzz-run fuzz-lib
fuzz-lib:
	$(MAKE) -j2 CC=clang BUILD=$(FUZZ_BUILD) SAN= OPT="-O1 -g $(FUZZ_FLAGS)" $(FUZZ_BUILD)/libpai.a

# each target is fuzz/fuzz_<name>.c (its entry points: fuzz/fuzz_entry.h)
FUZZ_TARGETS := protocol sched agentwire

fuzz: fuzz-lib
	@mkdir -p $(FUZZ_BUILD)
	for t in $(FUZZ_TARGETS); do \
	  clang -std=c11 -D_GNU_SOURCE -O1 -g $(FUZZ_FLAGS) -fsanitize=fuzzer -Isrc $(PKG_CFLAGS) \
	    fuzz/fuzz_$$t.c $(FUZZ_BUILD)/libpai.a $(filter-out $(ALLOC_LIBS),$(LDLIBS)) -o $(FUZZ_BUILD)/fuzz_$$t || exit 1; \
	done

fuzz-run: fuzz
	rm -rf $(FUZZ_BUILD)/corpus && mkdir -p $(FUZZ_BUILD)/corpus
	cp examples/*.yaml tests/protocol/bad/*.yaml tests/data/openpai-jobs/* $(FUZZ_BUILD)/corpus/
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_BUILD)/fuzz_protocol -max_total_time=$(FUZZ_TIME) \
	  -max_len=65536 -timeout=10 -rss_limit_mb=2048 -dict=fuzz/protocol.dict \
	  -print_final_stats=1 $(FUZZ_BUILD)/corpus
	rm -rf $(FUZZ_BUILD)/corpus-sched && mkdir -p $(FUZZ_BUILD)/corpus-sched
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_BUILD)/fuzz_sched -max_total_time=$(FUZZ_SCHED_TIME) \
	  -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $(FUZZ_BUILD)/corpus-sched
	rm -rf $(FUZZ_BUILD)/corpus-wire && mkdir -p $(FUZZ_BUILD)/corpus-wire
	cp fuzz/agentwire/* $(FUZZ_BUILD)/corpus-wire/
	ASAN_OPTIONS=detect_leaks=1 $(FUZZ_BUILD)/fuzz_agentwire -max_total_time=$(FUZZ_WIRE_TIME) \
	  -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $(FUZZ_BUILD)/corpus-wire
