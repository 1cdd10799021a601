# Builds the libFuzzer targets with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# from the project's sources, into $(WORK) (tests/fuzz/work/ by default, not in git).
# tests/fuzz/run.sh runs it; by hand: make -f tests/fuzz/fuzz.mk -j2
# The project's own build (configure, Makefile.am) is not involved.

SRC := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
WORK ?= $(SRC)/tests/fuzz/work
CC := clang
SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
# The libraries of Makefile.am's DDLG_LIBS (configure.ac names them), and protobuf-c,
# whose runtime the parse tree code calls directly.
PKGS := libevent libevent_openssl openssl libpq lua5.4 libidn libprotobuf-c
CFLAGS := -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
	-I$(SRC) $(shell pkg-config --cflags $(PKGS)) -DFUZZ_SRCDIR='"$(SRC)"'
LIBS := $(shell pkg-config --libs $(PKGS)) -lpg_query -lm

PROJECT := protocol/pgw protocol/scram proxy/relay policies/statement policies/tree \
	policies/override policies/engine policies/verdict
TARGETS := fuzz_pgw_header fuzz_pgw_startup fuzz_pgw_error fuzz_pgw_sasl fuzz_scram \
	fuzz_relay fuzz_statement fuzz_policy
OBJ := $(PROJECT:%=$(WORK)/obj/%.o)

all: $(TARGETS:%=$(WORK)/bin/%)

$(WORK)/obj/%.o: $(SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -MMD -MP -c $< -o $@

# The fuzz targets themselves must compile without a warning.
$(WORK)/obj/tests/fuzz/%.o: $(SRC)/tests/fuzz/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Werror $(SAN) -MMD -MP -c $< -o $@

$(WORK)/bin/%: $(WORK)/obj/tests/fuzz/%.o $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LIBS)

.PHONY: all
.SECONDARY:
-include $(OBJ:.o=.d) $(TARGETS:%=$(WORK)/obj/tests/fuzz/%.d)
