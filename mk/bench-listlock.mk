# mk/bench-listlock.mk - how long a job list holds the engine lock, in
# process (figures in docs/benchmarks-history.md, section "Scale"):
#   make bench-listlock   100,000 jobs; lists of 50,000, 5,000 and 50; then
#                         the metrics history's read at 10,000 nodes
# The binary is built by the bench/%.c rule of mk/bench-store.mk.

.PHONY: bench-listlock
all: $(BUILD)/bench/listlock

bench-listlock: $(BUILD)/bench/listlock
	$(BUILD)/bench/listlock --jobs 100000
	$(BUILD)/bench/listlock --jobs 100000 --nodes 10000
