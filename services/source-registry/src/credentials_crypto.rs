//! Envelope encryption at rest for Source secrets and secure URL tokens.
//!
//! Every secret gets its own fresh random 256-bit data key (DEK). The secret
//! is sealed with the DEK (AES-256-GCM, fresh 96-bit nonce, associated data
//! binding it to one Source id and one field), and the DEK is wrapped by a
//! key-encryption key (KEK): the registry's [`MasterKey`], whose id is a
//! fingerprint of the key. The DEK's wrap has its own associated data
//! (Source id, field and `dek`), so neither a sealed secret nor a wrapped
//! DEK opens when copied into another row or column.
//!
//! [`MasterKeys`] holds the current KEK, which wraps every new DEK, and any
//! previous ones, which still unwrap DEKs they wrapped. Rotating the master
//! key ([`MasterKeys::rewrap`]) only re-wraps the DEK; the sealed secret
//! itself never changes.

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

/// Length of a data key in bytes (AES-256).
const DATA_KEY_LEN: usize = 32;

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
    /// The secret's data key was wrapped by a master key that is not loaded.
    #[error("the secret was sealed with master key {0}, which is not loaded")]
    UnknownKey(String),
    /// The stored form is not base64 of the expected lengths.
    #[error("the sealed secret is malformed")]
    Malformed,
    /// Authentication failed: wrong key, wrong associated data or tampering.
    #[error("the sealed secret could not be decrypted")]
    Decrypt,
    /// AES-GCM refused to encrypt (only possible for absurd lengths).
    #[error("the secret could not be encrypted")]
    Encrypt,
}

/// One 32-byte master key, held so it is wiped on drop and never printed.
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

    /// A short public fingerprint of the key, stored next to every data key
    /// it wraps; it reveals nothing about the key itself.
    pub fn key_id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"imgmesh master key id\0");
        hasher.update(self.bytes.expose_secret());
        let digest = hasher.finalize();
        hex::encode(&digest[..8])
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.bytes.expose_secret()))
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

/// A secret as stored: the wrapped data key, which master key wrapped it,
/// and the secret sealed with the data key. All byte strings are base64.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SealedSecret {
    /// Id of the master key (KEK) that wrapped the data key.
    pub(crate) kek_id: String,
    /// base64(nonce || data key encrypted under the KEK || tag).
    pub(crate) wrapped_dek: String,
    /// base64 of the 96-bit nonce the secret was sealed with.
    pub(crate) nonce: String,
    /// base64(secret encrypted under the data key || tag).
    pub(crate) ciphertext: String,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("kek_id", &self.kek_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// The master keys the registry runs with: the current one wraps every new
/// data key; previous ones only unwrap what they wrapped before a rotation.
pub struct MasterKeys {
    current: MasterKey,
    current_id: String,
    previous: Vec<(String, MasterKey)>,
}

// === impl MasterKeys ===

impl MasterKeys {
    /// Keys with `current` only.
    pub fn new(current: MasterKey) -> MasterKeys {
        MasterKeys {
            current_id: current.key_id(),
            current,
            previous: Vec::new(),
        }
    }

    /// Adds a previous key (ignored if it is the current one or already
    /// loaded).
    pub fn with_previous(mut self, key: MasterKey) -> MasterKeys {
        let id = key.key_id();
        if id != self.current_id && !self.previous.iter().any(|(known, _)| *known == id) {
            self.previous.push((id, key));
        }
        self
    }

    /// Id of the current master key.
    pub fn current_id(&self) -> &str {
        &self.current_id
    }

    /// Ids of every loaded key, the current one first.
    pub fn ids(&self) -> Vec<String> {
        std::iter::once(self.current_id.clone())
            .chain(self.previous.iter().map(|(id, _)| id.clone()))
            .collect()
    }

    /// Seals `secret` for `field` of `owner` (a Source id) under a fresh
    /// data key wrapped by the current master key.
    pub(crate) fn seal(
        &self,
        secret: &SecretString,
        owner: &str,
        field: &str,
    ) -> Result<SealedSecret, CryptoError> {
        let data_key = Zeroizing::new(rand::random::<[u8; DATA_KEY_LEN]>());
        let data_cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key.as_slice()));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = data_cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.expose_secret().as_bytes(),
                    aad: &secret_aad(owner, field),
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(SealedSecret {
            kek_id: self.current_id.clone(),
            wrapped_dek: self.wrap(data_key.as_slice(), owner, field)?,
            nonce: BASE64.encode(nonce),
            ciphertext: BASE64.encode(ciphertext),
        })
    }

    /// Opens a secret sealed for `field` of `owner` with any loaded key.
    pub(crate) fn open(
        &self,
        sealed: &SealedSecret,
        owner: &str,
        field: &str,
    ) -> Result<SecretString, CryptoError> {
        let data_key = self.unwrap(sealed, owner, field)?;
        let nonce = BASE64
            .decode(&sealed.nonce)
            .map_err(|_| CryptoError::Malformed)?;
        let ciphertext = BASE64
            .decode(&sealed.ciphertext)
            .map_err(|_| CryptoError::Malformed)?;
        if nonce.len() != NONCE_LEN || ciphertext.len() < TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let data_cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key.as_slice()));
        let plaintext = Zeroizing::new(
            data_cipher
                .decrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: &secret_aad(owner, field),
                    },
                )
                .map_err(|_| CryptoError::Decrypt)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| CryptoError::Decrypt)?;
        Ok(SecretString::from(text))
    }

    /// The same sealed secret with its data key re-wrapped by the current
    /// master key; the nonce and ciphertext are unchanged.
    pub(crate) fn rewrap(
        &self,
        sealed: &SealedSecret,
        owner: &str,
        field: &str,
    ) -> Result<SealedSecret, CryptoError> {
        let data_key = self.unwrap(sealed, owner, field)?;
        Ok(SealedSecret {
            kek_id: self.current_id.clone(),
            wrapped_dek: self.wrap(&data_key, owner, field)?,
            nonce: sealed.nonce.clone(),
            ciphertext: sealed.ciphertext.clone(),
        })
    }

    /// The master key with id `kek_id`, if loaded.
    fn key(&self, kek_id: &str) -> Option<&MasterKey> {
        if kek_id == self.current_id {
            return Some(&self.current);
        }
        self.previous
            .iter()
            .find(|(id, _)| id == kek_id)
            .map(|(_, key)| key)
    }

    /// base64(nonce || DEK encrypted under the current KEK || tag).
    fn wrap(&self, data_key: &[u8], owner: &str, field: &str) -> Result<String, CryptoError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let wrapped = self
            .current
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: data_key,
                    aad: &dek_aad(owner, field),
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let mut stored = Vec::with_capacity(NONCE_LEN + wrapped.len());
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&wrapped);
        Ok(BASE64.encode(stored))
    }

    /// The data key of `sealed`, unwrapped by the KEK it names.
    fn unwrap(
        &self,
        sealed: &SealedSecret,
        owner: &str,
        field: &str,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let kek = self
            .key(&sealed.kek_id)
            .ok_or_else(|| CryptoError::UnknownKey(sealed.kek_id.clone()))?;
        let stored = BASE64
            .decode(&sealed.wrapped_dek)
            .map_err(|_| CryptoError::Malformed)?;
        if stored.len() != NONCE_LEN + DATA_KEY_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, wrapped) = stored.split_at(NONCE_LEN);
        let data_key = kek
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: wrapped,
                    aad: &dek_aad(owner, field),
                },
            )
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(Zeroizing::new(data_key))
    }

    /// Opens a secret stored by registries before envelope encryption:
    /// base64(nonce || ciphertext || tag) sealed directly by master key
    /// `key_id`, bound to the Source and field.
    pub(crate) fn open_legacy(
        &self,
        sealed: &str,
        key_id: &str,
        owner: &str,
        field: &str,
    ) -> Result<SecretString, CryptoError> {
        let kek = self
            .key(key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        let stored = BASE64.decode(sealed).map_err(|_| CryptoError::Malformed)?;
        if stored.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        let plaintext = Zeroizing::new(
            kek.cipher()
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: format!("imgmesh/sources/{owner}/{field}").as_bytes(),
                    },
                )
                .map_err(|_| CryptoError::Decrypt)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| CryptoError::Decrypt)?;
        Ok(SecretString::from(text))
    }
}

impl From<MasterKey> for MasterKeys {
    fn from(current: MasterKey) -> Self {
        MasterKeys::new(current)
    }
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeys")
            .field("current", &self.current_id)
            .field(
                "previous",
                &self.previous.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Associated data of a secret sealed under its data key.
fn secret_aad(owner: &str, field: &str) -> Vec<u8> {
    format!("imgmesh/sources/{owner}/{field}/secret").into_bytes()
}

/// Associated data of a data key wrapped under a master key.
fn dek_aad(owner: &str, field: &str) -> Vec<u8> {
    format!("imgmesh/sources/{owner}/{field}/dek").into_bytes()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed test key, as hex.
    pub(crate) const TEST_KEY_HEX: &str =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn keys() -> MasterKeys {
        MasterKeys::new(MasterKey::parse(TEST_KEY_HEX).unwrap())
    }

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    /// Seals `plaintext` the way registries before envelope encryption did.
    pub(crate) fn legacy_seal(
        key: &MasterKey,
        plaintext: &str,
        owner: &str,
        field: &str,
    ) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: format!("imgmesh/sources/{owner}/{field}").as_bytes(),
                },
            )
            .unwrap();
        BASE64.encode([nonce.as_slice(), &ciphertext].concat())
    }

    /// A sealed secret opens back to the same plaintext.
    #[test]
    fn seal_then_open_round_trips() {
        let keys = keys();
        let sealed = keys
            .seal(
                &secret("wJalrXUtnFEMI/K7MDENG"),
                "src_000000000001",
                "secret",
            )
            .unwrap();
        assert_eq!(sealed.kek_id, keys.current_id());
        let opened = keys.open(&sealed, "src_000000000001", "secret").unwrap();
        assert_eq!(opened.expose_secret(), "wJalrXUtnFEMI/K7MDENG");
    }

    /// The stored form contains neither the plaintext nor its base64.
    #[test]
    fn sealed_form_hides_the_plaintext() {
        let sealed = keys()
            .seal(&secret("plaintext-secret"), "src_000000000001", "secret")
            .unwrap();
        let stored = format!(
            "{}{}{}{}",
            sealed.kek_id, sealed.wrapped_dek, sealed.nonce, sealed.ciphertext
        );
        assert!(!stored.contains("plaintext-secret"));
        assert!(!stored.contains(&BASE64.encode("plaintext-secret")));
    }

    /// Every seal draws a fresh data key and fresh nonces.
    #[test]
    fn every_seal_uses_a_fresh_data_key() {
        let keys = keys();
        let a = keys.seal(&secret("same"), "src_1", "secret").unwrap();
        let b = keys.seal(&secret("same"), "src_1", "secret").unwrap();
        assert_ne!(a.wrapped_dek, b.wrapped_dek);
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        // Each data key opens only its own secret.
        let swapped = SealedSecret {
            wrapped_dek: b.wrapped_dek.clone(),
            ..a.clone()
        };
        assert!(matches!(
            keys.open(&swapped, "src_1", "secret").unwrap_err(),
            CryptoError::Decrypt
        ));
    }

    /// A sealed secret moved to another Source or field does not open, nor
    /// does a wrapped data key moved to another Source or field.
    #[test]
    fn aad_binds_source_and_field() {
        let keys = keys();
        let sealed = keys
            .seal(&secret("s3cret"), "src_aaaaaaaaaaaa", "secret_access_key")
            .unwrap();
        for (owner, field) in [
            ("src_bbbbbbbbbbbb", "secret_access_key"),
            ("src_aaaaaaaaaaaa", "upload_secret_access_key"),
        ] {
            assert!(matches!(
                keys.open(&sealed, owner, field).unwrap_err(),
                CryptoError::Decrypt
            ));
        }
        // A data key wrapped for another record, with its own secret
        // otherwise intact, is refused too.
        let other = keys
            .seal(&secret("s3cret"), "src_bbbbbbbbbbbb", "secret_access_key")
            .unwrap();
        let spliced = SealedSecret {
            wrapped_dek: other.wrapped_dek,
            ..sealed
        };
        assert!(matches!(
            keys.open(&spliced, "src_aaaaaaaaaaaa", "secret_access_key")
                .unwrap_err(),
            CryptoError::Decrypt
        ));
    }

    /// Another master key cannot open the secret, even if the key id is forged.
    #[test]
    fn wrong_key_fails_to_open() {
        let sealed = keys().seal(&secret("s3cret"), "src_1", "secret").unwrap();
        let other = MasterKeys::new(MasterKey::from_bytes([7; MASTER_KEY_LEN]));
        assert!(matches!(
            other.open(&sealed, "src_1", "secret").unwrap_err(),
            CryptoError::UnknownKey(_)
        ));
        let forged = SealedSecret {
            kek_id: other.current_id().to_owned(),
            ..sealed
        };
        assert!(matches!(
            other.open(&forged, "src_1", "secret").unwrap_err(),
            CryptoError::Decrypt
        ));
    }

    /// Flipped bits in the ciphertext or the wrapped key are detected.
    #[test]
    fn tampering_is_detected() {
        let keys = keys();
        let sealed = keys.seal(&secret("s3cret"), "src_1", "secret").unwrap();
        let flip = |text: &str| {
            let mut bytes = BASE64.decode(text).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            BASE64.encode(bytes)
        };
        for tampered in [
            SealedSecret {
                ciphertext: flip(&sealed.ciphertext),
                ..sealed.clone()
            },
            SealedSecret {
                wrapped_dek: flip(&sealed.wrapped_dek),
                ..sealed.clone()
            },
            SealedSecret {
                nonce: flip(&sealed.nonce),
                ..sealed.clone()
            },
        ] {
            assert!(matches!(
                keys.open(&tampered, "src_1", "secret").unwrap_err(),
                CryptoError::Decrypt
            ));
        }
    }

    /// Stored text that is not base64 or of the wrong length is malformed.
    #[test]
    fn malformed_sealed_text_is_rejected() {
        let keys = keys();
        let sealed = keys.seal(&secret("s3cret"), "src_1", "secret").unwrap();
        for bad in [
            SealedSecret {
                wrapped_dek: "not base64!".into(),
                ..sealed.clone()
            },
            SealedSecret {
                wrapped_dek: "AAAA".into(),
                ..sealed.clone()
            },
            SealedSecret {
                nonce: "AAAA".into(),
                ..sealed.clone()
            },
            SealedSecret {
                ciphertext: "AA==".into(),
                ..sealed.clone()
            },
        ] {
            assert!(matches!(
                keys.open(&bad, "src_1", "secret").unwrap_err(),
                CryptoError::Malformed
            ));
        }
    }

    /// Re-wrapping changes only the data key's wrap; the secret then opens
    /// with the new key alone, and the old key alone can no longer open it.
    #[test]
    fn rewrap_moves_the_data_key_to_the_current_key() {
        let old = MasterKey::from_bytes([1; MASTER_KEY_LEN]);
        let old_id = old.key_id();
        let sealed = MasterKeys::new(MasterKey::from_bytes([1; MASTER_KEY_LEN]))
            .seal(&secret("s3cret"), "src_1", "secret")
            .unwrap();
        let rotating =
            MasterKeys::new(MasterKey::from_bytes([2; MASTER_KEY_LEN])).with_previous(old);
        // The old key still opens what it wrapped.
        assert_eq!(
            rotating
                .open(&sealed, "src_1", "secret")
                .unwrap()
                .expose_secret(),
            "s3cret"
        );
        let rewrapped = rotating.rewrap(&sealed, "src_1", "secret").unwrap();
        assert_eq!(rewrapped.kek_id, rotating.current_id());
        assert_ne!(rewrapped.wrapped_dek, sealed.wrapped_dek);
        assert_eq!(rewrapped.nonce, sealed.nonce);
        assert_eq!(rewrapped.ciphertext, sealed.ciphertext);
        let new_only = MasterKeys::new(MasterKey::from_bytes([2; MASTER_KEY_LEN]));
        assert_eq!(
            new_only
                .open(&rewrapped, "src_1", "secret")
                .unwrap()
                .expose_secret(),
            "s3cret"
        );
        let old_only = MasterKeys::new(MasterKey::from_bytes([1; MASTER_KEY_LEN]));
        assert!(matches!(
            old_only.open(&rewrapped, "src_1", "secret").unwrap_err(),
            CryptoError::UnknownKey(id) if id != old_id
        ));
    }

    /// Previous keys are deduplicated and never shadow the current one.
    #[test]
    fn key_ids_are_listed_once() {
        let keys = MasterKeys::new(MasterKey::from_bytes([1; MASTER_KEY_LEN]))
            .with_previous(MasterKey::from_bytes([1; MASTER_KEY_LEN]))
            .with_previous(MasterKey::from_bytes([2; MASTER_KEY_LEN]))
            .with_previous(MasterKey::from_bytes([2; MASTER_KEY_LEN]));
        let ids = keys.ids();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], keys.current_id());
    }

    /// Secrets sealed before envelope encryption still open.
    #[test]
    fn legacy_secrets_open() {
        let key = MasterKey::parse(TEST_KEY_HEX).unwrap();
        let sealed = legacy_seal(&key, "old-secret", "src_1", "secret_access_key");
        let keys = keys();
        let opened = keys
            .open_legacy(&sealed, keys.current_id(), "src_1", "secret_access_key")
            .unwrap();
        assert_eq!(opened.expose_secret(), "old-secret");
        assert!(
            keys.open_legacy(&sealed, keys.current_id(), "src_2", "secret_access_key")
                .is_err()
        );
        assert!(matches!(
            keys.open_legacy(&sealed, "0000000000000000", "src_1", "secret_access_key"),
            Err(CryptoError::UnknownKey(_))
        ));
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

    /// Debug output of keys and sealed secrets shows ids, never key bytes
    /// or ciphertext.
    #[test]
    fn debug_output_redacts_the_key() {
        let key = MasterKey::from_bytes([0xab; MASTER_KEY_LEN]);
        let id = key.key_id();
        let keys = MasterKeys::new(key);
        let sealed = keys.seal(&secret("s3cret"), "src_1", "secret").unwrap();
        let shown = format!(
            "{keys:?} {sealed:?} {:?}",
            MasterKey::from_bytes([0xab; 32])
        );
        assert!(!shown.contains("171, 171"), "{shown}");
        assert!(!shown.contains(&"ab".repeat(8)), "{shown}");
        assert!(!shown.contains(&sealed.ciphertext), "{shown}");
        assert!(!shown.contains(&sealed.wrapped_dek), "{shown}");
        assert!(shown.contains("REDACTED"));
        assert!(shown.contains(&id));
    }
}
