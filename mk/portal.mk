# mk/portal.mk - embeds the web portal (web/) into the pai binary.
#
# tools/portal_embed (a small C program, built here with the host compiler)
# writes every file under web/ into $(BUILD)/gen/portal_assets.c, which joins
# GEN_SRCS and so libpai.a.  Offline: needs only cc, no xxd, no network.
# Any change to a file under web/ (or to the file list) regenerates it.

PORTAL_FILES := $(shell cd web 2>/dev/null && find . -type f ! -name '.*' | sed 's|^\./||' | LC_ALL=C sort)
PORTAL_EMBED := $(BUILD)/tools/portal_embed
PORTAL_GEN   := $(BUILD)/gen/portal_assets.c
PORTAL_LIST  := $(BUILD)/gen/portal_files.txt
GEN_SRCS     += $(PORTAL_GEN)

$(PORTAL_EMBED): tools/portal_embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) -o $@ $<

# The list file changes only when files are added or removed, so a removed
# file also triggers a rebuild.  It is remade only when it differs from the
# list found now (read here, as the load-order cache in the Makefile is):
# an unconditional FORCE would leave it, and so the portal and the binary,
# out of date for `make -q` in a tree that is up to date.
ifneq ($(file < $(PORTAL_LIST)),$(PORTAL_FILES))
$(PORTAL_LIST): FORCE_PORTAL_LIST
endif
$(PORTAL_LIST):
	@mkdir -p $(dir $@)
	@echo '$(PORTAL_FILES)' > $@

$(PORTAL_GEN): $(PORTAL_EMBED) $(PORTAL_LIST) $(addprefix web/,$(PORTAL_FILES))
	$(PORTAL_EMBED) $@ web $(PORTAL_FILES)

.PHONY: FORCE_PORTAL_LIST
FORCE_PORTAL_LIST:

# make bench-portal: time to first render of the job list with 10,000 jobs
# (docs/benchmarks.md, section "Portal").
.PHONY: bench bench-portal
bench: bench-portal
bench-portal: $(BUILD)/pai
	PAI_BIN=$(abspath $(BUILD)/pai) python3 bench/portal.py --jobs 10000
