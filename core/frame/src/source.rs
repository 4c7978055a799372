//! What a stream's pipeline asks of the frame source feeding it, whichever source that is
//! (the headless compositor; attach-mode adapters and the login hand-over later): input to
//! inject, a mode to switch to, a complete frame, the end. A stream outlives its sources:
//! when one ends and the next starts, the pipeline points its requests at the new one.

use punktfunk_core::input::InputEvent;
use punktfunk_core::mode::Mode;

/// A request to the source now feeding a stream.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceCommand {
    Input(InputEvent),
    SetMode(Mode),
    /// Render a complete frame at the next refresh even if nothing changed.
    Redraw,
    /// The client's clipboard holds this text: the session's apps paste it.
    Clipboard(String),
    Stop,
}

/// Where a source takes its requests from, as the pipeline holds it.
pub trait SourceControl: Send + Sync {
    /// Queues `command`, waiting while the source's queue is full; false once it is gone.
    fn send(&self, command: SourceCommand) -> bool;
    /// Queues `command` unless the queue is full or the source gone; never waits.
    fn try_send(&self, command: SourceCommand) -> bool;
}
