# pai: one binary, built with plain GNU make.
#
# Why plain make: the project is one C binary plus test programs; a
# wildcard build over src/ needs no generator step, works on a bare Debian
# machine and is what every contributor already knows.  Subsystems that
# need extra rules (embedded portal assets, fuzz targets, benchmarks) add a
# fragment under mk/ instead of editing this file.
#
#   make            build $(BUILD)/pai
#   make test       install deps, build, run every test (tests/run.sh)
#   make run        install deps, build, start a local cluster
#   make SAN=1 ...  the same with ASan+UBSan in build-san/
#   make TSAN=1 ... the same with ThreadSanitizer in build-tsan/ (clang;
#                   not with SAN=1: the two runtimes cannot share a binary)
#   make CC=clang   build with clang

CC      ?= cc
SAN     ?=
TSAN    ?=
WERROR  ?= 1
ifeq ($(SAN)$(TSAN),11)
$(error SAN=1 and TSAN=1 are exclusive: build them into separate folders)
endif
ifeq ($(SAN),1)
BUILD   ?= build-san
else ifeq ($(TSAN),1)
BUILD   ?= build-tsan
else
BUILD   ?= build
endif

PKGS    := libmicrohttpd jansson yaml-0.1 sqlite3 libsodium libcurl libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wno-format-nonliteral -Wvla
ifeq ($(WERROR),1)
WARN    += -Werror
endif
ifeq ($(TSAN),1)
OPT     ?= -O1 -g
endif
OPT     ?= -O2 -g
CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -Isrc $(PKG_CFLAGS) -pthread
LDLIBS  := $(PKG_LIBS) -ldl -lm -pthread
# Load order.  Most of a short command's CPU is the dynamic loader (`pai
# submit`: about 80% of its instructions, ld.so binding some 11,000 symbols
# of the 40 libraries libcurl and libpq bring).  Each lookup walks the
# global scope in load order, and the libraries that bind the most (mostly
# their own symbols, through their GOT: libcrypto 4,000, sqlite 1,500) come
# deep in it, libcrypto 17th.  Naming them first, each only where it is
# already in the dependency closure (nothing more is loaded), cuts the
# loader's work by a third (docs/cli.md, "Start-up cost").  No library
# defines a symbol another one does (Debian 12; only libm's copies of libc's
# functions, versioned alike), so no binding changes.  Not with sanitizers:
# their runtime must come first.
LOAD_FIRST := libcrypto.so.3 libsqlite3.so.0 libc.so.6 libgnutls.so.30 libnettle.so.8 \
              libunistring.so.2 libldap-2.5.so.0 libhogweed.so.6 libssl.so.3 libsodium.so.23 \
              liblber-2.5.so.0 libgmp.so.10 libgssapi_krb5.so.2
#
# The closure (the libraries' sonames and what ldd says they load) costs
# ldd and readelf runs, so it is kept in $(BUILD)/load-first.mk with the
# files it was read from (each library's real file) as its prerequisites:
# made again when one of them changes or goes, or when the compiler, the
# pkg-config libraries or LOAD_FIRST differ from what it was made for (then
# make re-reads the Makefile once).  Not read for clean, deps, check-style.
ifeq ($(SAN)$(TSAN),)
LOAD_CACHE := $(BUILD)/load-first.mk
LOAD_KEY   := $(strip $(CC) | $(PKG_LIBS) | $(LOAD_FIRST))
ifneq ($(if $(MAKECMDGOALS),$(filter-out clean deps check-style,$(MAKECMDGOALS)),all),)
-include $(LOAD_CACHE)
endif
ifneq ($(LOAD_CACHE_KEY),$(LOAD_KEY))
$(LOAD_CACHE): FORCE
endif
# Lines "N soname" (the closure) and "F file" (what it was read from).
$(LOAD_CACHE):
	@mkdir -p $(dir $@)
	@for l in $(patsubst -l%,lib%.so,$(filter -l%,$(PKG_LIBS))); do \
	  f=$$($(CC) -print-file-name=$$l); [ -e "$$f" ] || continue; \
	  echo "F $$(readlink -f "$$f")"; \
	  readelf -d "$$f" | sed -n 's/.*(SONAME).*\[\(.*\)\]/N \1/p'; \
	  ldd "$$f" | awk '/=>/ {print "N " $$1} $$3 ~ /^\// {print "F " $$3}'; \
	done 2>/dev/null | sort -u >$@.list.$$$$; \
	{ echo 'LOAD_CACHE_KEY := $(LOAD_KEY)'; \
	  echo "LOAD_CLOSURE := $$(sed -n 's/^N //p' $@.list.$$$$ | tr '\n' ' ')"; \
	  files=$$(sed -n 's/^F //p' $@.list.$$$$ | xargs -r readlink -f | sort -u | tr '\n' ' '); \
	  echo "$@: $$files"; \
	  for f in $$files; do echo "$$f:"; done; } >$@.tmp.$$$$ && mv $@.tmp.$$$$ $@; \
	rm -f $@.list.$$$$
LOAD_FIRST_LIBS := $(addprefix -l:,$(filter $(LOAD_CLOSURE),$(LOAD_FIRST)))
ifneq ($(LOAD_FIRST_LIBS),)
LDLIBS  := -Wl,--push-state,--no-as-needed $(LOAD_FIRST_LIBS) -Wl,--pop-state $(LDLIBS)
endif
endif
# The allocator: jemalloc, linked in statically (Debian's libjemalloc-dev,
# its PIC archive), so that its malloc and free are the executable's own
# and every library's allocations go to it too; the static link brings no
# libstdc++ into each CLI call, as the shared library would.  The server
# and the agent allocate on one thread and free on another (jansson values
# of job records and syncs, handed between the HTTP threads, the scheduler
# and the write workers), which glibc's arenas handle poorly
# (docs/benchmarks-history.md, "Allocation").  Not with sanitizers (their runtimes
# replace malloc themselves), nor with ALLOC=glibc.
ALLOC   ?= jemalloc
ifeq ($(SAN)$(TSAN)$(ALLOC),jemalloc)
ALLOC_LIBS := -l:libjemalloc_pic.a
LDLIBS  := $(ALLOC_LIBS) $(LDLIBS)
endif
# A build folder made with the other allocator links pai again: main.o is
# compiled again when the stamp of the allocator it was made with is not
# this one's.
ALLOC_STAMP := $(BUILD)/alloc-$(if $(ALLOC_LIBS),jemalloc,glibc).stamp
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(TSAN),1)
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif

SRCS     := $(shell find src -name '*.c' | sort)
GEN_SRCS :=
# fragments below define rules of their own: keep `make` meaning `make all`
.DEFAULT_GOAL := all
-include mk/*.mk
LIB_SRCS := $(filter-out src/main.c,$(SRCS)) $(GEN_SRCS)
LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
# The test and bench programs' objects are kept.  Made through a chain of
# pattern rules they would be intermediate, deleted after the link, and once
# their .d files name them, missing: `make -q all` would then find an
# up-to-date tree out of date (and the next make would compile them again).
.SECONDARY: $(patsubst %.c,$(BUILD)/%.o,$(TEST_SRCS) $(wildcard bench/*.c))

.PHONY: all test run check-style clean deps tests FORCE
FORCE:
all: $(BUILD)/pai tests

tests: $(TEST_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libpai.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/src/main.o: $(ALLOC_STAMP)
$(ALLOC_STAMP):
	@mkdir -p $(dir $@) && rm -f $(BUILD)/alloc-*.stamp && touch $@

$(BUILD)/pai: $(BUILD)/src/main.o $(BUILD)/libpai.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libpai.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	bash scripts/deps.sh

test:
	bash scripts/deps.sh --all
	$(MAKE) all
	bash scripts/check-style.sh
	BUILD=$(BUILD) bash tests/run.sh

run: deps
	$(MAKE) all
	bash scripts/run.sh $(BUILD) $(ARGS)

check-style:
	bash scripts/check-style.sh

clean:
	rm -rf build build-san build-*

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
