# mk/bench-e2e.mk - end-to-end short-job throughput and dispatch latency,
# with the machine's bare-start baseline measured in the same run
# (16 agents x 8 simulated GPUs, process runtime; docs/benchmarks.md).
#   make bench-e2e            JOBS=2000 NODES=16 GPUS=8 RUNTIME=process MIX=mix RATE=0
# PAI_BIN (another build's pai, to compare builds), PAI_AGENT_BIN and
# SUBMIT_BIN are passed through when given; else this build's.
# Its load generator, build/bench/submit (bench/submit.c), is built by the
# bench/%.c rule of mk/bench-store.mk; CLIENT=python uses the Python one.
.PHONY: bench bench-e2e
bench: bench-e2e
all: $(BUILD)/bench/submit
bench-e2e: $(BUILD)/pai $(BUILD)/bench/submit
	PAI_BIN=$(or $(PAI_BIN),$(abspath $(BUILD)/pai)) \
	SUBMIT_BIN=$(or $(SUBMIT_BIN),$(abspath $(BUILD)/bench/submit)) python3 bench/e2e.py
