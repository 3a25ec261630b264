# mk/bench-curlsync.mk - what one agent sync costs in libcurl on the agent's
# side, the URL as text at every sync against parsed once (figures in
# docs/benchmarks-history.md, "The agents' sync, eleventh round"):
#   make bench-curlsync   (N=4000 syncs a round, ROUNDS=6)
# The binary is built by the bench/%.c rule of mk/bench-store.mk.

.PHONY: bench-curlsync
all: $(BUILD)/bench/curlsync

bench-curlsync: $(BUILD)/bench/curlsync
	$(BUILD)/bench/curlsync
