# minivm: build the VMM, the guest kernel and the root filesystem into build/.
#
#   make deps     install build dependencies (apt-get, idempotent)
#   make          build/minivm, build/vmlinux, build/bzImage, build/rootfs.img
#   make check    unit tests (ASan+UBSan) then integration tests (real VMs)
#   make fuzz     run every fuzz target for FUZZ_TIME seconds each
#   make install  PREFIX=/usr/local DESTDIR=: the minivm command, libminivm
#                 (.so and .a), its header and its pkg-config file, and the
#                 VMM process's executable in LIBEXECDIR

BUILD     ?= build
CC        ?= gcc
FUZZ_CC   ?= clang
FUZZ_TIME ?= 30
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    ?= $(PREFIX)/bin
LIBDIR    ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
# minivm-vmm, the VMM process libminivm starts (vmm/vmm_proc.h): its path is
# compiled into the library as the default, so build with the PREFIX (or
# LIBEXECDIR) you install with.
LIBEXECDIR ?= $(PREFIX)/libexec/minivm
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL   ?= install

# libminivm's version is the minivm command's (vmm/main.c); the soname
# carries the major number only.
VERSION   := $(shell sed -n 's/^\#define MINIVM_VERSION "\(.*\)"/\1/p' vmm/main.c)
SOMAJOR   := 0
SONAME    := libminivm.so.$(SOMAJOR)

WARN   := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
          -Wmissing-prototypes -Wno-unused-parameter
CFLAGS ?= -O2 -g
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -I. -pthread $(WARN) -DMINIVM_LIBEXECDIR='"$(LIBEXECDIR)"'
# libext2fs + com_err: `minivm rootfs verify` reads ext4 images (vmm/rootfs_verify.c).
# libseccomp: the jailed VMM process's per-thread syscall allowlists (vmm/jail.c).
LDLIBS := -pthread -luring -lfdt -lcap-ng -lseccomp -lz -lext2fs -lcom_err
SAN    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt)

# Shared by host and guest: cmdline.c (the host encodes what the guest
# decodes) and agent_proto.c (the agent protocol's frames).
SHARED_SRCS := rootfs/agent/cmdline.c rootfs/agent/agent_proto.c rootfs/agent/tar.c
# The commands (minivm, and minivm-runc which is the same binary) are
# clients of the library, not part of it: they exit the process, and
# minivm-runc's signal forwarding needs file-level state for its handlers.
CLI_SRCS   := vmm/main.c $(wildcard vmm/runc*.c)
# The VMM process's executable (keeper and VMM): it forks and exits, and its
# SIGSYS handler needs process-wide state; libminivm spawns it.
VMM_SRCS   := vmm/vmm_main.c
LIB_SRCS   := $(filter-out $(CLI_SRCS) $(VMM_SRCS),$(wildcard vmm/*.c boot/*.c devices/*.c)) $(SHARED_SRCS)
AGENT_SRCS := $(filter-out rootfs/agent/init.c $(SHARED_SRCS),$(wildcard rootfs/agent/*.c))
HDRS       := $(wildcard vmm/*.h boot/*.h devices/*.h rootfs/agent/*.h)

# Library objects are position-independent (their own directory, so an
# older non-PIC build/obj is never linked into the .so): the same objects
# make the shared and the static library.
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/pic/%.o)
CLI_OBJS   := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
VMM_OBJS   := $(VMM_SRCS:%.c=$(BUILD)/obj/%.o)
# Tests and fuzz targets also cover the command's sources but main.c.
TESTED_SRCS := $(LIB_SRCS) $(filter-out vmm/main.c,$(CLI_SRCS)) $(AGENT_SRCS)
SAN_OBJS   := $(TESTED_SRCS:%.c=$(BUILD)/san/%.o)
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

# Keep the sanitizer objects between test builds.
.SECONDARY:

.PHONY: all deps minivm lib examples kernel rootfs check check-unit check-integration fuzz fuzz-build bench bench-quick clean install uninstall
all: minivm kernel rootfs

deps:
	@./.ci/deps.sh

minivm: $(BUILD)/minivm $(BUILD)/minivm-vmm $(BUILD)/minivm-runc lib $(BUILD)/agentctl

lib: $(BUILD)/libminivm.a $(BUILD)/libminivm.so $(BUILD)/minivm.pc

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(BASE_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/pic/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC pic  $<"
	@$(CC) $(BASE_CFLAGS) $(CFLAGS) -fPIC -c $< -o $@

$(BUILD)/san/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC san  $<"
	@$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -c $< -o $@

$(BUILD)/libminivm.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The shared library: every library object, its dependencies resolved at
# link time (--no-undefined), relocations read-only after load (relro, now).
$(BUILD)/libminivm.so.$(VERSION): $(LIB_OBJS)
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined \
		-Wl,-z,relro,-z,now -o $@ $^ $(LDLIBS)

$(BUILD)/$(SONAME): $(BUILD)/libminivm.so.$(VERSION)
	ln -sf $(notdir $<) $@

$(BUILD)/libminivm.so: $(BUILD)/$(SONAME)
	ln -sf $(notdir $<) $@

# pkg-config: Libs.private for static linking (pkg-config --static). The
# paths are the install's: `make install` writes it again with its own
# PREFIX, so a build made with another PREFIX still installs a right one.
define write_pc
	printf '%s\n' \
		'prefix=$(PREFIX)' \
		'exec_prefix=$${prefix}' \
		'libdir=$(LIBDIR:$(PREFIX)%=$${exec_prefix}%)' \
		'includedir=$(INCLUDEDIR:$(PREFIX)%=$${prefix}%)' \
		'' \
		'Name: minivm' \
		'Description: microVMs on KVM: create, run, snapshot and destroy sandboxes from a program' \
		'Version: $(VERSION)' \
		'Libs: -L$${libdir} -lminivm' \
		'Libs.private: $(LDLIBS)' \
		'Cflags: -I$${includedir}/minivm' >$(1)
endef

$(BUILD)/minivm.pc: Makefile vmm/main.c
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	@$(call write_pc,$@)

$(BUILD)/minivm: $(CLI_OBJS) $(BUILD)/libminivm.a
	$(CC) $(CFLAGS) -pthread -o $@ $^ $(LDLIBS)

# The VMM process (vmm/vmm_main.c): build/minivm finds it beside itself.
$(BUILD)/minivm-vmm: $(VMM_OBJS) $(BUILD)/libminivm.a
	$(CC) $(CFLAGS) -pthread -o $@ $^ $(LDLIBS)

# The OCI runtime containerd's runc shim calls: minivm selected by its name (vmm/runc.c).
$(BUILD)/minivm-runc: $(BUILD)/minivm
	ln -sf minivm $@

# A client of the agent of a running VM (tests, scripts): exec, put, get, shutdown.
$(BUILD)/agentctl: $(BUILD)/obj/tests/integration/agentctl.o $(BUILD)/libminivm.a
	$(CC) $(CFLAGS) -pthread -o $@ $^ $(LDLIBS)

# The guest kernel: cached outside the tree, keyed by its inputs.
kernel:
	@./kernel-config/build.sh $(BUILD)

# The root filesystem images, one per rootfs/PROFILE.manifest (tools ->
# build/rootfs.img, hardened, python -> build/rootfs-PROFILE.img), each with
# its CycloneDX SBOM; rebuilt only when their inputs change.
rootfs:
	@./rootfs/build.sh $(BUILD)

$(BUILD)/tests/%: tests/unit/%.c $(SAN_OBJS) $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(BASE_CFLAGS) $(TEST_DEFS) -O1 -g $(SAN) -o $@ $< $(SAN_OBJS) $(CHECK_LIBS) $(LDLIBS)

# test_libminivm inspects the built library and installs it in a temporary tree.
$(BUILD)/tests/test_libminivm: TEST_DEFS = -DMINIVM_TEST_BUILD='"$(BUILD)"' -DMINIVM_TEST_VERSION='"$(VERSION)"'
$(BUILD)/tests/test_libminivm: $(BUILD)/minivm $(BUILD)/minivm-vmm $(BUILD)/libminivm.a $(BUILD)/libminivm.so $(BUILD)/minivm.pc

# The examples of tests/examples/ (run by tests/integration/api.sh):
# three_commands against libminivm.a, and again over the library's objects
# built with ASan+UBSan (three_commands-san: leaks and UB of the library
# show); run_one (the README's snippet) against libminivm.so, found through
# pkg-config in an install made with `make install` into build/examples/usr.
EXAMPLES_PREFIX := $(abspath $(BUILD))/examples/usr
SAN_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/san/%.o)
EXAMPLES := $(BUILD)/examples/three_commands $(BUILD)/examples/three_commands-san \
	    $(BUILD)/examples/run_one

examples: $(EXAMPLES)

$(BUILD)/examples/three_commands: tests/examples/three_commands.c $(BUILD)/libminivm.a vmm/minivm.h
	@mkdir -p $(dir $@)
	@echo "  EXAMPLE $@"
	@$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libminivm.a $(LDLIBS)

$(BUILD)/examples/three_commands-san: tests/examples/three_commands.c $(SAN_LIB_OBJS) vmm/minivm.h
	@mkdir -p $(dir $@)
	@echo "  EXAMPLE $@ (ASan+UBSan)"
	@$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -o $@ $< $(SAN_LIB_OBJS) $(LDLIBS)

$(BUILD)/examples/run_one: tests/examples/run_one.c $(BUILD)/minivm $(BUILD)/libminivm.a $(BUILD)/libminivm.so $(BUILD)/minivm.pc vmm/minivm.h
	@mkdir -p $(dir $@)
	@$(MAKE) --no-print-directory install PREFIX=$(EXAMPLES_PREFIX) >/dev/null
	@echo "  EXAMPLE $@ (libminivm.so through pkg-config)"
	@PKG_CONFIG_PATH=$(EXAMPLES_PREFIX)/lib/pkgconfig && export PKG_CONFIG_PATH && \
		$(CC) -std=c11 $(WARN) $(CFLAGS) $$(pkg-config --cflags minivm) -o $@ $< \
		$$(pkg-config --libs minivm) -Wl,-rpath,$(EXAMPLES_PREFIX)/lib

# test_vmm_wire starts the VMM process's executable (a failing VM, no KVM).
$(BUILD)/tests/test_vmm_wire: TEST_DEFS = -DMINIVM_TEST_BUILD='"$(BUILD)"'
$(BUILD)/tests/test_vmm_wire: $(BUILD)/minivm-vmm

# Every test that starts a VM finds the VMM process's executable here.
check-unit: $(UNIT_BINS) $(BUILD)/minivm-vmm
	@MINIVM_VMM="$${MINIVM_VMM:-$(abspath $(BUILD))/minivm-vmm}" ./tests/unit/run.sh $(UNIT_BINS)

check-integration: all examples
	@./tests/integration/run.sh $(BUILD)

check: check-unit check-integration

# The code under test is compiled once for every fuzz target (coverage and
# sanitizers, no libFuzzer main); each target links it with its own main.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -I. -g -O1
FUZZ_OBJS := $(TESTED_SRCS:%.c=$(BUILD)/fuzzobj/%.o)

$(BUILD)/fuzzobj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC fuzz $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS) $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@./tests/fuzz/run.sh $(FUZZ_TIME) $(FUZZ_BINS)

bench: all
	@./bench/run --build $(BUILD)

bench-quick: all
	@./bench/test-report
	@./bench/run --quick --build $(BUILD)

# Only what a user of the command or the library needs: the guest kernel,
# rootfs and agent stay in build/ (they are passed by path).
install: $(BUILD)/minivm $(BUILD)/minivm-vmm lib
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(INCLUDEDIR)/minivm $(DESTDIR)$(LIBEXECDIR)
	$(INSTALL) -m 755 $(BUILD)/minivm $(DESTDIR)$(BINDIR)/minivm
	$(INSTALL) -m 755 $(BUILD)/minivm-vmm $(DESTDIR)$(LIBEXECDIR)/minivm-vmm
	ln -sf minivm $(DESTDIR)$(BINDIR)/minivm-runc
	$(INSTALL) -m 755 $(BUILD)/libminivm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libminivm.so.$(VERSION)
	ln -sf libminivm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libminivm.so
	$(INSTALL) -m 644 $(BUILD)/libminivm.a $(DESTDIR)$(LIBDIR)/libminivm.a
	$(call write_pc,$(DESTDIR)$(PKGCONFIGDIR)/minivm.pc)
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/minivm.pc
	$(INSTALL) -m 644 vmm/minivm.h $(DESTDIR)$(INCLUDEDIR)/minivm/minivm.h

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/minivm $(DESTDIR)$(BINDIR)/minivm-runc \
		$(DESTDIR)$(LIBDIR)/libminivm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
		$(DESTDIR)$(LIBDIR)/libminivm.so $(DESTDIR)$(LIBDIR)/libminivm.a \
		$(DESTDIR)$(PKGCONFIGDIR)/minivm.pc $(DESTDIR)$(INCLUDEDIR)/minivm/minivm.h \
		$(DESTDIR)$(LIBEXECDIR)/minivm-vmm
	-rmdir $(DESTDIR)$(INCLUDEDIR)/minivm $(DESTDIR)$(LIBEXECDIR)

clean:
	rm -rf $(BUILD)
