# mk/bench-store.mk - platform micro-benchmarks (figures in docs/benchmarks.md,
# section "REST API"):
#   make bench-store   durable store inserts/s with 1 and 16 writers
#   make bench-http    authenticated keep-alive GETs/s against a real `pai server`

BENCH_PLATFORM := $(BUILD)/bench/store $(BUILD)/bench/http

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libpai.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: bench bench-store bench-http
bench: bench-store bench-http

bench-store: $(BUILD)/bench/store
	$(BUILD)/bench/store --writers 16 --seconds 3

bench-http: $(BUILD)/bench/http $(BUILD)/pai
	$(BUILD)/bench/http --pai $(BUILD)/pai --clients 8 --seconds 5
