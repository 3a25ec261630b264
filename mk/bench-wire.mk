# mk/bench-wire.mk - what one agent sync answer costs the server (encode)
# and the agent (parse), a node's whole desired set (version 2) against a
# delta (version 3), a request's description whole or named (version 4),
# and a task's env as variables or as its job's placement (version 5), in
# process (figures in docs/benchmarks-history.md, "The sync
# answer as a delta" and "The agents' share, sixth round"):
#   make bench-wire   T = 8 and 64 attempts on the node
# The binary is built by the bench/%.c rule of mk/bench-store.mk.

.PHONY: bench-wire
all: $(BUILD)/bench/wire

bench-wire: $(BUILD)/bench/wire
	$(BUILD)/bench/wire
