//! IP addresses and CIDR blocks the way event-ruler recognises them.
//!
//! A string counts as an IP address when it looks like one to event-ruler
//! (`[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+`, or only hex digits and colons with at least one colon)
//! *and* parses. IPv4-mapped IPv6 addresses (`::ffff:a00:1`) are IPv4 addresses, as Java's
//! `InetAddress` makes them. Leading zeros in IPv4 octets are rejected (modern JDKs refuse
//! such ambiguous literals too), so `010.0.0.1` is just a string.
//!
//! Two places use this: a `cidr` operand, and an exact string value in a pattern that is an
//! IP address — event-ruler compiles the latter into a one-address range, so `"::1"` also
//! matches an event's `"0:0:0:0:0:0:0:1"`. In events, only string values can be addresses.
//!
//! CIDR blocks: `addr/bits` with 0–32 bits (IPv4) or 0–128 (IPv6). The block is the usual
//! network (`10.0.0.7/24` covers `10.0.0.0`–`10.0.0.255`, as event-ruler's newest versions
//! compute). IPv4 and IPv6 never match each other.

use std::net::{Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 address as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Ip {
    pub v6: bool,
    pub bits: u128,
}

fn looks_like_v4(s: &str) -> bool {
    let mut parts = 0;
    for part in s.split('.') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        parts += 1;
    }
    parts == 4
}

fn looks_like_v6(s: &str) -> bool {
    s.contains(':') && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
}

/// Parses an IP address literal, or `None` when event-ruler would treat it as a plain string.
pub(crate) fn parse_ip(s: &str) -> Option<Ip> {
    if looks_like_v4(s) {
        let a: Ipv4Addr = s.parse().ok()?;
        return Some(Ip { v6: false, bits: u32::from(a) as u128 });
    }
    if looks_like_v6(s) {
        let a: Ipv6Addr = s.parse().ok()?;
        if let Some(v4) = a.to_ipv4_mapped() {
            return Some(Ip { v6: false, bits: u32::from(v4) as u128 });
        }
        return Some(Ip { v6: true, bits: u128::from(a) });
    }
    None
}

/// A CIDR block: every address from `low` to `high` of one family.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Cidr {
    pub v6: bool,
    pub low: u128,
    pub high: u128,
    pub text: Box<str>,
}

impl Cidr {
    pub(crate) fn contains(&self, ip: Ip) -> bool {
        ip.v6 == self.v6 && ip.bits >= self.low && ip.bits <= self.high
    }
}

/// Parses `addr/bits`; the error says what is wrong in plain words.
pub(crate) fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let Some((addr, bits)) = s.split_once('/') else {
        return Err(format!(
            "cidr {s:?} is malformed: write an address, one '/', and the prefix length, like \"10.0.0.0/24\""
        ));
    };
    if bits.contains('/') {
        return Err(format!("cidr {s:?} is malformed: only one '/' is allowed"));
    }
    let ip =
        parse_ip(addr).ok_or_else(|| format!("cidr {s:?} is malformed: {addr:?} is not an IPv4 or IPv6 address"))?;
    let bits: i64 = bits
        .parse()
        .map_err(|_| format!("cidr {s:?} is malformed: the prefix length {bits:?} is not a whole number"))?;
    let width: i64 = if ip.v6 { 128 } else { 32 };
    if !(0..=width).contains(&bits) {
        return Err(format!(
            "cidr {s:?} is malformed: an {} prefix length must be between 0 and {width}",
            if ip.v6 { "IPv6" } else { "IPv4" }
        ));
    }
    let host_bits = (width - bits) as u32;
    let host_mask: u128 = if host_bits == 0 {
        0
    } else if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let low = ip.bits & !host_mask;
    Ok(Cidr { v6: ip.v6, low, high: low | host_mask, text: s.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_addresses_like_event_ruler() {
        assert_eq!(parse_ip("10.0.0.1"), Some(Ip { v6: false, bits: 0x0A000001 }));
        assert_eq!(parse_ip("::1").map(|i| i.bits), Some(1));
        assert_eq!(parse_ip("::ffff:a00:1"), parse_ip("10.0.0.1"));
        assert_eq!(parse_ip("0:0:0:0:0:0:0:1"), parse_ip("::1"));
        for not_ip in
            ["700.168.0.1", "foo", "10.10.10.10.10", "2.1.0.-1", "08:23", "010.0.0.1", "1.2.3", "::ffff:10.0.0.1", ""]
        {
            assert_eq!(parse_ip(not_ip), None, "{not_ip}");
        }
    }

    #[test]
    fn cidr_blocks() {
        let c = parse_cidr("10.0.0.7/24").unwrap();
        assert!(c.contains(parse_ip("10.0.0.0").unwrap()));
        assert!(c.contains(parse_ip("10.0.0.255").unwrap()));
        assert!(!c.contains(parse_ip("10.0.1.0").unwrap()));
        assert!(!c.contains(parse_ip("::a00:1").unwrap()));
        let all = parse_cidr("0.0.0.0/0").unwrap();
        assert!(all.contains(parse_ip("255.255.255.255").unwrap()));
        let v6 = parse_cidr("2001:db8::/32").unwrap();
        assert!(v6.contains(parse_ip("2001:db8:ffff::1").unwrap()));
        assert!(!v6.contains(parse_ip("2001:db9::1").unwrap()));
        assert!(parse_cidr("::/0").unwrap().contains(parse_ip("ffff::1").unwrap()));
        assert!(parse_cidr("10.0.0.1/32").unwrap().contains(parse_ip("10.0.0.1").unwrap()));
        for bad in [
            "192.168.0.1/33",
            "foo",
            "foo/bar/baz",
            "192.168.0.1/foo",
            "192.168.0.1/-3424",
            "snorkle/3",
            "10.10.10.10.10/3",
            "2400:6500:FF00::36FB:1F80/222",
            "10.0.0.0/",
            "/8",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }
}
