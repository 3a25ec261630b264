# mk/bench-task.mk - what one task costs on the node (the agent's files, the
# monitor, cgroup, identity drop) against N bare `bash -c true` started at
# the same parallelism in the same run (docs/benchmarks.md, "The node side alone").
#   make bench-task           TASKS=1000 PAR=16
TASKS ?= 1000
PAR   ?= 16
all: $(BUILD)/bench/task

.PHONY: bench bench-task
bench: bench-task
bench-task: $(BUILD)/bench/task
	$(BUILD)/bench/task --tasks $(TASKS) --par $(PAR)
