//! The queue between libbpf's record callbacks and a reader's `drain`: records are copied out of
//! the kernel's buffer in the callback and handed out one by one, so a caller can stop in the
//! middle and go on later (ring buffers and perf buffers alike).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::rc::Rc;

/// Records waiting to be handed out, shared with the callback that fills it.
#[derive(Default, Clone)]
pub(super) struct RecordQueue(Rc<RefCell<VecDeque<Vec<u8>>>>);

impl RecordQueue {
    /// Queues a copy of `record` (called from libbpf's callback).
    pub(super) fn push(&self, record: &[u8]) {
        self.0.borrow_mut().push_back(record.to_vec());
    }

    /// Hands queued records to `f` until it breaks or the queue is empty; returns how many were
    /// handed out.
    pub(super) fn drain(&self, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> u64 {
        let mut n = 0;
        loop {
            // The borrow ends with this statement: `f` may run while the callback queues more.
            let Some(record) = self.0.borrow_mut().pop_front() else {
                break;
            };
            n += 1;
            if f(&record).is_break() {
                break;
            }
        }
        n
    }
}
