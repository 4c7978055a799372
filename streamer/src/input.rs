//! Input events as they travel from a stream's client to the compositor's seat. The type is
//! core's: punktfunk/1 clients send the same events over their control connection.

pub use punktfunk_core::input::InputEvent;
