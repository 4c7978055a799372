//! The kernel's uhid interface: a HID device whose reports this process writes and whose
//! requests (output reports, feature-report reads) it answers, so the kernel's own driver
//! for the real device (hid-playstation) binds to it and makes the pad, its motion sensors
//! and touchpad as for the real one.
//!
//! Written here rather than taken from a crate: the one uhid crate (uhid-virt, 0.0.x) keeps
//! its file descriptor to itself, and the control thread must poll it beside its socket.
//! The event layouts are `struct uhid_event` of `<linux/uhid.h>` (packed); [`Event`] is
//! their sans-IO decoding, tested against those offsets.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

/// `sizeof(struct uhid_event)`: the type and the largest request (CREATE2's 4372 bytes).
const EVENT_SIZE: usize = 4 + 4372;
/// A report's bytes at most.
const DATA_MAX: usize = 4096;

const UHID_DESTROY: u32 = 1;
const UHID_START: u32 = 2;
const UHID_STOP: u32 = 3;
const UHID_OPEN: u32 = 4;
const UHID_CLOSE: u32 = 5;
const UHID_OUTPUT: u32 = 6;
const UHID_GET_REPORT: u32 = 9;
const UHID_GET_REPORT_REPLY: u32 = 10;
const UHID_CREATE2: u32 = 11;
const UHID_INPUT2: u32 = 12;
const UHID_SET_REPORT: u32 = 13;
const UHID_SET_REPORT_REPLY: u32 = 14;
const BUS_USB: u16 = 0x03;

/// What the kernel asks of the device.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The driver bound (START) or let go (STOP); someone opened or closed it.
    Start,
    Stop,
    Open,
    Close,
    /// An output report the driver (or a program through hidraw) sent the device.
    Output(Vec<u8>),
    /// The driver reads feature report `report`: answer with [`Uhid::reply_report`] and `id`.
    GetReport {
        id: u32,
        report: u8,
    },
    /// The driver writes a feature or output report: answer with [`Uhid::reply_set`].
    SetReport {
        id: u32,
        report: u8,
        data: Vec<u8>,
    },
    /// Anything newer or legacy.
    Other(u32),
}

impl Event {
    /// Decodes one event read from /dev/uhid; `None` if too short to hold its request.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let u32_at = |at: usize| Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?));
        let u16_at = |at: usize| Some(usize::from(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?)));
        Some(match u32_at(0)? {
            UHID_START => Self::Start,
            UHID_STOP => Self::Stop,
            UHID_OPEN => Self::Open,
            UHID_CLOSE => Self::Close,
            UHID_OUTPUT => {
                let size = u16_at(4 + DATA_MAX)?.min(DATA_MAX);
                Self::Output(b.get(4..4 + size)?.to_vec())
            }
            UHID_GET_REPORT => Self::GetReport { id: u32_at(4)?, report: *b.get(8)? },
            UHID_SET_REPORT => {
                let size = u16_at(10)?.min(DATA_MAX);
                Self::SetReport { id: u32_at(4)?, report: *b.get(8)?, data: b.get(12..12 + size)?.to_vec() }
            }
            other => Self::Other(other),
        })
    }
}

/// What a new device says it is.
pub struct Identity<'a> {
    pub name: &'a str,
    pub uniq: &'a str,
    pub vendor: u32,
    pub product: u32,
    pub version: u32,
    pub descriptor: &'a [u8],
}

/// CREATE2 for a USB device.
pub fn create_event(id: &Identity) -> Vec<u8> {
    let mut e = vec![0u8; EVENT_SIZE];
    e[..4].copy_from_slice(&UHID_CREATE2.to_le_bytes());
    let mut put = |at: usize, max: usize, s: &[u8]| e[at..at + s.len().min(max - 1)].copy_from_slice(&s[..s.len().min(max - 1)]);
    put(4, 128, id.name.as_bytes());
    put(196, 64, id.uniq.as_bytes());
    let rd = &id.descriptor[..id.descriptor.len().min(DATA_MAX)];
    e[260..262].copy_from_slice(&(rd.len() as u16).to_le_bytes());
    e[262..264].copy_from_slice(&BUS_USB.to_le_bytes());
    for (at, v) in [(264, id.vendor), (268, id.product), (272, id.version)] {
        e[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    e[280..280 + rd.len()].copy_from_slice(rd);
    e
}

/// INPUT2: one input report.
pub fn input_event(report: &[u8]) -> Vec<u8> {
    let report = &report[..report.len().min(DATA_MAX)];
    let mut e = Vec::with_capacity(6 + report.len());
    e.extend_from_slice(&UHID_INPUT2.to_le_bytes());
    e.extend_from_slice(&(report.len() as u16).to_le_bytes());
    e.extend_from_slice(report);
    e
}

/// GET_REPORT_REPLY: `data` (the report, its id first), or an error (an errno) without.
pub fn get_reply_event(id: u32, data: Result<&[u8], u16>) -> Vec<u8> {
    let (err, data) = match data {
        Ok(d) => (0, &d[..d.len().min(DATA_MAX)]),
        Err(errno) => (errno, &[][..]),
    };
    let mut e = Vec::with_capacity(12 + data.len());
    e.extend_from_slice(&UHID_GET_REPORT_REPLY.to_le_bytes());
    e.extend_from_slice(&id.to_le_bytes());
    e.extend_from_slice(&err.to_le_bytes());
    e.extend_from_slice(&(data.len() as u16).to_le_bytes());
    e.extend_from_slice(data);
    e
}

/// SET_REPORT_REPLY.
pub fn set_reply_event(id: u32, err: u16) -> Vec<u8> {
    [&UHID_SET_REPORT_REPLY.to_le_bytes()[..], &id.to_le_bytes(), &err.to_le_bytes()].concat()
}

/// One uhid device: created on open, destroyed when dropped (closing the file destroys it too).
pub struct Uhid {
    file: File,
}

impl Uhid {
    pub fn create(id: &Identity) -> std::io::Result<Self> {
        let mut file = std::fs::OpenOptions::new().read(true).write(true).custom_flags(nix::libc::O_NONBLOCK).open("/dev/uhid")?;
        file.write_all(&create_event(id))?;
        Ok(Self { file })
    }

    pub fn input(&mut self, report: &[u8]) -> std::io::Result<()> {
        self.file.write_all(&input_event(report))
    }

    pub fn reply_report(&mut self, id: u32, data: Result<&[u8], u16>) -> std::io::Result<()> {
        self.file.write_all(&get_reply_event(id, data))
    }

    pub fn reply_set(&mut self, id: u32, err: u16) -> std::io::Result<()> {
        self.file.write_all(&set_reply_event(id, err))
    }

    /// The next event the kernel has for the device, `None` when there is none now.
    pub fn read(&mut self) -> std::io::Result<Option<Event>> {
        let mut buf = vec![0u8; EVENT_SIZE];
        match self.file.read(&mut buf) {
            Ok(n) => Ok(Some(Event::parse(&buf[..n]).unwrap_or(Event::Other(u32::MAX)))),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl AsFd for Uhid {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Drop for Uhid {
    fn drop(&mut self) {
        let _ = self.file.write_all(&UHID_DESTROY.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create2_is_laid_out_as_the_kernel_reads_it() {
        let e = create_event(&Identity {
            name: "pad",
            uniq: "aa:bb",
            vendor: 0x054c,
            product: 0x0ce6,
            version: 0x8111,
            descriptor: &[5, 1, 9, 5],
        });
        assert_eq!(e.len(), 4376);
        assert_eq!(&e[..4], &11u32.to_le_bytes());
        assert_eq!(&e[4..8], b"pad\0");
        assert_eq!(&e[196..202], b"aa:bb\0");
        assert_eq!(&e[260..264], &[4, 0, 3, 0], "descriptor size, then the USB bus");
        assert_eq!(&e[264..276], &[0x4c, 0x05, 0, 0, 0xe6, 0x0c, 0, 0, 0x11, 0x81, 0, 0]);
        assert_eq!(&e[280..285], &[5, 1, 9, 5, 0]);
        // A name longer than its field keeps its terminating zero.
        let long = "x".repeat(300);
        let e = create_event(&Identity { name: &long, uniq: "", vendor: 0, product: 0, version: 0, descriptor: &[] });
        assert_eq!((e[4 + 126], e[4 + 127]), (b'x', 0));
    }

    #[test]
    fn requests_parse_and_replies_are_laid_out() {
        let mut get = vec![0u8; EVENT_SIZE];
        get[..4].copy_from_slice(&9u32.to_le_bytes());
        get[4..8].copy_from_slice(&77u32.to_le_bytes());
        get[8] = 0x05;
        assert_eq!(Event::parse(&get), Some(Event::GetReport { id: 77, report: 5 }));
        let mut output = vec![0u8; EVENT_SIZE];
        output[..4].copy_from_slice(&6u32.to_le_bytes());
        output[4..7].copy_from_slice(&[2, 0xaa, 0xbb]);
        output[4100..4102].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(Event::parse(&output), Some(Event::Output(vec![2, 0xaa, 0xbb])));
        // A size past the data is clamped, a short read is no event.
        output[4100..4102].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(Event::parse(&output).map(|e| matches!(e, Event::Output(d) if d.len() == 4096)), Some(true));
        assert_eq!(Event::parse(&output[..100]), None);
        assert_eq!(Event::parse(&2u32.to_le_bytes()), Some(Event::Start));
        assert_eq!(get_reply_event(77, Ok(&[5, 1])), [10, 0, 0, 0, 77, 0, 0, 0, 0, 0, 2, 0, 5, 1]);
        assert_eq!(get_reply_event(78, Err(5)), [10, 0, 0, 0, 78, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(input_event(&[1, 2]), [12, 0, 0, 0, 2, 0, 1, 2]);
    }
}
