# mk/bench-sched.mk - scheduler decision latency and memory (docs/benchmarks.md, "Scheduler").
#   make bench-sched    build $(BUILD)/bench/sched and run it (1,000 and 10,000 nodes)
# The whole-Philly replays are `pai sim` runs, listed in docs/benchmarks.md.

.PHONY: bench bench-sched
bench: bench-sched
all: $(BUILD)/bench/sched

$(BUILD)/bench/sched: $(BUILD)/bench/sched.o $(BUILD)/libpai.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench-sched: $(BUILD)/bench/sched
	$(BUILD)/bench/sched
