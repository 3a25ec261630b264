# mk/bench-storereplay.mk - the store's CPU per job for a bench-e2e burst's
# writes, one thread, without the rest of the server (figures in
# docs/benchmarks-history.md, "The server's share, twelfth round"):
#   make bench-storereplay   (JOBS=3000 jobs a round, ROUNDS=8; ALT=NAME=VALUE
#                             sets NAME in the odd rounds' environment, ABBA)
# The binary is built by the bench/%.c rule of mk/bench-store.mk.

.PHONY: bench-storereplay
all: $(BUILD)/bench/storereplay

bench-storereplay: $(BUILD)/bench/storereplay
	STOREREPLAY_ALT="$(ALT)" $(BUILD)/bench/storereplay --jobs $(or $(JOBS),3000) \
		--rounds $(or $(ROUNDS),8)
