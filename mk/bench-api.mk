# mk/bench-api.mk - the job API under load (figures in docs/benchmarks.md,
# section "Job API"):
#   make bench-api   durable submissions/s (1 and 16 clients), job-detail
#                    GETs/s, listing 10,000 jobs, server RSS with 100,000 jobs
#   make bench-api STORE=postgres://...   the same on PostgreSQL (an empty
#                    database; scripts/pg-test-cluster.sh starts a private one)
# The binary is built by the bench/%.c rule of mk/bench-store.mk.

.PHONY: bench bench-api
bench: bench-api
all: $(BUILD)/bench/api

bench-api: $(BUILD)/bench/api $(BUILD)/pai
	$(BUILD)/bench/api --pai $(BUILD)/pai --jobs 100000 --seconds 5 $(if $(STORE),--store $(STORE))
