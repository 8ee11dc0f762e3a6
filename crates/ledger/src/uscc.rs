//! The GB 32100-2015 check digit of a unified social credit code (统一社会信用代码).

/// The 31 characters a USCC may use (no I, O, Z, S, V), in value order.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1–17: 3^(i−1) mod 31.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

fn value_of(byte: u8) -> Option<u32> {
    ALPHABET
        .iter()
        .position(|&c| c == byte)
        .map(|index| index as u32)
}

/// The check character for the first 17 characters, or `None` if they are not valid.
pub fn check_character(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (byte, weight) in bytes.iter().zip(WEIGHTS) {
        sum += value_of(*byte)? * weight;
    }
    let check = (31 - sum % 31) % 31;
    Some(char::from(ALPHABET[check as usize]))
}

/// Whether `code` is 18 characters from the USCC alphabet with a correct check character.
pub fn is_valid(code: &str) -> bool {
    code.len() == 18
        && code.is_ascii()
        && check_character(&code[..17]).is_some_and(|check| code.as_bytes()[17] == check as u8)
}

/// Completes 17 characters into a valid USCC (for demo data and tests).
pub fn complete(first17: &str) -> Option<String> {
    check_character(first17).map(|check| format!("{first17}{check}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_codes_check() {
        // Codes printed on public business licences.
        for code in [
            "91350100M000100Y43",
            "91440300708461136T",
            "91110108551385082Q",
            "914403001922038216",
        ] {
            assert!(is_valid(code), "{code}");
        }
        for code in [
            "91350100M000100Y44",
            "91350100M000100Y4",
            "91350100M000100Y4I",
            "9135010OM000100Y43",
            "中文",
        ] {
            assert!(!is_valid(code), "{code}");
        }
    }

    #[test]
    fn complete_makes_valid_codes() {
        let code = complete("91410100MA0000001").expect("valid prefix");
        assert!(is_valid(&code));
        assert_eq!(complete("91410100MA000000I"), None);
    }
}
