# mk/bench-agent.mk - what the agent's metrics cost: a sample (every 5 s) and
# a scrape, with 8 and 64 running attempts on 8 GPUs (docs/benchmarks.md).
#   make bench-agent    build $(BUILD)/bench/agent and run it

.PHONY: bench bench-agent
bench: bench-agent
all: $(BUILD)/bench/agent

$(BUILD)/bench/agent: $(BUILD)/bench/agent.o $(BUILD)/libpai.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench-agent: $(BUILD)/bench/agent
	$(BUILD)/bench/agent
