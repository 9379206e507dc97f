# minivm: build the VMM, the guest kernel and the root filesystem into build/.
#
#   make deps     install build dependencies (apt-get, idempotent)
#   make          build/minivm, build/vmlinux, build/bzImage, build/rootfs.img
#   make check    unit tests (ASan+UBSan) then integration tests (real VMs)
#   make fuzz     run every fuzz target for FUZZ_TIME seconds each

BUILD     ?= build
CC        ?= gcc
FUZZ_CC   ?= clang
FUZZ_TIME ?= 30

WARN   := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
          -Wmissing-prototypes -Wno-unused-parameter
CFLAGS ?= -O2 -g
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -I. -pthread $(WARN)
# libext2fs + com_err: `minivm rootfs verify` reads ext4 images (vmm/rootfs_verify.c).
# libseccomp: the jailed VMM process's per-thread syscall allowlists (vmm/jail.c).
LDLIBS := -pthread -luring -lfdt -lcap-ng -lseccomp -lz -lext2fs -lcom_err
SAN    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt)

# Shared by host and guest: cmdline.c (the host encodes what the guest
# decodes) and agent_proto.c (the agent protocol's frames).
SHARED_SRCS := rootfs/agent/cmdline.c rootfs/agent/agent_proto.c rootfs/agent/tar.c
LIB_SRCS   := $(filter-out vmm/main.c,$(wildcard vmm/*.c boot/*.c devices/*.c)) $(SHARED_SRCS)
AGENT_SRCS := $(filter-out rootfs/agent/init.c $(SHARED_SRCS),$(wildcard rootfs/agent/*.c))
HDRS       := $(wildcard vmm/*.h boot/*.h devices/*.h rootfs/agent/*.h)

LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
SAN_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/san/%.o) $(AGENT_SRCS:%.c=$(BUILD)/san/%.o)
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

# Keep the sanitizer objects between test builds.
.SECONDARY:

.PHONY: all deps minivm kernel rootfs check check-unit check-integration fuzz fuzz-build bench bench-quick clean
all: minivm kernel rootfs

deps:
	@./.ci/deps.sh

minivm: $(BUILD)/minivm $(BUILD)/libminivm.a $(BUILD)/agentctl

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(BASE_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC san  $<"
	@$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -c $< -o $@

$(BUILD)/libminivm.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/minivm: $(BUILD)/obj/vmm/main.o $(BUILD)/libminivm.a
	$(CC) $(CFLAGS) -pthread -o $@ $^ $(LDLIBS)

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
	@$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -o $@ $< $(SAN_OBJS) $(CHECK_LIBS) $(LDLIBS)

check-unit: $(UNIT_BINS)
	@./tests/unit/run.sh $(UNIT_BINS)

check-integration: all
	@./tests/integration/run.sh $(BUILD)

check: check-unit check-integration

# The code under test is compiled once for every fuzz target (coverage and
# sanitizers, no libFuzzer main); each target links it with its own main.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -I. -g -O1
FUZZ_OBJS := $(LIB_SRCS:%.c=$(BUILD)/fuzzobj/%.o) $(AGENT_SRCS:%.c=$(BUILD)/fuzzobj/%.o)

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

clean:
	rm -rf $(BUILD)
