# mk/store-pg.mk - the PostgreSQL store backend's benchmark (figures in
# docs/benchmarks.md, "REST API" section):
#   make bench-store-pg   durable inserts/s with 1 and 16 writers into a
#                         private PostgreSQL cluster (scripts/pg-test-cluster.sh)

.PHONY: bench-store-pg
bench-store-pg: $(BUILD)/bench/store
	@d=$$(mktemp -d /tmp/pai-bench-pg-XXXXXX); \
	p=$$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	u=$$(bash scripts/pg-test-cluster.sh start $$d $$p) && \
	$(BUILD)/bench/store --url "$$u" --writers 16 --seconds 3; rc=$$?; \
	bash scripts/pg-test-cluster.sh stop $$d $$p; rm -rf $$d; exit $$rc
