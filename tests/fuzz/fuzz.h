/*
 * fuzz.h — what every fuzz target shares: the libFuzzer entry points and a check macro.
 *
 * A failed check is a bug in ddlguard (never in the input): it prints what broke and
 * aborts, which libFuzzer reports as a crash with the input that caused it. Targets check
 * invariants of their own (a parse that round-trips, bytes that are neither lost nor
 * invented) on top of what AddressSanitizer, UBSan and LeakSanitizer see.
 */
#ifndef DDLG_FUZZ_H
#define DDLG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...) do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); \
			abort(); \
		} \
	} while (0)

#endif
