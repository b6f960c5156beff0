// SPDX-License-Identifier: Apache-2.0
/* Copyright (c) The ig-image authors */

/*
 * basename.c - the WASM module of trace_open_wasm.
 *
 * In gadgetInit it gets the `open` data source, looks up its `fname` field, adds a string
 * field `basename`, reads its parameter `skip-prefix` and subscribes to the events. For every
 * event, the callback sets `basename` to the last path component of `fname`:
 *
 *   fname "/etc/passwd"  -> basename "passwd"
 *   fname "notes.txt"    -> basename "notes.txt"
 *   fname "/tmp/dir/"    -> basename ""          (nothing after the last '/')
 *
 * and drops the event when `fname` starts with `skip-prefix` (not empty), by releasing it
 * with dataSourceRelease(ds, data): ig-image's convention for dropping a single event
 * (docs/wasm.md; upstream's API has no such call).
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
IG(getParamValue) uint32_t getParamValue(uint64_t key, uint64_t dst);
IG(dataSourceRelease) uint32_t dataSourceRelease(uint32_t ds, uint32_t packet);

/* Log levels and field kinds of the API. */
enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum { KIND_STRING = 12 };
/* Subscription types of upstream's API: 1 = data (one callback per event), 2 = array,
 * 3 = packet. */
enum { SUBSCRIBE_DATA = 1 };
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
/* The `skip-prefix` parameter (NUL-terminated: the host writes only the value's bytes). */
static char skip_prefix[256];
static size_t skip_prefix_len;

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
	if (getParamValue(str("skip-prefix"), buf(skip_prefix, sizeof(skip_prefix) - 1)) != 0) {
		gadgetLog(LOG_ERROR, str("trace_open_wasm: no parameter `skip-prefix` (or too long)"));
		return 1;
	}
	skip_prefix_len = strlen(skip_prefix);
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

	if (cb_id != OPEN_CALLBACK)
		return;
	n = fieldGetBuffer(fname_field, data, KIND_STRING, buf(fname, sizeof(fname) - 1));
	if (n < 0)
		return;
	if ((size_t)n > sizeof(fname) - 1)
		n = sizeof(fname) - 1;
	/* The field may carry the NUL padding of the C array: stop at the first NUL. */
	len = strnlen(fname, (size_t)n);
	if (skip_prefix_len && len >= skip_prefix_len &&
	    memcmp(fname, skip_prefix, skip_prefix_len) == 0) {
		dataSourceRelease(ds, data);
		return;
	}
	for (i = 0; i < len; i++)
		if (fname[i] == '/')
			start = i + 1;
	fieldSet(basename_field, data, KIND_STRING, buf(fname + start, (uint32_t)(len - start)));
}
