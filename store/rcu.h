#pragma once
/*
 * Read-copy-update for the store, on liburcu's membarrier flavour: read-side sections cost
 * a thread-local increment, writers publish with a release store and free what they replaced
 * only after every reader that might still see it has left its section.
 *
 * Every thread that calls store_read_lock() must first call store_rcu_thread_online().
 * Sections nest. Never wait for a grace period (store_rcu_synchronize) inside a section.
 *
 * Under ThreadSanitizer (FSD_TSAN) these calls also tell TSan that a grace period orders each
 * reader's accesses before the writer's free, which TSan cannot see through liburcu.
 */
#include <urcu/urcu-memb.h>

struct store_rcu_head;
typedef void (*store_rcu_fn)(struct store_rcu_head *head);

/* Embed in an object to free it after a grace period with store_rcu_defer(). */
struct store_rcu_head {
    struct rcu_head urcu;
    store_rcu_fn fn;
};

void store_rcu_thread_online(void);
void store_rcu_thread_offline(void);

void store_read_lock(void);
void store_read_unlock(void);

/* Blocks until every read-side section that began before the call has ended. */
void store_rcu_synchronize(void);

/* Calls `fn(head)` on liburcu's call_rcu thread after a grace period. Never blocks. */
void store_rcu_defer(struct store_rcu_head *head, store_rcu_fn fn);

/* Blocks until every callback deferred so far has run (teardown and tests). */
void store_rcu_barrier(void);
