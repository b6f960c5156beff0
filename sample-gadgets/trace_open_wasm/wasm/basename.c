// SPDX-License-Identifier: Apache-2.0
/* Copyright (c) The ig-image authors */

/*
 * basename.c - the WASM module of trace_open_wasm.
 *
 * In gadgetInit it gets the `open` data source, looks up its `fname` field, adds a string
 * field `basename` and subscribes to the events. For every event, the callback sets
 * `basename` to the last path component of `fname`:
 *
 *   fname "/etc/passwd"  -> basename "passwd"
 *   fname "notes.txt"    -> basename "notes.txt"
 *   fname "/tmp/dir/"    -> basename ""          (nothing after the last '/')
 *
 * It uses only the `ig` host functions of gadget-image.md §9 and no WASI call beyond what
 * wasi-libc's start-up code imports. Calling convention: scalars are i32/i64; a string or
 * buffer is one i64 = (len << 32) | ptr; handles are u32, 0 = invalid.
 */

#include <stdint.h>
#include <string.h>

#define IG(name) __attribute__((import_module("ig"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

IG(gadgetLog) void gadgetLog(int32_t level, uint64_t msg);
IG(getDataSource) uint32_t getDataSource(uint64_t name);
IG(dataSourceGetField) uint32_t dataSourceGetField(uint32_t ds, uint64_t name);
IG(dataSourceAddField) uint32_t dataSourceAddField(uint32_t ds, uint64_t name, uint32_t kind);
IG(dataSourceSubscribe) uint32_t dataSourceSubscribe(uint32_t ds, uint32_t type, uint32_t prio,
						     uint64_t cb_id);
IG(fieldGetBuffer) int32_t fieldGetBuffer(uint32_t field, uint32_t data, uint32_t kind,
					  uint64_t dst);
IG(fieldSet) uint32_t fieldSet(uint32_t field, uint32_t data, uint32_t kind, uint64_t value);

/* Log levels and field kinds of the API. */
enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum { KIND_STRING = 12 };
/* Subscription type: one callback per event (0 = data, 1 = array, 2 = packet). */
enum { SUBSCRIBE_DATA = 0 };
/* The id passed back to dataSourceCallback for our one subscription. */
enum { OPEN_CALLBACK = 1 };

static uint64_t buf(const void *ptr, uint32_t len)
{
	return ((uint64_t)len << 32) | (uint32_t)(uintptr_t)ptr;
}

static uint64_t str(const char *s)
{
	return buf(s, (uint32_t)strlen(s));
}

static uint32_t fname_field;
static uint32_t basename_field;
/* fname is char[256] in the eBPF event; leave room for a terminating NUL. */
static char fname[512];

EXPORT(gadgetAPIVersion) uint64_t gadgetAPIVersion(void)
{
	return 1;
}

EXPORT(gadgetInit) int32_t gadgetInit(void)
{
	uint32_t ds = getDataSource(str("open"));

	if (!ds) {
		gadgetLog(LOG_ERROR, str("trace_open_wasm: no data source `open`"));
		return 1;
	}
	fname_field = dataSourceGetField(ds, str("fname"));
	if (!fname_field) {
		gadgetLog(LOG_ERROR, str("trace_open_wasm: data source `open` has no field `fname`"));
		return 1;
	}
	basename_field = dataSourceAddField(ds, str("basename"), KIND_STRING);
	if (!basename_field) {
		gadgetLog(LOG_ERROR, str("trace_open_wasm: cannot add field `basename`"));
		return 1;
	}
	if (dataSourceSubscribe(ds, SUBSCRIBE_DATA, 0, OPEN_CALLBACK) != 0) {
		gadgetLog(LOG_ERROR, str("trace_open_wasm: cannot subscribe to `open`"));
		return 1;
	}
	gadgetLog(LOG_DEBUG, str("trace_open_wasm: adding field `basename` to `open`"));
	return 0;
}

EXPORT(dataSourceCallback) void dataSourceCallback(uint64_t cb_id, uint32_t ds, uint32_t data)
{
	int32_t n;
	size_t len, i, start = 0;

	(void)ds;
	if (cb_id != OPEN_CALLBACK)
		return;
	n = fieldGetBuffer(fname_field, data, KIND_STRING, buf(fname, sizeof(fname) - 1));
	if (n < 0)
		return;
	if ((size_t)n > sizeof(fname) - 1)
		n = sizeof(fname) - 1;
	/* The field may carry the NUL padding of the C array: stop at the first NUL. */
	len = strnlen(fname, (size_t)n);
	for (i = 0; i < len; i++)
		if (fname[i] == '/')
			start = i + 1;
	fieldSet(basename_field, data, KIND_STRING, buf(fname + start, (uint32_t)(len - start)));
}
