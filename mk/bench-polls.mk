# mk/bench-polls.mk - what held agent long-polls cost the server (threads,
# memory, CPU, API latency meanwhile; docs/benchmarks.md).
#   make bench-polls          NODES=5000 PROCS=10 SECONDS=20
.PHONY: bench-polls
bench-polls: $(BUILD)/pai
	PAI_BIN=$(abspath $(BUILD)/pai) python3 bench/polls.py
