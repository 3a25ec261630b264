# mk/agent.mk - the agent's test helpers.
#   build/tests/libfakenvml.so: a fake libnvidia-ml.so.1 (tests/unit/fake_nvml.c)
#   that test_agent dlopens to check NVML discovery without a GPU.
all: $(BUILD)/tests/libfakenvml.so
$(BUILD)/tests/test_agent: | $(BUILD)/tests/libfakenvml.so

$(BUILD)/tests/libfakenvml.so: tests/unit/fake_nvml.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $<
$(BUILD)/tests/test_agent_metrics: | $(BUILD)/tests/libfakenvml.so
