/* SPDX-License-Identifier: Apache-2.0 */
/* Broken: no license section. */
#include "fixture.h"

SEC("tracepoint/sched/sched_process_exec")
int trace_exec(void *ctx)
{
	return 0;
}
