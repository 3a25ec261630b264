# bench-cli: what a CLI user waits for (pai up, submit+wait, jobs); see docs/benchmarks.md.
.PHONY: bench-cli
bench-cli: $(BUILD)/pai
	PAI_BIN=$(abspath $(BUILD)/pai) python3 bench/cli.py
