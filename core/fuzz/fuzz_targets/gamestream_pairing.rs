//! Arbitrary stages 2–4 of a GameStream pairing, in any order and length, after stage 1
//! with a real client certificate: refused with an error, never a panic, and garbage never
//! pairs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use punktfunk_core::gamestream::pairing::Pairing;

/// A throwaway self-signed RSA certificate (its key is not kept): the client's in stage 1.
const CLIENT_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIDDTCCAfWgAwIBAgIUf+KjEmsMR8CHoRT/ylyLYK5NLeQwDQYJKoZIhvcNAQEL\n\
BQAwFjEUMBIGA1UEAwwLZnV6eiBjbGllbnQwHhcNMjYxMjA0MDE0NDUwWhcNMzYx\n\
MjAxMDE0NDUwWjAWMRQwEgYDVQQDDAtmdXp6IGNsaWVudDCCASIwDQYJKoZIhvcN\n\
AQEBBQADggEPADCCAQoCggEBALYvGPC9fSnA60y2wY16XJbIlSi/z8T0LUGx5IK4\n\
MghEQBPPFpjF32BxDcrubEsrKLvWh9hwSFS+GhIdlvJBN0ZIUqXLjDA0Vj3OxDLn\n\
HTlnlUhRrft196MGNT0xcPWG43eOcDiMVrWyV+h3V7JXAIzSlaJDzxS9ctkMClY+\n\
07uwBRmsR8o9bBd2oy0BzjFq4ky6LDA0Vi7OF5k4TNOxIzB8CsnwL1kYu6MfvCXl\n\
vblSvQT27//4twWpnU4kq/eq8Ji76ZUZ9ftcurMlWXcSXbfRDFMFXoQFFUcAFG+s\n\
KsbUYfGCmnp04gPxvbFAMzvJA4JO29DaD7eOBAUy49jDYDkCAwEAAaNTMFEwHQYD\n\
VR0OBBYEFB3KAQDjJkc2lhrcc2gWX6ck+YpcMB8GA1UdIwQYMBaAFB3KAQDjJkc2\n\
lhrcc2gWX6ck+YpcMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQELBQADggEB\n\
AFQaxZfNvgYSg1xDsJhUaVY+0j3ZcqmRGKAjWbZNf4HUyK7bhLcbAVwgBh7oktN0\n\
E4RRtbZghbN8EkjlKszBtFZ/6z0++zeRQ0z2BMQ6T5H4ivnHnr7tr/DP+cUmFsTM\n\
s2ZSCCzi8EHP+XejdexXy3ldpVzg9Bsw0PUb1RiGsriy9H2YrjA8eDkhegxfcfp6\n\
ZsnaMa9wudJAjrEgkqWsV9FNq3G5lgGvkmGqJhhdpyoXHa2pgWvqh5tA4fEWyyZc\n\
BZ4HkLD4R6oeUFi3Q/b5b+MfphDYQDyQkvjUVI91+A8We+D2uvj8uGcGky4dpoJY\n\
FkWN3Jpeyzc3rK20vlHiqXI=\n\
-----END CERTIFICATE-----\n\
";

fuzz_target!(|data: &[u8]| {
    let mut pairing = Pairing::new(&[7; 16], "1234", CLIENT_CERT).expect("the test certificate parses");
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let len = usize::from(op >> 2).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        match op & 3 {
            0 => drop(pairing.client_challenge(&[1; 256], bytes)),
            1 => drop(pairing.server_challenge_resp(|_| vec![2; 256], bytes)),
            2 => assert!(pairing.client_pairing_secret(bytes).is_err(), "garbage paired"),
            _ => {}
        }
    }
});
