//! Little binary helpers shared by the WAL, block and part formats: varints, zigzag, fixed-width
//! integers, and a bounds-checked reader that turns truncated input into an error instead of a panic.

use crate::StoreError;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over a byte slice whose every read is bounds-checked.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn corrupt(what: &str) -> StoreError {
        StoreError::Corrupt(format!("truncated {what}"))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.remaining() < n {
            return Err(Self::corrupt("bytes"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, StoreError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(self.u64()? as i64)
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, StoreError> {
        // Most of a block header's varints (deltas, lengths) are one or two bytes.
        match self.buf.get(self.pos..) {
            Some(&[b0, ..]) if b0 < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b0))
            }
            Some(&[b0, b1, ..]) if b1 < 0x80 => {
                self.pos += 2;
                Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7))
            }
            _ => self.varint_slow(),
        }
    }

    fn varint_slow(&mut self) -> Result<u64, StoreError> {
        // One pass over the remaining bytes, without a bounds check per byte.
        let rest = &self.buf[self.pos..];
        let mut v: u64 = 0;
        for (i, &b) in rest.iter().take(10).enumerate() {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.pos += i + 1;
                return Ok(v);
            }
        }
        if rest.len() < 10 {
            Err(Self::corrupt("varint"))
        } else {
            Err(StoreError::Corrupt("varint too long".into()))
        }
    }
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_overlong_varint_is_an_error() {
        assert!(Reader::new(&[0xFF; 11]).varint().is_err());
        assert!(Reader::new(&[0x80; 10]).varint().is_err());
    }

    proptest! {
        #[test]
        fn varint_roundtrip(v: u64) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            prop_assert_eq!(Reader::new(&buf).varint().unwrap(), v);
        }

        /// A varint cut short anywhere is an error, never a value.
        #[test]
        fn truncated_varint_is_an_error(v in 128u64.., cut in 0usize..9) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let cut = cut.min(buf.len() - 1);
            prop_assert!(Reader::new(&buf[..cut]).varint().is_err());
        }

        #[test]
        fn zigzag_roundtrip(v: i64) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }

        /// Varints one after another, short ones (the fast path) and any, read back in order to
        /// the end, and nothing after it.
        #[test]
        fn varints_read_in_sequence(vs in proptest::collection::vec(
            prop_oneof![0u64..128, 128u64..16_384, 16_384u64..1 << 21, any::<u64>()], 0..64)) {
            let mut buf = Vec::new();
            for v in &vs {
                put_varint(&mut buf, *v);
            }
            let mut r = Reader::new(&buf);
            for v in &vs {
                prop_assert_eq!(r.varint().unwrap(), *v);
            }
            prop_assert_eq!(r.remaining(), 0);
            prop_assert!(r.varint().is_err());
        }

        #[test]
        fn reader_never_panics(bytes: Vec<u8>) {
            let mut r = Reader::new(&bytes);
            while r.varint().is_ok() {}
        }
    }
}
