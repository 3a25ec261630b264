# mk/protocol.mk - the job protocol's generated source: OpenPAI's exit-code
# table (src/protocol/exit-spec.yaml, MIT, (c) Microsoft Corporation) embedded
# as a C byte array, parsed once at run time by src/protocol/exitspec.c.

EXITSPEC_GEN := $(BUILD)/gen/exitspec_yaml.c
GEN_SRCS += $(EXITSPEC_GEN)

$(EXITSPEC_GEN): src/protocol/exit-spec.yaml mk/protocol.mk
	@mkdir -p $(dir $@)
	{ echo '/* generated from src/protocol/exit-spec.yaml by mk/protocol.mk: do not edit */'; \
	  echo '#include <stddef.h>'; \
	  echo 'extern const char pai_exitspec_yaml[];'; \
	  echo 'extern const size_t pai_exitspec_yaml_len;'; \
	  echo 'const char pai_exitspec_yaml[] = {'; \
	  od -An -v -tx1 $< | awk '{ s = ""; for (i = 1; i <= NF; i++) s = s "0x" $$i ","; print s }'; \
	  echo '0x00};'; \
	  echo 'const size_t pai_exitspec_yaml_len = sizeof(pai_exitspec_yaml) - 1;'; } > $@.tmp
	mv $@.tmp $@
