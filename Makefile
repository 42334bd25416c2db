# Tapeformer build. `make` builds build/libtapeformer.a (float: the library,
# every folder but cli/ and gradcheck/) and the command-line program
# build/tapeformer (cli/); the double-precision twins (build/libtapeformer64.a,
# build/tapeformer64) back `gradcheck` and the tests, and only they link the
# gradient checks of gradcheck/ (build/libgradcheck64.a).
# `make deps` installs the Debian packages the project needs (as root).
# `make sanitize` builds everything with AddressSanitizer and UBSan into
# build/sanitize and runs the whole test suite there; `make fuzz` builds the
# libFuzzer harnesses of fuzz/ (clang) and runs each for FUZZ_SECONDS.

CC      := gcc
CXX     := g++
PKGS    := check libcjson inih
DEB_PKGS := gcc g++ make pkg-config check libstb-dev libinih-dev libcjson-dev openmpi-bin \
            libopenmpi-dev libsentencepiece-dev sentencepiece help2man man-db
FUZZ_DEB_PKGS := clang libclang-rt-14-dev

# The fuzzing build (set by `make fuzz`): clang, serial, instrumented.
ifdef FUZZ
CC      := clang
CXX     := clang++
NO_OMP  := 1
BUILD   ?= build/fuzz
endif

# -fno-math-errno: nothing reads errno after sqrt, so loops that call it vectorise
# (AdamW's update ran one element at a time, 9% of a small model's step).
# -fno-trapping-math: nothing reads the floating-point exception flags, so a
# loop with a select in it (exp's range checks, erf's sign) may compute both
# sides; without AVX-512's masks GCC otherwise leaves it scalar (GELU was a
# fifth of a step on an AVX2 machine). Values are unchanged: no reordering.
CFLAGS  := -O3 -march=native -std=gnu11 -fno-math-errno -fno-trapping-math -Wall -Wextra -I.
ifdef NO_OMP
CFLAGS  += -Wno-unknown-pragmas
else
CFLAGS  += -fopenmp
endif
# Sanitized objects live apart so they never replace the normal build.
ifdef SANITIZE
BUILD   ?= build/sanitize
CFLAGS  += -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
           -fno-omit-frame-pointer
TESTENV := ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
endif
ifdef FUZZ
CFLAGS  += -O1 -g -fsanitize=fuzzer-no-link,address,undefined \
           -fno-sanitize-recover=all
endif
BUILD   ?= build
# MPI (dist/dist.c): Open MPI when pkg-config finds it (make deps installs
# it); NO_MPI=1 builds without (one process only). Evaluated when used, so
# after deps on a fresh machine.
MPI      = $(if $(NO_MPI),,$(shell pkg-config --exists ompi-c 2>/dev/null && echo ompi-c))
MPI_CFLAGS = $(if $(MPI),-DTX_MPI $(shell pkg-config --cflags $(MPI)))
# The one C++ file (data/spm.cc, SentencePiece) takes the C flags that C++ knows.
# UBSan's vptr check needs a C++ runtime the C link does not bring.
CXXFLAGS = $(filter-out -std=gnu11 -fopenmp -Wno-unknown-pragmas,$(CFLAGS)) -std=c++17 \
           $(shell pkg-config --cflags sentencepiece) \
           $(if $(filter -fsanitize=%,$(CFLAGS)),-fno-sanitize=vptr)
LDLIBS   = $(shell pkg-config --libs libcjson inih sentencepiece $(MPI)) -lstdc++ -lm
CHECKLIBS = $(shell pkg-config --libs check)

LIBDIRS := core layers optim data io decode draw dist train
SRC   := $(wildcard $(LIBDIRS:%=%/*.c))
SRCXX := $(wildcard $(LIBDIRS:%=%/*.cc))
CLI   := $(wildcard cli/*.c)
GC    := $(wildcard gradcheck/*.c)
HDR   := $(filter-out fuzz/%,$(wildcard */*.h))
OBJ32 := $(SRC:%.c=$(BUILD)/f32/%.o) $(SRCXX:%.cc=$(BUILD)/f32/%.o)
OBJ64 := $(SRC:%.c=$(BUILD)/f64/%.o) $(SRCXX:%.cc=$(BUILD)/f64/%.o)
# gradcheck runs in the double program; the float one execs it.
CLI32 := $(patsubst %.c,$(BUILD)/f32/%.o,$(filter-out cli/gradcheck.c,$(CLI)))
CLI64 := $(CLI:%.c=$(BUILD)/f64/%.o)
GC64  := $(GC:%.c=$(BUILD)/f64/%.o)
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/check_*.c))

# Rebuild everything when the flags change (NO_OMP=1, SANITIZE=1, ...).
FLAGSTAMP := $(BUILD)/.flags
$(shell mkdir -p $(BUILD); echo '$(CC) $(CFLAGS) $(NO_MPI)' | cmp -s - $(FLAGSTAMP) 2>/dev/null || echo '$(CC) $(CFLAGS) $(NO_MPI)' > $(FLAGSTAMP))

.PHONY: all deps run test sanitize fuzz fuzz-run clean install uninstall
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
	$(CC) $(CFLAGS) $(if $(filter dist/%,$<),$(MPI_CFLAGS)) -c $< -o $@

$(BUILD)/f64/%.o: %.c $(HDR) $(FLAGSTAMP) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(filter dist/%,$<),$(MPI_CFLAGS)) -DTX_DOUBLE -c $< -o $@

$(BUILD)/f32/%.o: %.cc $(HDR) $(FLAGSTAMP) | deps
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/f64/%.o: %.cc $(HDR) $(FLAGSTAMP) | deps
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -DTX_DOUBLE -c $< -o $@

$(BUILD)/libtapeformer.a: $(OBJ32)
	ar rcs $@ $^

$(BUILD)/libtapeformer64.a: $(OBJ64)
	ar rcs $@ $^

$(BUILD)/libgradcheck64.a: $(GC64)
	ar rcs $@ $^

$(BUILD)/tapeformer: $(CLI32) $(BUILD)/libtapeformer.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tapeformer64: $(CLI64) $(BUILD)/libgradcheck64.a $(BUILD)/libtapeformer64.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# Unit tests build against the double library: gradients are checked there;
# check_bf16 tests the float build's bf16 products.
$(BUILD)/tests/check_bf16: tests/check_bf16.c tests/testutil.h $(BUILD)/libtapeformer.a | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libtapeformer.a $(CHECKLIBS) $(LDLIBS)

# Unit tests build against the double library: gradients are checked there.
$(BUILD)/tests/%: tests/%.c tests/testutil.h $(BUILD)/libgradcheck64.a $(BUILD)/libtapeformer64.a | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DTX_DOUBLE $< -o $@ $(BUILD)/libgradcheck64.a $(BUILD)/libtapeformer64.a $(CHECKLIBS) $(LDLIBS)

run: all
	$(BUILD)/tapeformer train configs/copy.ini

# The command-level tests run the programs named by TAPEFORMER(64).
test: all $(TESTS)
	@$(TESTENV) TAPEFORMER=$(BUILD)/tapeformer TAPEFORMER64=$(BUILD)/tapeformer64 \
	  bash tests/run.sh $(TESTS)

sanitize:
	$(MAKE) SANITIZE=1 test

# Each harness runs FUZZ_SECONDS from its seeds in fuzz/corpus/NAME, adding
# what it finds to $(BUILD)/corpus/NAME; a crash is saved as
# $(BUILD)/crash-NAME-* and stops the run.
FUZZERS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60

fuzz:
	@$(MAKE) deps DEB_PKGS="$(DEB_PKGS) $(FUZZ_DEB_PKGS)"
	$(MAKE) FUZZ=1 fuzz-run

fuzz-run: $(FUZZERS:%=$(BUILD)/fuzz_%)
	@for f in $(FUZZERS); do \
	  mkdir -p $(BUILD)/corpus/$$f; \
	  echo "== fuzz_$$f for $(FUZZ_SECONDS) s"; \
	  $(BUILD)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $$([ -e fuzz/$$f.dict ] && echo -dict=fuzz/$$f.dict) \
	    -artifact_prefix=$(BUILD)/crash-$$f- $(BUILD)/corpus/$$f fuzz/corpus/$$f \
	    2>&1 | grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|==|SUMMARY)|ERROR|property failed' \
	    || true; \
	  ! ls $(BUILD)/crash-$$f-* >/dev/null 2>&1 || { echo "fuzz_$$f crashed"; exit 1; }; \
	done

$(BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(BUILD)/libtapeformer.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer $< -o $@ $(BUILD)/libtapeformer.a $(LDLIBS)

# `make bench` times training steps and matrix products against PyTorch and
# OpenBLAS (bench/run.py prints the tables; installs them first if missing).
BENCH_DEB_PKGS := python3-torch libopenblas-dev
.PHONY: bench bench-deps
bench: $(BUILD)/bench $(BUILD)/tapeformer corpora
	/usr/bin/python3 bench/run.py $(BUILD)/bench

bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(BENCH_DEB_PKGS)"

$(BUILD)/bench: bench/bench.c $(BUILD)/libtapeformer.a | bench-deps
	$(CC) $(CFLAGS) $$(pkg-config --cflags openblas) $< -o $@ \
	  $(BUILD)/libtapeformer.a $$(pkg-config --libs openblas) $(LDLIBS)

# `make corpora`: the text corpora of configs/fortunes.ini and configs/tang.ini,
# built from Debian packages (installed first if missing) into build/corpora/
# (configs point there; nothing generated is committed).
CORPORA := build/corpora
.PHONY: corpora
corpora: $(CORPORA)/fortunes.txt $(CORPORA)/tang.txt

$(CORPORA)/%.txt: configs/make-corpus.sh
	@$(MAKE) --no-print-directory deps DEB_PKGS="fortunes fortunes-min fortunes-zh"
	@mkdir -p $(CORPORA)
	bash configs/make-corpus.sh $* $@

clean:
	rm -rf $(BUILD)

# ---- install --------------------------------------------------------------------
# `make install PREFIX=DIR` (default /usr/local; DESTDIR for packaging): the
# static library and a shared one with a soname, the double-precision one
# (static, for gradient checks: pkg-config tapeformer64), the public headers under
# include/tapeformer/ (their folders kept; tapeformer.h includes them all),
# tapeformer.pc, both programs and the man page tapeformer(1). The headers
# that only the library's own files share (*/internal.h, core/vmath.h) stay.
PREFIX  ?= /usr/local
VERSION := $(shell sed -n 's/^\#define TX_VERSION "\(.*\)"/\1/p' core/base.h)
SONAME  := libtapeformer.so.$(firstword $(subst ., ,$(VERSION)))
PUBLIC_HDR := tapeformer.h $(filter-out %/internal.h core/vmath.h,$(wildcard $(LIBDIRS:%=%/*.h)))
OBJPIC  := $(SRC:%.c=$(BUILD)/pic/%.o) $(SRCXX:%.cc=$(BUILD)/pic/%.o)
LIBS_PRIVATE = $(LDLIBS) $(if $(NO_OMP),,-lgomp) -lpthread
I       := $(DESTDIR)$(PREFIX)
# pc NAME,WHICH,LIBS,LIBS_PRIVATE,CFLAGS: tapeformer.pc.in filled in
pc = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@NAME@|$(1)|' \
         -e 's|@WHICH@|$(2)|' -e 's|@LIBS@|$(strip $(3))|' -e 's|@LIBS_PRIVATE@|$(strip $(4))|' \
         -e 's|@CFLAGS@|$(if $(5), $(5))|' tapeformer.pc.in

$(BUILD)/pic/%.o: %.c $(HDR) $(FLAGSTAMP) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC $(if $(filter dist/%,$<),$(MPI_CFLAGS)) -c $< -o $@

$(BUILD)/pic/%.o: %.cc $(HDR) $(FLAGSTAMP) | deps
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -fPIC -c $< -o $@

$(BUILD)/libtapeformer.so.$(VERSION): $(OBJPIC)
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) $^ -o $@ $(LDLIBS)

$(BUILD)/tapeformer.1: $(BUILD)/tapeformer $(BUILD)/tapeformer64 tools/man.sh | deps
	bash tools/man.sh $(BUILD)/tapeformer > $@.tmp && mv $@.tmp $@

# What install puts under $(I): uninstall removes exactly this.
INSTALLED = bin/tapeformer bin/tapeformer64 lib/libtapeformer.a lib/libtapeformer64.a \
    lib/libtapeformer.so.$(VERSION) lib/$(SONAME) lib/libtapeformer.so \
    lib/pkgconfig/tapeformer.pc lib/pkgconfig/tapeformer64.pc share/man/man1/tapeformer.1 \
    include/tapeformer
# the dynamic linker's cache, for the system prefixes it searches
LDCONFIG = case "$(DESTDIR)$(PREFIX)" in /usr|/usr/local) [ "$$(id -u)" != 0 ] || ldconfig ;; esac

install: all $(BUILD)/libtapeformer.so.$(VERSION) $(BUILD)/tapeformer.1
	install -d $(I)/bin $(I)/lib/pkgconfig $(I)/include/tapeformer $(I)/share/man/man1
	install -m 755 $(BUILD)/tapeformer $(BUILD)/tapeformer64 $(I)/bin/
	install -m 644 $(BUILD)/libtapeformer.a $(BUILD)/libtapeformer64.a $(I)/lib/
	install -m 755 $(BUILD)/libtapeformer.so.$(VERSION) $(I)/lib/
	ln -sf libtapeformer.so.$(VERSION) $(I)/lib/$(SONAME)
	ln -sf $(SONAME) $(I)/lib/libtapeformer.so
	for h in $(PUBLIC_HDR); do install -D -m 644 $$h $(I)/include/tapeformer/$$h || exit 1; done
	$(call pc,tapeformer,,-ltapeformer,$(LIBS_PRIVATE),) > $(I)/lib/pkgconfig/tapeformer.pc
	$(call pc,tapeformer64, (tx_real = double: gradcheck; static),-ltapeformer64 \
	    $(LIBS_PRIVATE),,-DTX_DOUBLE) > $(I)/lib/pkgconfig/tapeformer64.pc
	install -m 644 $(BUILD)/tapeformer.1 $(I)/share/man/man1/
	@$(LDCONFIG)

uninstall:
	rm -rf $(addprefix $(I)/,$(INSTALLED))
	@$(LDCONFIG)
