//! Encryption at rest for Source secrets.
//!
//! Secrets are sealed with AES-256-GCM under the registry's 32-byte
//! [`MasterKey`]. Every seal uses a fresh random 96-bit nonce, and the
//! associated data binds the ciphertext to one Source id and one field, so a
//! sealed value copied into another row or column no longer opens. The
//! stored form ([`SealedSecret`]) records which key sealed it (a key id
//! derived from the key), which is what a later key rotation builds on.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

/// Length of the master key in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;

/// Length of an AES-GCM nonce in bytes.
const NONCE_LEN: usize = 12;

/// Length of an AES-GCM authentication tag in bytes.
const TAG_LEN: usize = 16;

/// Why sealing or opening a secret failed; messages never contain key
/// material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The master key text is neither 64 hex digits nor base64 of 32 bytes.
    #[error("the master key must be 64 hex characters or base64 of 32 bytes")]
    MasterKeyFormat,
    /// The secret was sealed by a different master key.
    #[error("the secret was sealed with master key {0}, which is not loaded")]
    UnknownKey(String),
    /// The stored form is not base64 of nonce, ciphertext and tag.
    #[error("the sealed secret is malformed")]
    Malformed,
    /// Authentication failed: wrong key, wrong associated data or tampering.
    #[error("the sealed secret could not be decrypted")]
    Decrypt,
    /// AES-GCM refused to encrypt (only possible for absurd lengths).
    #[error("the secret could not be encrypted")]
    Encrypt,
}

/// The registry's 32-byte master key, held so it is wiped on drop and never
/// printed.
pub struct MasterKey {
    bytes: SecretBox<[u8; MASTER_KEY_LEN]>,
}

// === impl MasterKey ===

impl MasterKey {
    /// Parses key text: 64 hex characters or standard base64 of 32 bytes,
    /// surrounding whitespace ignored.
    pub fn parse(text: &str) -> Result<MasterKey, CryptoError> {
        let text = text.trim();
        let decoded = if text.len() == 2 * MASTER_KEY_LEN {
            hex::decode(text).ok()
        } else {
            None
        };
        let decoded = match decoded {
            Some(bytes) => Zeroizing::new(bytes),
            None => Zeroizing::new(
                BASE64
                    .decode(text)
                    .map_err(|_| CryptoError::MasterKeyFormat)?,
            ),
        };
        let bytes: [u8; MASTER_KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::MasterKeyFormat)?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> MasterKey {
        MasterKey {
            bytes: SecretBox::new(Box::new(bytes)),
        }
    }

    /// A short public fingerprint of the key, stored next to every secret it
    /// seals; it reveals nothing about the key itself.
    pub fn key_id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"imgmesh master key id\0");
        hasher.update(self.bytes.expose_secret());
        let digest = hasher.finalize();
        hex::encode(&digest[..8])
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_id", &self.key_id())
            .field("bytes", &"[REDACTED]")
            .finish()
    }
}

/// A secret as stored: which key sealed it and base64 of nonce, ciphertext
/// and tag.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SealedSecret {
    /// Id of the master key that sealed it.
    pub(crate) key_id: String,
    /// base64(nonce || ciphertext || tag).
    pub(crate) sealed: String,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key_id)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// Seals and opens Source secrets with one master key.
#[derive(Clone)]
pub(crate) struct CredentialsCipher {
    cipher: Aes256Gcm,
    key_id: String,
}

// === impl CredentialsCipher ===

impl CredentialsCipher {
    /// A cipher using `master_key`.
    pub(crate) fn new(master_key: &MasterKey) -> CredentialsCipher {
        let key = Key::<Aes256Gcm>::from_slice(master_key.bytes.expose_secret());
        CredentialsCipher {
            cipher: Aes256Gcm::new(key),
            key_id: master_key.key_id(),
        }
    }

    /// Id of the master key this cipher seals with.
    pub(crate) fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `secret` for `field` of Source `source_id` with a fresh nonce.
    pub(crate) fn seal(
        &self,
        secret: &SecretString,
        source_id: &str,
        field: &str,
    ) -> Result<SealedSecret, CryptoError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(source_id, field);
        let payload = Payload {
            msg: secret.expose_secret().as_bytes(),
            aad: &aad,
        };
        let ciphertext = self
            .cipher
            .encrypt(&nonce, payload)
            .map_err(|_| CryptoError::Encrypt)?;
        let mut stored = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&ciphertext);
        Ok(SealedSecret {
            key_id: self.key_id.clone(),
            sealed: BASE64.encode(stored),
        })
    }

    /// Decrypts a secret sealed for `field` of Source `source_id`.
    pub(crate) fn open(
        &self,
        sealed: &SealedSecret,
        source_id: &str,
        field: &str,
    ) -> Result<SecretString, CryptoError> {
        if sealed.key_id != self.key_id {
            return Err(CryptoError::UnknownKey(sealed.key_id.clone()));
        }
        let stored = BASE64
            .decode(&sealed.sealed)
            .map_err(|_| CryptoError::Malformed)?;
        if stored.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        let aad = associated_data(source_id, field);
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        let plaintext = Zeroizing::new(
            self.cipher
                .decrypt(Nonce::from_slice(nonce), payload)
                .map_err(|_| CryptoError::Decrypt)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| CryptoError::Decrypt)?;
        Ok(SecretString::from(text))
    }
}

impl fmt::Debug for CredentialsCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsCipher")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The AEAD associated data binding a ciphertext to one Source and field.
fn associated_data(source_id: &str, field: &str) -> Vec<u8> {
    format!("imgmesh/sources/{source_id}/{field}").into_bytes()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed test key, as hex.
    pub(crate) const TEST_KEY_HEX: &str =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn cipher() -> CredentialsCipher {
        CredentialsCipher::new(&MasterKey::parse(TEST_KEY_HEX).unwrap())
    }

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    /// A sealed secret opens back to the same plaintext.
    #[test]
    fn seal_then_open_round_trips() {
        let cipher = cipher();
        let sealed = cipher
            .seal(
                &secret("wJalrXUtnFEMI/K7MDENG"),
                "src_000000000001",
                "secret",
            )
            .unwrap();
        let opened = cipher.open(&sealed, "src_000000000001", "secret").unwrap();
        assert_eq!(opened.expose_secret(), "wJalrXUtnFEMI/K7MDENG");
    }

    /// The stored form contains neither the plaintext nor its base64.
    #[test]
    fn sealed_form_hides_the_plaintext() {
        let sealed = cipher()
            .seal(&secret("plaintext-secret"), "src_000000000001", "secret")
            .unwrap();
        assert!(!sealed.sealed.contains("plaintext-secret"));
        assert!(!sealed.sealed.contains(&BASE64.encode("plaintext-secret")));
    }

    /// Sealing the same secret twice gives different ciphertexts (fresh nonces).
    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let cipher = cipher();
        let a = cipher.seal(&secret("same"), "src_1", "secret").unwrap();
        let b = cipher.seal(&secret("same"), "src_1", "secret").unwrap();
        assert_ne!(a.sealed, b.sealed);
    }

    /// A ciphertext moved to another Source does not open.
    #[test]
    fn other_source_id_fails_to_open() {
        let cipher = cipher();
        let sealed = cipher
            .seal(&secret("s3cret"), "src_aaaaaaaaaaaa", "secret")
            .unwrap();
        let error = cipher
            .open(&sealed, "src_bbbbbbbbbbbb", "secret")
            .unwrap_err();
        assert!(matches!(error, CryptoError::Decrypt));
    }

    /// A ciphertext moved to another field does not open.
    #[test]
    fn other_field_fails_to_open() {
        let cipher = cipher();
        let sealed = cipher
            .seal(&secret("s3cret"), "src_aaaaaaaaaaaa", "secret")
            .unwrap();
        let error = cipher
            .open(&sealed, "src_aaaaaaaaaaaa", "token")
            .unwrap_err();
        assert!(matches!(error, CryptoError::Decrypt));
    }

    /// Another master key cannot open the secret, even if the key id is forged.
    #[test]
    fn wrong_key_fails_to_open() {
        let sealed = cipher().seal(&secret("s3cret"), "src_1", "secret").unwrap();
        let other = CredentialsCipher::new(&MasterKey::from_bytes([7; MASTER_KEY_LEN]));
        assert!(matches!(
            other.open(&sealed, "src_1", "secret").unwrap_err(),
            CryptoError::UnknownKey(_)
        ));
        let forged = SealedSecret {
            key_id: other.key_id().to_owned(),
            ..sealed
        };
        assert!(matches!(
            other.open(&forged, "src_1", "secret").unwrap_err(),
            CryptoError::Decrypt
        ));
    }

    /// A flipped ciphertext bit is detected.
    #[test]
    fn tampered_ciphertext_fails_to_open() {
        let cipher = cipher();
        let sealed = cipher.seal(&secret("s3cret"), "src_1", "secret").unwrap();
        let mut bytes = BASE64.decode(&sealed.sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = SealedSecret {
            sealed: BASE64.encode(bytes),
            ..sealed
        };
        assert!(matches!(
            cipher.open(&tampered, "src_1", "secret").unwrap_err(),
            CryptoError::Decrypt
        ));
    }

    /// Stored text that is not base64 or too short is reported as malformed.
    #[test]
    fn malformed_sealed_text_is_rejected() {
        let cipher = cipher();
        for sealed in ["not base64!", "AAAA"] {
            let sealed = SealedSecret {
                key_id: cipher.key_id().to_owned(),
                sealed: sealed.to_owned(),
            };
            assert!(matches!(
                cipher.open(&sealed, "src_1", "secret").unwrap_err(),
                CryptoError::Malformed
            ));
        }
    }

    /// Hex and base64 forms of one key parse to the same key.
    #[test]
    fn master_key_parses_hex_and_base64() {
        let from_hex = MasterKey::parse(&format!("  {TEST_KEY_HEX}\n")).unwrap();
        let base64 = BASE64.encode(hex::decode(TEST_KEY_HEX).unwrap());
        let from_base64 = MasterKey::parse(&format!("{base64}\n")).unwrap();
        assert_eq!(from_hex.key_id(), from_base64.key_id());
        assert_eq!(from_hex.key_id().len(), 16);
    }

    /// Key text of the wrong length or alphabet is refused without echoing it.
    #[test]
    fn master_key_rejects_bad_text() {
        let short_hex = &TEST_KEY_HEX[..62];
        let long_base64 = BASE64.encode([1u8; 33]);
        for text in ["", "zz", short_hex, &long_base64, &"g".repeat(64)] {
            let error = MasterKey::parse(text).unwrap_err();
            assert!(matches!(error, CryptoError::MasterKeyFormat), "{text:?}");
        }
    }

    /// Debug output of keys and ciphers shows the key id, never the key.
    #[test]
    fn debug_output_redacts_the_key() {
        let key = MasterKey::from_bytes([0xab; MASTER_KEY_LEN]);
        let shown = format!("{key:?} {:?}", CredentialsCipher::new(&key));
        assert!(!shown.contains("171, 171"), "{shown}");
        assert!(!shown.contains(&"ab".repeat(8)), "{shown}");
        assert!(shown.contains("REDACTED"));
        assert!(shown.contains(&key.key_id()));
    }
}
