# mk/bench-protocol.mk - job protocol throughput benchmark.
#   make bench-protocol    build $(BUILD)/bench/protocol and run it
# (`make bench` runs every bench-* target that fragments attach to it.)

.PHONY: bench bench-protocol
bench: bench-protocol
all: $(BUILD)/bench/protocol

$(BUILD)/bench/protocol: $(BUILD)/bench/protocol.o $(BUILD)/libpai.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench-protocol: $(BUILD)/bench/protocol
	$(BUILD)/bench/protocol
