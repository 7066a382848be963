//! An encoder for AWS's binary event stream (`application/vnd.amazon.eventstream`), written
//! from the format's description rather than with AWS's crate, so the gateway's decoder is
//! checked against a second implementation.
//!
//! A message is `total length (u32) | headers length (u32) | CRC32 of those 8 bytes |
//! headers | payload | CRC32 of everything before it`, all big-endian. A header is
//! `name length (u8) | name | value type (u8) | value`; string values (type 7) are
//! `length (u16) | UTF-8`.

use bytes::Bytes;

/// Header value type 7: a UTF-8 string.
const TYPE_STRING: u8 = 7;

/// One message with string headers.
///
/// Names longer than 255 bytes and values longer than 32767 bytes are cut (the format's
/// limits); a test fixture never needs them.
#[must_use]
pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut encoded = Vec::new();
    for (name, value) in headers {
        let name = &name.as_bytes()[..name.len().min(usize::from(u8::MAX))];
        let value = &value.as_bytes()[..value.len().min(i16::MAX as usize)];
        encoded.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        encoded.extend_from_slice(name);
        encoded.push(TYPE_STRING);
        encoded.extend_from_slice(&u16::try_from(value.len()).unwrap_or(0).to_be_bytes());
        encoded.extend_from_slice(value);
    }
    let total = 12 + encoded.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(encoded.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&encoded);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `valid_no_headers` from AWS's event-stream test data.
    #[test]
    fn matches_aws_test_data() {
        let expected: [u8; 36] = [
            0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x51, 0x63, 0x56, 0xad, b'a', b'n',
            b'o', b't', b'h', b'e', b'r', b' ', b't', b'e', b's', b't', b' ', b'p', b'a', b'y',
            b'l', b'o', b'a', b'd', 0x8d, 0xf8, 0x0e, 0x65,
        ];
        assert_eq!(&frame(&[], b"another test payload")[..], &expected[..]);
    }

    #[test]
    fn string_headers() {
        let f = frame(&[(":event-type", "x")], b"{}");
        // 12 prelude + (1 + 11 + 1 + 2 + 1) headers + 2 payload + 4 crc.
        assert_eq!(f.len(), 34);
        assert_eq!(&f[..8], &[0, 0, 0, 34, 0, 0, 0, 16]);
        assert_eq!(&f[12..14], &[11, b':']);
        assert_eq!(f[24], TYPE_STRING);
        assert_eq!(&f[25..28], &[0, 1, b'x']);
    }
}
