# mk/bench-notify.mk - what a notification costs: the engine's hand-off
# (notify_post under its lock), rendering and signing, the queue's own work
# (docs/benchmarks.md, "Notifications").
#   make bench-notify    build $(BUILD)/bench/notify and run it

.PHONY: bench bench-notify
bench: bench-notify
all: $(BUILD)/bench/notify

$(BUILD)/bench/notify: $(BUILD)/bench/notify.o $(BUILD)/libpai.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench-notify: $(BUILD)/bench/notify
	$(BUILD)/bench/notify
