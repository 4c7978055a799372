//! Malformed and unauthorised traffic at a running `punktfunk serve`: every front end
//! (HTTP, HTTPS, RTSP, ENet control, punktfunk/1's QUIC and data ports) answers with an
//! error or drops it, and the daemon keeps serving real requests afterwards.

mod common;

use common::start_daemon;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const PORT: u16 = 19989;
const API_PORT: u16 = 19991;
const HTTPS: u16 = PORT - 5;
const RTSP: u16 = PORT + 21;
const CONTROL: u16 = PORT + 10;
/// `common` puts punktfunk/1 at port + 50, its data plane one above.
const NATIVE: u16 = PORT + 50;

/// Sends `bytes` on a fresh TCP connection and returns what came back before the server
/// closed it (every request here is complete or hopeless, so the server always closes).
fn exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn serverinfo_ok() -> bool {
    let r = text(&exchange(PORT, b"GET /serverinfo?uniqueid=0123456789ABCDEF HTTP/1.1\r\nHost: x\r\n\r\n"));
    let ok = r.starts_with("HTTP/1.1 200")
        && r.contains("<root status_code=\"200\">")
        && r.contains("<PairStatus>0</PairStatus>")
        && r.contains(&format!("<punktfunk1Port>{NATIVE}</punktfunk1Port>"));
    if !ok {
        eprintln!("serverinfo answered: {r:?}");
    }
    ok
}

#[test]
fn garbage_everywhere_and_the_host_keeps_serving() {
    let dir = std::env::temp_dir().join(format!("pf-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _daemon = start_daemon(&dir, PORT, API_PORT, &["true".into()], "");
    assert!(serverinfo_ok());

    // HTTP: not HTTP at all, an endless header, a bad query, pairing without its fields,
    // the launch API over plain HTTP, a path that does not exist.
    assert!(!text(&exchange(PORT, b"\x00\x01\x02garbage\r\n\r\n")).starts_with("HTTP/1.1 200"));
    let mut long = b"GET /serverinfo HTTP/1.1\r\nX: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 1 << 20));
    assert!(!text(&exchange(PORT, &long)).contains("status_code=\"200\""));
    assert!(
        text(&exchange(PORT, b"GET /pair?uniqueid=x&phrase=getservercert HTTP/1.1\r\nHost: x\r\n\r\n")).contains("status_code=\"400\"")
    );
    assert!(text(&exchange(PORT, b"GET /pair?uniqueid=x&clientchallenge=zz HTTP/1.1\r\nHost: x\r\n\r\n")).contains("<paired>0</paired>"));
    assert!(
        text(&exchange(PORT, b"GET /launch?appid=1&mode=1x1x1&rikey=00&rikeyid=1 HTTP/1.1\r\nHost: x\r\n\r\n"))
            .contains("status_code=\"401\"")
    );
    assert!(text(&exchange(PORT, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")).starts_with("HTTP/1.1 404"));

    // Management API: nothing without the owner-only token.
    let pin = b"POST /api/v1/pin HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"pin\":\"1234\"}";
    assert!(text(&exchange(API_PORT, pin)).starts_with("HTTP/1.1 401"));
    let mut wrong = b"GET /api/v1/clients HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ".to_vec();
    wrong.extend_from_slice(&[b'0'; 64]);
    wrong.extend_from_slice(b"\r\n\r\n");
    assert!(text(&exchange(API_PORT, &wrong)).starts_with("HTTP/1.1 401"));
    let token = std::fs::read_to_string(dir.join("state/punktfunk/api-token")).unwrap();
    assert_eq!(
        std::fs::metadata(dir.join("state/punktfunk/api-token"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap(),
        0o600
    );
    let right = format!("GET /api/v1/clients HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n", token.trim());
    assert!(text(&exchange(API_PORT, right.as_bytes())).starts_with("HTTP/1.1 200"));

    // Pairing: a device that asks, then leaves, frees its seat at once (it would otherwise
    // wait out the PIN timeout); the user is shown who waits, escapes removed.
    let waiting = || {
        let ask = format!("GET /api/v1/pairing HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n", token.trim());
        let answer = text(&exchange(API_PORT, ask.as_bytes()));
        answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
    };
    let cert = hex::encode("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n");
    let mut asking = TcpStream::connect(("127.0.0.1", PORT)).unwrap();
    let request = format!(
        "GET /pair?uniqueid=1&devicename=tv%1b%5b2J&phrase=getservercert&salt={}&clientcert={cert} HTTP/1.1\r\nHost: x\r\n\r\n",
        "00".repeat(16)
    );
    asking.write_all(request.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !waiting().contains("tv[2J at 127.0.0.1") {
        assert!(Instant::now() < deadline, "the device never waited: {}", waiting());
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(asking);
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiting() != r#"{"devices":[]}"# {
        assert!(Instant::now() < deadline, "a departed device keeps its seat: {}", waiting());
        std::thread::sleep(Duration::from_millis(20));
    }

    // HTTPS: a client that is not TLS at all.
    let _ = exchange(HTTPS, b"GET /serverinfo HTTP/1.1\r\n\r\n");

    // RTSP: no session (454), not RTSP (no answer), a sealed message without a session,
    // a head that never ends.
    assert!(text(&exchange(RTSP, b"OPTIONS rtsp://127.0.0.1 RTSP/1.0\r\nCSeq: 1\r\n\r\n")).starts_with("RTSP/1.0 454"));
    assert!(exchange(RTSP, b"HELLO\r\n\r\n").is_empty());
    assert!(exchange(RTSP, &[0x80, 0, 0, 0x10, 0, 0, 0, 1]).is_empty());
    assert!(exchange(RTSP, &vec![b'A'; 64 * 1024]).is_empty());

    // ENet control: random datagrams, then a well-formed ENet client that matches no
    // session: never answered (its CONNECT takes no slot and gets no reply), so it never
    // connects. Watched for three seconds; the host answers a real client in milliseconds.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for len in [0usize, 1, 4, 12, 48, 1400] {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        udp.send_to(&junk, ("127.0.0.1", CONTROL)).unwrap();
    }
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut client =
        rusty_enet::Host::new(socket, rusty_enet::HostSettings { peer_limit: 1, channel_limit: 0x30, ..Default::default() }).unwrap();
    client.connect(std::net::SocketAddr::from(([127, 0, 0, 1], CONTROL)), 0x30, 0x1234_5678).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut connected = false;
    while Instant::now() < deadline && !connected {
        while let Ok(Some(event)) = client.service() {
            connected |= matches!(event, rusty_enet::Event::Connect { .. });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!connected, "a control connection without a session got an ENet peer");

    // punktfunk/1: junk at the QUIC port (including a QUIC-looking long header) and at the
    // data port, whose hello must be sealed with a start's key.
    for port in [NATIVE, NATIVE + 1] {
        for len in [0usize, 1, 16, 1200, 1500] {
            let mut junk: Vec<u8> = (0..len).map(|i| (i * 53 + 7) as u8).collect();
            if let Some(first) = junk.first_mut() {
                *first = 0xc0;
            }
            udp.send_to(&junk, ("127.0.0.1", port)).unwrap();
        }
        let forged = punktfunk_core::native::audio::AudioSealer::new(&[42; 16], punktfunk_core::native::audio::KIND_HELLO)
            .seal(&[], 0)
            .unwrap()
            .to_vec();
        udp.send_to(&forged, ("127.0.0.1", port)).unwrap();
    }

    let r = text(&exchange(PORT, b"GET /serverinfo?uniqueid=0123456789ABCDEF HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(serverinfo_ok(), "the host stopped serving after hostile input: {r}");
}
