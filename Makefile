# dtn: libdtn (static and shared) and dtn-build.
#
#   make                 build libdtn.a, libdtn.so and dtn-build
#   make check           build and run every test
#   make installcheck    install into a temporary prefix and build the C example against it
#   make asan | ubsan    the test suite under AddressSanitizer / UndefinedBehaviorSanitizer
#   make valgrind        the test suite under valgrind
#   make fuzz            build the libFuzzer targets with clang and run each for FUZZ_SECONDS
#   make bench           benchmarks
#   make base-image      the local busybox base image of examples/hello (buildah, podman or docker)
#   make install PREFIX=/usr/local DESTDIR=

VERSION := $(shell sed -n 's/^\#define DTN_VERSION "\(.*\)"/\1/p' core/dtn_core.h)
SOVERSION := 0

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

CC ?= cc
PKG_CONFIG ?= pkg-config
B ?= build

# Our warnings are kept apart from the user's CFLAGS.
WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wwrite-strings -Wno-format-nonliteral
WERROR ?= -Werror
CFLAGS ?= -O2 -g
DEPS := yaml-0.1 jansson libarchive libcrypto libcurl zlib
TEST_DEPS := cmocka
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEPS))
DEP_LIBS := $(shell $(PKG_CONFIG) --libs $(DEPS))
TEST_LIBS := $(shell $(PKG_CONFIG) --libs $(TEST_DEPS) 2>/dev/null)

MODULES := core otel imagedsl snapshots builder
CLI_INCLUDES := -Icli
INCLUDES := $(addprefix -I,$(MODULES)) -I.
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -pthread $(INCLUDES) $(WARNINGS) \
	$(WERROR) $(DEP_CFLAGS) $(CFLAGS) $(SAN)
ALL_LDFLAGS := $(LDFLAGS) $(SAN) -pthread

LIB_SRC := $(sort $(foreach m,$(MODULES),$(wildcard $(m)/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
CLI_SRC := $(sort $(wildcard cli/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(B)/%.o)
PUBLIC_HEADERS := dtn.h core/dtn_core.h otel/dtn_otel.h imagedsl/dtn_image.h snapshots/dtn_daytona.h \
	snapshots/dtn_volume.h builder/dtn_builder.h builder/dtn_local.h builder/dtn_build.h

TEST_SRC := $(sort $(wildcard tests/*/test_*.c))
TEST_BIN := $(TEST_SRC:%.c=$(B)/%)
TEST_SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:%.c=$(B)/%.o)

STATIC := $(B)/libdtn.a
SHARED := $(B)/libdtn.so
TOOL := $(B)/dtn-build

.PHONY: installcheck all check asan ubsan valgrind fuzz bench install uninstall clean headers symbols \
	test-bins base-image

all: $(STATIC) $(SHARED) $(TOOL)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ) dtn.map
	$(CC) -shared -Wl,-soname,libdtn.so.$(SOVERSION) -Wl,--version-script=dtn.map \
		$(ALL_LDFLAGS) -o $@ $(LIB_OBJ) $(DEP_LIBS)

$(TOOL): $(CLI_OBJ) $(STATIC)
	$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(DEP_LIBS)

# Tests build paths in fixed buffers on purpose; a truncated path would fail the test anyway.
TEST_CFLAGS := -Itests/support -Wno-format-truncation

$(B)/tests/%: tests/%.c $(TEST_SUPPORT_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -o $@ $< $(TEST_SUPPORT_OBJ) $(STATIC) \
		$(ALL_LDFLAGS) $(DEP_LIBS) $(TEST_LIBS)

test-bins: $(TEST_BIN) $(TOOL)

# Every test binary runs with the built dtn-build and the test data at hand. TOOL_WRAPPER, when
# set, is what tests start instead of dtn-build (it finds the real one in DTN_BUILD_REAL).
RUNNER ?=
TOOL_WRAPPER ?=
check: test-bins headers symbols
	@DTN_BUILD=$(if $(TOOL_WRAPPER),$(abspath $(TOOL_WRAPPER)),$(abspath $(TOOL))) \
		DTN_BUILD_REAL=$(abspath $(TOOL)) DTN_TEST_DATA=$(abspath tests/data) \
		XDG_CACHE_HOME=$(abspath $(B))/test-cache DTN_TEST_TMP=$(abspath $(B))/test-tmp \
		RUNNER="$(RUNNER)" tests/run-tests $(TEST_BIN)

# Each public header must compile on its own as strict C11.
headers:
	@for h in $(PUBLIC_HEADERS); do \
		printf '#include "%s"\n' "$$h" | $(CC) -std=c11 -pedantic -Werror -Wall -Wextra \
			$(INCLUDES) -x c -fsyntax-only - || exit 1; \
	done; echo "headers: $(words $(PUBLIC_HEADERS)) public headers compile alone"

# The shared library exports dtn_ symbols only.
symbols: $(SHARED)
	@bad=$$(nm -D --defined-only $(SHARED) | awk '{print $$3}' | grep -v '^dtn_' \
		| grep -v '^_' ); \
	if [ -n "$$bad" ]; then echo "symbols: not dtn_: $$bad"; exit 1; fi; \
	bad=$$(nm -D --defined-only $(SHARED) | awk '{print $$3}' | grep '^dtn__'); \
	if [ -n "$$bad" ]; then echo "symbols: internal symbols exported: $$bad"; exit 1; fi; \
	echo "symbols: $$(nm -D --defined-only $(SHARED) | grep -c ' T dtn_') exported, all dtn_"

# Installs into a temporary prefix and builds the C example against it with pkg-config.
installcheck: all
	tests/install-check

# A tiny image FROM scratch with Debian's busybox-static, tagged localhost/dtn/busybox:1, so that
# the examples build locally without a registry; made once, kept afterwards.
base-image:
	scripts/base-image --if-missing

asan:
	$(MAKE) B=build/asan SAN="-fsanitize=address -fno-omit-frame-pointer" CFLAGS="-O1 -g" check

ubsan:
	$(MAKE) B=build/ubsan SAN="-fsanitize=undefined -fno-sanitize-recover=all" \
		CFLAGS="-O1 -g" check

valgrind:
	$(MAKE) B=build/valgrind CFLAGS="-O1 -g" TOOL_WRAPPER=tests/valgrind-tool \
		RUNNER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect" \
		check

FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
# Files of dtn-build a target fuzzes besides the library: FUZZ_CLI_<name>.
FUZZ_CLI_trace := cli/cmd_trace.c
# New inputs go to build/fuzz/corpus-NAME; the seeds in tests/fuzz/corpus/NAME are only read.
fuzz:
	@set -e; $(foreach t,$(FUZZ_TARGETS), \
		mkdir -p build/fuzz/corpus-$(t); \
		$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
			-fno-sanitize-recover=undefined \
			$(INCLUDES) $(CLI_INCLUDES) $(DEP_CFLAGS) -o build/fuzz/$(t) tests/fuzz/fuzz_$(t).c \
			$(FUZZ_CLI_$(t)) $(LIB_SRC) $(DEP_LIBS); \
		build/fuzz/$(t) -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
			build/fuzz/corpus-$(t) tests/fuzz/corpus/$(t);)

# Synthetic trees under $(B)/bench/trees, made on the first run and kept; BENCH_RUNS per series.
BENCH_RUNS ?= 5
BENCH_BIN := $(B)/bench/bench_context

$(BENCH_BIN): bench/bench_context.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(ALL_LDFLAGS) $(DEP_LIBS)

BENCH_OTEL_BIN := $(B)/bench/bench_otel

$(BENCH_OTEL_BIN): bench/bench_otel.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC) $(ALL_LDFLAGS) $(DEP_LIBS)

bench: all $(BENCH_BIN) $(BENCH_OTEL_BIN)
	$(BENCH_BIN) -n $(BENCH_RUNS) $(B)/bench
	$(BENCH_OTEL_BIN) -n $(BENCH_RUNS) $(B)/bench

install: all
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		-e 's|@REQUIRES@|$(DEPS)|' dtn.pc.in > $(B)/dtn.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/dtn $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libdtn.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/libdtn.so.$(VERSION)
	ln -sf libdtn.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libdtn.so.$(SOVERSION)
	ln -sf libdtn.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libdtn.so
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/dtn/
	install -m 644 $(B)/dtn.pc $(DESTDIR)$(PKGCONFIGDIR)/dtn.pc
	install -m 755 $(TOOL) $(DESTDIR)$(BINDIR)/dtn-build
	install -m 644 docs/dtn-build.1 $(DESTDIR)$(MANDIR)/man1/dtn-build.1

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libdtn.a $(DESTDIR)$(LIBDIR)/libdtn.so* \
		$(DESTDIR)$(PKGCONFIGDIR)/dtn.pc $(DESTDIR)$(BINDIR)/dtn-build \
		$(DESTDIR)$(MANDIR)/man1/dtn-build.1
	rm -rf $(DESTDIR)$(INCLUDEDIR)/dtn

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_SUPPORT_OBJ:.o=.d)

# Objects of the test support files are kept between runs.
.SECONDARY: $(TEST_SUPPORT_OBJ)
