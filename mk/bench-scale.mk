# mk/bench-scale.mk - a big hollow cluster and a submission storm on SQLite
# and on PostgreSQL (bench/scale.py; docs/benchmarks.md, section "Scale"):
#   make bench-scale                    2,000 nodes x 8 GPUs, 20,000 jobs, 50 clients
#   make bench-scale ARGS="--nodes 10000 --procs 10 --jobs 100000"   (the issue's size)
.PHONY: bench-scale
bench-scale: $(BUILD)/pai
	PAI_BIN=$(abspath $(BUILD)/pai) python3 bench/scale.py $(ARGS)
