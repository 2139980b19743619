#include "rcu.h"

#include <stddef.h>

#ifdef FSD_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char grace_period_token;
#define TSAN_RELEASE()      __tsan_release(&grace_period_token)
#define TSAN_ACQUIRE()      __tsan_acquire(&grace_period_token)
#define TSAN_HANDOFF(head)  __tsan_release(head)
#define TSAN_RECEIVED(head) __tsan_acquire(head)
#else
#define TSAN_RELEASE()      ((void)0)
#define TSAN_ACQUIRE()      ((void)0)
#define TSAN_HANDOFF(head)  ((void)(head))
#define TSAN_RECEIVED(head) ((void)(head))
#endif

void store_rcu_thread_online(void) {
    urcu_memb_register_thread();
}

void store_rcu_thread_offline(void) {
    urcu_memb_unregister_thread();
}

void store_read_lock(void) {
    urcu_memb_read_lock();
}

void store_read_unlock(void) {
    TSAN_RELEASE();
    urcu_memb_read_unlock();
}

void store_rcu_synchronize(void) {
    urcu_memb_synchronize_rcu();
    TSAN_ACQUIRE();
}

static void _run_deferred(struct rcu_head *urcu) {
    struct store_rcu_head *head = caa_container_of(urcu, struct store_rcu_head, urcu);
    /* liburcu's queue hands the object to this thread; TSan cannot see that either. */
    TSAN_RECEIVED(head);
    TSAN_ACQUIRE();
    head->fn(head);
}

void store_rcu_defer(struct store_rcu_head *head, store_rcu_fn fn) {
    head->fn = fn;
    TSAN_HANDOFF(head);
    urcu_memb_call_rcu(&head->urcu, _run_deferred);
}

void store_rcu_barrier(void) {
    urcu_memb_barrier();
    TSAN_ACQUIRE();
}
