# Tapeformer build. `make` builds build/libtapeformer.a (float) and the
# command-line program build/tapeformer; the double-precision twins
# (build/libtapeformer64.a, build/tapeformer64) back `gradcheck` and the tests.
# `make deps` installs the Debian packages the project needs (as root).

CC      := gcc
BUILD   := build
PKGS    := check libcjson inih
DEB_PKGS := gcc make pkg-config check libstb-dev libinih-dev libcjson-dev

CFLAGS  := -O3 -march=native -std=gnu11 -Wall -Wextra -I.
ifdef NO_OMP
CFLAGS  += -Wno-unknown-pragmas
else
CFLAGS  += -fopenmp
endif
ifdef SANITIZE
CFLAGS  += -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer
endif
LDLIBS   = $(shell pkg-config --libs libcjson inih) -lm
CHECKLIBS = $(shell pkg-config --libs check)

SRC   := $(filter-out train/main.c,$(wildcard core/*.c layers/*.c optim/*.c data/*.c train/*.c))
HDR   := $(wildcard */*.h)
OBJ32 := $(SRC:%.c=$(BUILD)/f32/%.o)
OBJ64 := $(SRC:%.c=$(BUILD)/f64/%.o)
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/check_*.c))

# Rebuild everything when the flags change (NO_OMP=1, SANITIZE=1, ...).
FLAGSTAMP := $(BUILD)/.flags
$(shell mkdir -p $(BUILD); echo '$(CC) $(CFLAGS)' | cmp -s - $(FLAGSTAMP) 2>/dev/null || echo '$(CC) $(CFLAGS)' > $(FLAGSTAMP))

.PHONY: all deps run test clean
all: $(BUILD)/tapeformer $(BUILD)/tapeformer64

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else echo "missing Debian packages:$$missing (run 'make deps' as root)"; exit 1; fi; \
	fi

$(BUILD)/f32/%.o: %.c $(HDR) $(FLAGSTAMP) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/f64/%.o: %.c $(HDR) $(FLAGSTAMP) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DTX_DOUBLE -c $< -o $@

$(BUILD)/libtapeformer.a: $(OBJ32)
	ar rcs $@ $^

$(BUILD)/libtapeformer64.a: $(OBJ64)
	ar rcs $@ $^

$(BUILD)/tapeformer: $(BUILD)/f32/train/main.o $(BUILD)/libtapeformer.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tapeformer64: $(BUILD)/f64/train/main.o $(BUILD)/libtapeformer64.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# Unit tests build against the double library: gradients are checked there.
$(BUILD)/tests/%: tests/%.c tests/testutil.h $(BUILD)/libtapeformer64.a | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DTX_DOUBLE $< -o $@ $(BUILD)/libtapeformer64.a $(CHECKLIBS) $(LDLIBS)

run: all
	$(BUILD)/tapeformer train configs/copy.ini

test: all $(TESTS)
	@bash tests/run.sh $(TESTS)

clean:
	rm -rf $(BUILD)
