# mk/bench-standby.mk - what a standby's view of a PostgreSQL store costs to
# build, and where the time goes (figures in docs/benchmarks.md,
# "Standbys and lost machines"):
#   make bench-standby   10,000 then 100,000 waiting jobs in a private
#                        PostgreSQL cluster (scripts/pg-test-cluster.sh),
#                        stopped and removed however the run ends (a trap)

.PHONY: bench-standby
all: $(BUILD)/bench/standby

bench-standby: $(BUILD)/bench/standby
	@d=$$(mktemp -d /tmp/pai-bench-standby-XXXXXX); \
	p=$$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	trap 'bash scripts/pg-test-cluster.sh stop $$d $$p; rm -rf $$d' EXIT; \
	trap 'exit 130' INT TERM HUP; \
	u=$$(bash scripts/pg-test-cluster.sh start $$d $$p) && \
	$(BUILD)/bench/standby --url "$$u" --jobs 10000 --rounds 3 && \
	$(BUILD)/bench/standby --url "$$u" --jobs 100000 --rounds 3
