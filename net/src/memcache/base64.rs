//! Standard base64 (RFC 4648, padded) for the meta protocol's binary keys (`b` flag).
//! Decoding is strict: padding required, no whitespace, no stray bits, so the key a client
//! sent is exactly what encoding the decoded key gives back.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn sextet(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes `src`; `None` if it is not canonical padded base64 or decodes to nothing.
pub fn decode(src: &[u8]) -> Option<Vec<u8>> {
    if src.is_empty() || !src.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let chunks = src.len() / 4;
    for (i, chunk) in src.chunks_exact(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | sextet(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Bits past the last whole byte must be zero, or two encodings name one key.
        if bytes[3 - pad..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    (!out.is_empty()).then_some(out)
}

/// Appends the padded encoding of `src` to `out`.
pub fn encode_into(src: &[u8], out: &mut Vec<u8>) {
    for chunk in src.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]);
            } else {
                out.push(b'=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(src, &mut out);
        out
    }

    #[test]
    fn rfc4648_vectors() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (plain, coded) in cases {
            assert_eq!(enc(plain), coded);
            assert_eq!(decode(coded).as_deref(), Some(plain));
        }
    }

    #[test]
    fn binary_round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&enc(&all)), Some(all));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b""[..],
            b"Zg",
            b"Zg=",
            b"Z===",
            b"Zg==Zg==",
            b"Zm9=",
            b"Zh==",
            b"Zm 9",
            b"Zm9\n",
            b"====",
            b"Zm-v",
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
