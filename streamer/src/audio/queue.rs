//! Hands captured chunks from the PipeWire thread to the sender thread: bounded, and when
//! the sender falls behind the oldest chunk goes (late audio is worth less than current).

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub struct Chunk {
    pub samples: Vec<f32>,
    pub captured: Instant,
}

#[derive(Default)]
struct Inner {
    chunks: VecDeque<Chunk>,
    closed: bool,
    dropped: u64,
}

pub struct PcmQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
    capacity: usize,
}

pub enum Pop {
    Chunk(Chunk),
    Empty,
    Closed,
}

impl PcmQueue {
    pub fn new(capacity: usize) -> Self {
        Self { inner: Mutex::default(), ready: Condvar::new(), capacity }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    pub fn push(&self, chunk: Chunk) {
        let mut q = self.lock();
        if q.closed {
            return;
        }
        if q.chunks.len() == self.capacity {
            q.chunks.pop_front();
            q.dropped += 1;
        }
        q.chunks.push_back(chunk);
        self.ready.notify_one();
    }

    /// The oldest chunk, waiting up to `timeout` for one.
    pub fn pop(&self, timeout: Duration) -> Pop {
        let mut q = self.lock();
        self.ready.wait_while_for(&mut q, |q| q.chunks.is_empty() && !q.closed, timeout);
        match q.chunks.pop_front() {
            Some(c) => Pop::Chunk(c),
            None if q.closed => Pop::Closed,
            None => Pop::Empty,
        }
    }

    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Chunks dropped because the consumer fell behind.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_oldest_when_full_and_drains_before_reporting_closed() {
        let q = PcmQueue::new(2);
        let at = Instant::now();
        for i in 0..3 {
            q.push(Chunk { samples: vec![i as f32], captured: at });
        }
        q.close();
        let mut got = Vec::new();
        while let Pop::Chunk(c) = q.pop(Duration::ZERO) {
            got.push(c.samples[0]);
        }
        assert_eq!((got, q.dropped()), (vec![1.0, 2.0], 1));
        assert!(matches!(q.pop(Duration::from_secs(5)), Pop::Closed), "closed does not wait");
    }
}
