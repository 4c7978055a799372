//! `punktfunk-greeter`: the login screen of a stream to a machine nobody is logged in to.
//! greetd runs it; it asks for a user name, shows what PAM asks (passwords masked), and
//! starts the user's session once PAM agrees.
//!
//! [`login`] is the conversation with greetd as a state machine (no I/O: it is fed greetd's
//! answers and the user's entries, and says what to send); [`screen`] draws what it shows.

pub mod login;
pub mod screen;
