//! Headless mode's frame files (`frame-NNNNN.ppm`), written on their own thread: the data
//! plane, and the arrival times it records, never wait on the disk.

use crate::decode::Picture;
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

pub struct FrameFiles {
    tx: Option<SyncSender<(u64, Picture)>>,
    writer: Option<JoinHandle<()>>,
}

impl FrameFiles {
    pub fn start(dir: PathBuf) -> std::io::Result<Self> {
        // A few pictures of slack: a disk slower than the stream holds the stream back
        // rather than holding pictures without bound.
        let (tx, rx) = sync_channel::<(u64, Picture)>(8);
        let writer = std::thread::Builder::new().name("frame-files".into()).spawn(move || {
            for (n, p) in rx {
                if let Err(e) = std::fs::write(dir.join(format!("frame-{n:05}.ppm")), p.ppm()) {
                    tracing::warn!("frame file {n}: {e}");
                }
            }
        })?;
        Ok(Self { tx: Some(tx), writer: Some(writer) })
    }

    /// Writes picture `n` (counted from 1).
    pub fn write(&self, n: u64, p: Picture) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((n, p));
        }
    }
}

impl Drop for FrameFiles {
    /// Every file is on disk once the writer is gone.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}
