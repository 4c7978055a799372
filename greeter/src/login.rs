//! The conversation with greetd (its IPC: `create_session`, then one answer per PAM prompt,
//! then `start_session`), as a state machine fed greetd's responses and what the user
//! typed, with the requests to send and what to show as output.

use greetd_ipc::{AuthMessageType, ErrorType, Request, Response};
use std::collections::VecDeque;

/// What the screen shows now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Screen {
    /// The question, as PAM (or the greeter) words it: "Password: ".
    pub prompt: String,
    /// What the user typed so far is a secret: shown masked.
    pub secret: bool,
    /// The last message (PAM's information or error, or why a login failed).
    pub message: Option<String>,
    /// Waiting on greetd: typing is held back.
    pub busy: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Asking for the user name (the greeter's own question).
    User,
    /// greetd waits for the answer to a PAM prompt.
    Answer,
    /// A request is out; its response decides what comes next.
    Waiting(Pending),
    /// The session was started: the greeter's work is done.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    /// `create_session` or a prompt's answer: PAM goes on (another prompt, or success).
    Auth,
    /// `start_session`.
    Start,
    /// `cancel_session` after a failure: then ask for the user again.
    Cancel,
}

/// One login, over as many tries as the user needs.
pub struct Login {
    stage: Stage,
    screen: Screen,
    /// The session command to start once PAM agrees, and its environment.
    session: Vec<String>,
    env: Vec<String>,
    out: VecDeque<Request>,
}

const USER_PROMPT: &str = "User name: ";

impl Login {
    /// A login that starts `session` (argv, joined by greetd into `sh -c`) with `env`.
    pub fn new(session: Vec<String>, env: Vec<String>) -> Self {
        let screen = Screen { prompt: USER_PROMPT.into(), ..Screen::default() };
        Self { stage: Stage::User, screen, session, env, out: VecDeque::new() }
    }

    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The session started: the greeter exits (greetd starts it once it has).
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// The next request to send greetd; each is answered by one response ([`Login::handle`]).
    pub fn poll_request(&mut self) -> Option<Request> {
        self.out.pop_front()
    }

    /// The user pressed Enter on `text`. Ignored while waiting on greetd.
    pub fn submit(&mut self, text: String) {
        match self.stage {
            Stage::User if !text.trim().is_empty() => {
                self.send(Request::CreateSession { username: text.trim().to_owned() }, Pending::Auth);
            }
            Stage::Answer => self.send(Request::PostAuthMessageResponse { response: Some(text) }, Pending::Auth),
            _ => {}
        }
    }

    /// The user gave up on this try (Escape): back to the user name.
    pub fn cancel(&mut self) {
        if self.stage == Stage::Answer {
            self.screen.message = None;
            self.send(Request::CancelSession, Pending::Cancel);
        }
    }

    /// greetd's response to the last request.
    pub fn handle(&mut self, response: Response) {
        let Stage::Waiting(pending) = self.stage else { return };
        self.screen.busy = false;
        match (pending, response) {
            (Pending::Auth, Response::AuthMessage { auth_message_type, auth_message }) => match auth_message_type {
                AuthMessageType::Visible | AuthMessageType::Secret => {
                    self.stage = Stage::Answer;
                    self.screen.prompt = auth_message;
                    self.screen.secret = matches!(auth_message_type, AuthMessageType::Secret);
                }
                // Information and errors from PAM are shown and acknowledged at once.
                AuthMessageType::Info | AuthMessageType::Error => {
                    self.screen.message = Some(auth_message);
                    self.send(Request::PostAuthMessageResponse { response: None }, Pending::Auth);
                }
            },
            (Pending::Auth, Response::Success) => {
                self.screen.prompt = "Starting the session…".into();
                self.screen.secret = false;
                // greetd joins the words with spaces into `sh -c`: each goes quoted.
                let cmd = self.session.iter().map(|w| format!("'{}'", w.replace('\'', r"'\''"))).collect();
                self.send(Request::StartSession { cmd, env: self.env.clone() }, Pending::Start);
            }
            (Pending::Start, Response::Success) => self.stage = Stage::Done,
            (Pending::Cancel, _) => self.ask_user(),
            (_, Response::Error { error_type, description }) => {
                self.screen.message = Some(match error_type {
                    ErrorType::AuthError => "Login incorrect".to_owned(),
                    ErrorType::Error => description,
                });
                // A failed session must be cancelled before the next one is created.
                self.send(Request::CancelSession, Pending::Cancel);
            }
            (Pending::Start, Response::AuthMessage { .. }) => {
                self.screen.message = Some("greetd answered out of turn".into());
                self.send(Request::CancelSession, Pending::Cancel);
            }
        }
    }

    fn send(&mut self, request: Request, pending: Pending) {
        self.out.push_back(request);
        self.stage = Stage::Waiting(pending);
        self.screen.busy = true;
    }

    fn ask_user(&mut self) {
        self.stage = Stage::User;
        self.screen.prompt = USER_PROMPT.into();
        self.screen.secret = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(kind: AuthMessageType, text: &str) -> Response {
        Response::AuthMessage { auth_message_type: kind, auth_message: text.into() }
    }

    fn sent(login: &mut Login) -> Vec<String> {
        std::iter::from_fn(|| login.poll_request()).map(|r| format!("{r:?}")).collect()
    }

    #[test]
    fn a_wrong_password_then_the_right_one() {
        let mut login = Login::new(vec!["sway".into()], vec!["XDG_SESSION_TYPE=wayland".into()]);
        assert_eq!(login.screen().prompt, "User name: ");
        login.submit("  ".into());
        assert!(sent(&mut login).is_empty(), "no empty user name");
        login.submit("ann".into());
        assert_eq!(sent(&mut login), [r#"CreateSession { username: "ann" }"#]);
        assert!(login.screen().busy);
        login.submit("typed ahead".into());
        assert!(sent(&mut login).is_empty(), "nothing goes out while greetd thinks");
        login.handle(prompt(AuthMessageType::Secret, "Password: "));
        assert_eq!((login.screen().prompt.as_str(), login.screen().secret), ("Password: ", true));
        login.submit("wrong".into());
        assert_eq!(sent(&mut login), [r#"PostAuthMessageResponse { response: Some("wrong") }"#]);
        login.handle(Response::Error { error_type: ErrorType::AuthError, description: "pam".into() });
        assert_eq!(login.screen().message.as_deref(), Some("Login incorrect"));
        assert_eq!(sent(&mut login), ["CancelSession"], "a failed session is cancelled first");
        login.handle(Response::Success);
        assert_eq!((login.screen().prompt.as_str(), login.screen().secret), ("User name: ", false));

        login.submit("ann".into());
        login.handle(prompt(AuthMessageType::Info, "Last login: never"));
        assert_eq!(login.screen().message.as_deref(), Some("Last login: never"));
        login.handle(prompt(AuthMessageType::Secret, "Password: "));
        login.submit("right".into());
        login.handle(Response::Success);
        login.handle(Response::Success);
        assert!(login.is_done());
        assert_eq!(
            sent(&mut login),
            [
                r#"CreateSession { username: "ann" }"#,
                "PostAuthMessageResponse { response: None }",
                r#"PostAuthMessageResponse { response: Some("right") }"#,
                r#"StartSession { cmd: ["'sway'"], env: ["XDG_SESSION_TYPE=wayland"] }"#,
            ]
        );
    }

    #[test]
    fn escape_goes_back_to_the_user_name() {
        let mut login = Login::new(vec!["sh".into()], Vec::new());
        login.submit("ann".into());
        login.handle(prompt(AuthMessageType::Visible, "Token: "));
        assert!(!login.screen().secret);
        login.cancel();
        assert_eq!(sent(&mut login), [r#"CreateSession { username: "ann" }"#, "CancelSession"]);
        login.handle(Response::Success);
        assert_eq!(login.screen().prompt, "User name: ");
        assert!(!login.is_done());
    }

    #[test]
    fn greetd_out_of_turn_starts_over() {
        let mut login = Login::new(vec!["sh".into()], Vec::new());
        login.handle(Response::Success);
        assert!(sent(&mut login).is_empty(), "nothing was asked");
        login.submit("ann".into());
        login.poll_request();
        login.handle(Response::Error { error_type: ErrorType::Error, description: "no such user".into() });
        assert_eq!(login.screen().message.as_deref(), Some("no such user"));
        assert_eq!(sent(&mut login), ["CancelSession"]);
    }
}
