//! Small crypto helpers: random ids, hex, HMAC-SHA256 signing and CSRF tokens.
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex of some bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes lower- or upper-case hex; `None` for anything else.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A fresh random id: 128 bits, as 32 hex characters.
pub fn random_id() -> String {
    to_hex(&rand::random::<[u8; 16]>())
}

/// Hex of HMAC-SHA256(key, message).
pub fn sign(key: &[u8], message: &[u8]) -> String {
    to_hex(&mac(key, message).finalize().into_bytes())
}

/// Checks a hex signature in constant time.
pub fn verify(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    match from_hex(signature_hex) {
        Some(signature) => mac(key, message).verify_slice(&signature).is_ok(),
        None => false,
    }
}

fn mac(key: &[u8], message: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac
}

/// CSRF tokens are `<nonce>.<hmac(secret, "csrf:" + nonce)>`: any worker that
/// knows the shared secret can check one without keeping state.
pub fn new_csrf_token(secret: &[u8]) -> String {
    let nonce = random_id();
    let signature = sign(secret, format!("csrf:{nonce}").as_bytes());
    format!("{nonce}.{signature}")
}

pub fn csrf_token_is_valid(secret: &[u8], token: &str) -> bool {
    match token.split_once('.') {
        Some((nonce, signature)) => verify(secret, format!("csrf:{nonce}").as_bytes(), signature),
        None => false,
    }
}

/// A stable (across processes and restarts) numeric user id for a username:
/// 32-bit FNV-1a, small enough to survive JSON clients that use doubles.
pub fn user_id_for(username: &str) -> u64 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in username.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    u64::from(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 254, 255])),
            Some(vec![0, 1, 254, 255])
        );
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("abc"), None);
    }

    #[test]
    fn csrf_tokens_verify_only_with_the_same_secret() {
        let token = new_csrf_token(b"one");
        assert!(csrf_token_is_valid(b"one", &token));
        assert!(!csrf_token_is_valid(b"two", &token));
        assert!(!csrf_token_is_valid(b"one", "garbage"));
    }
}
