//! Pre-registration and claiming: opaque thing names, one-time claim codes, serial numbers.
//!
//! A maker pre-registers each device it ships (product, serial, type) and prints the claim code
//! it gets back on the device or its box. The owner's app sends that code to claim the device.
//! Only a hash of the code is stored. Thing names are random and never derived from the serial,
//! so they reveal nothing and cannot be enumerated.
//!
//! Randomness is passed in (this crate does no I/O): callers fill the entropy arrays from the
//! operating system's generator.

use sha2::{Digest, Sha256};

use crate::device::DeviceId;

/// Crockford's base-32 alphabet: no I, L, O, U (nothing to misread on a printed label).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Random bytes in a thing name (128 bits).
pub const THING_ENTROPY_BYTES: usize = 16;
/// Random bytes in a claim code (100 bits, 20 characters).
pub const CLAIM_ENTROPY_BYTES: usize = 13;
/// Characters in a claim code, without separators.
pub const CLAIM_CODE_CHARS: usize = 20;

/// The first `chars` base-32 characters of `bytes` (big-endian bit order).
fn base32(bytes: &[u8], chars: usize) -> String {
    let mut out = String::with_capacity(chars);
    let mut buffer = 0u32;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 && out.len() < chars {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 && out.len() < chars {
        // The last, partial group, padded with zero bits.
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A new invitation id, `inv-` and 26 base-32 characters (lower case, 128 random bits).
pub fn new_invitation_id(entropy: [u8; THING_ENTROPY_BYTES]) -> crate::device::InvitationId {
    let id = format!("inv-{}", base32(&entropy, 26).to_ascii_lowercase());
    crate::device::InvitationId::parse(id)
        .unwrap_or_else(|_| unreachable!("generated invitation ids are valid"))
}

/// A new opaque thing name, `hth-` and 26 base-32 characters (lower case).
pub fn new_thing_name(entropy: [u8; THING_ENTROPY_BYTES]) -> DeviceId {
    let name = format!("hth-{}", base32(&entropy, 26).to_ascii_lowercase());
    // Only ASCII letters, digits and '-': always a valid thing name.
    DeviceId::parse(name).unwrap_or_else(|_| unreachable!("generated thing names are valid"))
}

/// A claim code: 20 base-32 characters, shown as five groups of four (`7KQ2-...`).
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimCode(String);

impl std::fmt::Debug for ClaimCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never log a code.
        f.write_str("ClaimCode(..)")
    }
}

impl ClaimCode {
    /// A new code from random bytes.
    pub fn generate(entropy: [u8; CLAIM_ENTROPY_BYTES]) -> ClaimCode {
        ClaimCode(base32(&entropy, CLAIM_CODE_CHARS))
    }

    /// A code as typed or scanned: case, spaces and dashes are ignored, and the letters people
    /// confuse with digits are read as those digits (O → 0, I and L → 1). `None` unless exactly
    /// 20 base-32 characters remain.
    pub fn parse(input: &str) -> Option<ClaimCode> {
        if input.len() > 64 {
            return None;
        }
        let mut code = String::with_capacity(CLAIM_CODE_CHARS);
        for c in input.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return None;
            }
            code.push(c);
        }
        (code.len() == CLAIM_CODE_CHARS).then_some(ClaimCode(code))
    }

    /// The code for display: five dash-separated groups of four.
    pub fn display(&self) -> String {
        let mut out = String::with_capacity(CLAIM_CODE_CHARS + 4);
        for (i, c) in self.0.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// What is stored: SHA-256 of the normalised code, hex. (100 random bits: a plain hash
    /// cannot be reversed by search.)
    pub fn hash(&self) -> String {
        Sha256::digest(self.0.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Longest serial number.
pub const MAX_SERIAL_CHARS: usize = 64;

/// Validates a maker's serial number: 1–64 ASCII letters, digits, `-`, `_`, `.`.
pub fn validate_serial(serial: &str) -> Result<(), &'static str> {
    if serial.is_empty() {
        Err("must not be empty")
    } else if serial.len() > MAX_SERIAL_CHARS {
        Err("must be at most 64 characters")
    } else if !serial
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Err("may contain only letters, digits, '-', '_' and '.'")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thing_names_are_opaque_valid_and_differ_with_entropy() {
        let a = new_thing_name([0; 16]);
        let b = new_thing_name([1; 16]);
        assert_eq!(a.as_str(), "hth-00000000000000000000000000");
        assert_ne!(a, b);
        assert_eq!(b.as_str().len(), 30);
        assert_eq!(
            new_thing_name([0xff; 16]).as_str(),
            "hth-zzzzzzzzzzzzzzzzzzzzzzzzzw"
        );
    }

    #[test]
    fn claim_codes_print_in_groups_and_parse_forgivingly() {
        let code = ClaimCode::generate([0xa5; 13]);
        let shown = code.display();
        assert_eq!(shown.len(), 24);
        assert_eq!(shown.matches('-').count(), 4);
        assert_eq!(ClaimCode::parse(&shown), Some(code.clone()));
        assert_eq!(
            ClaimCode::parse(&shown.to_lowercase().replace('-', " ")),
            Some(code.clone())
        );
        let zeros = ClaimCode::generate([0; 13]);
        assert_eq!(ClaimCode::parse("oooo-0000-OOOO-0000-0000"), Some(zeros));
        assert_eq!(
            ClaimCode::parse("1111-1111-1111-1111-1111"),
            ClaimCode::parse("iiii-llll-IIII-LLLL-1111")
        );
        for bad in [
            "",
            "0000",
            "0000-0000-0000-0000-0000-0",
            "UUUU-0000-0000-0000-0000",
            "ÄÄÄÄ-0000-0000-0000-0000",
            &"0".repeat(100),
        ] {
            assert_eq!(ClaimCode::parse(bad), None, "{bad}");
        }
        assert_eq!(format!("{code:?}"), "ClaimCode(..)");
    }

    #[test]
    fn the_stored_hash_is_sha256_of_the_normalised_code() {
        let code = ClaimCode::generate([0; 13]);
        // sha256("00000000000000000000")
        assert_eq!(
            code.hash(),
            "a7d351f3de399c746064a53c69959ab10312a003ec63985bcd86fb6dc1c402d5"
        );
        assert_ne!(code.hash(), ClaimCode::generate([1; 13]).hash());
        assert_eq!(
            ClaimCode::parse("0000-0000-0000-0000-0000").map(|c| c.hash()),
            Some(code.hash())
        );
    }

    #[test]
    fn serials_are_validated() {
        assert!(validate_serial("SN-2026.11_0001").is_ok());
        for bad in ["", "a b", "x/y", &"9".repeat(65)] {
            assert!(validate_serial(bad).is_err(), "{bad}");
        }
    }
}
