//! Signed AOT code: who vouches that a package's native code was compiled
//! from its module.
//!
//! A package's AOT section is native code, loaded with
//! `Module::deserialize`, which trusts its input: it is no sandbox boundary.
//! A host that runs packages from others (`oasis serve`) therefore compiles
//! every module itself, unless the code is signed by a key its operator
//! trusts. A signature says "this code was compiled from this module, for
//! this target, by this engine": the signed message binds all four, so
//! signed code cannot be moved into a package with another module, or
//! relabelled for another engine.
//!
//! ```text
//! message = "oasis aot signature v1\0"
//!           SHA-256(module)  SHA-256(code)  "TARGET FINGERPRINT"
//! section = ed25519 public key (32 bytes)  ed25519 signature of message (64 bytes)
//! ```
//!
//! Keys are stored as PEM: the secret key as PKCS#8 and the public key as
//! SubjectPublicKeyInfo, the formats `openssl genpkey -algorithm ed25519`
//! and `openssl pkey -pubout` write, so either tool can make them.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sha2::{Digest, Sha256};

use crate::package::{AotCode, Package, PackageBuilder, SectionKind};

const DOMAIN: &[u8] = b"oasis aot signature v1\0";

/// Why a key could not be made, read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM ed25519 secret key.
    #[error(
        "not an ed25519 secret key in PKCS#8 PEM ({0}): make one with `oasis keygen` or `openssl genpkey -algorithm ed25519`"
    )]
    Secret(String),
    /// Not a PEM ed25519 public key.
    #[error(
        "not an ed25519 public key in PEM ({0}): use the KEY.pub that `oasis keygen` wrote, or `openssl pkey -pubout`"
    )]
    Public(String),
    /// The OS gave no randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Entropy(String),
}

/// An ed25519 key that signs AOT code.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the secret.
        write!(f, "SigningKey({})", self.public_key().id())
    }
}

impl SigningKey {
    /// A new key from the OS's randomness.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Entropy(alloc::format!("{e}")))?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Reads a PKCS#8 PEM secret key.
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(SigningKey)
            .map_err(|e| KeyError::Secret(alloc::format!("{e}")))
    }

    /// The key as PKCS#8 PEM (wiped from memory when dropped).
    pub fn to_pem(&self) -> Result<zeroize::Zeroizing<String>, KeyError> {
        self.0.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::Secret(alloc::format!("{e}")))
    }

    /// Its public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs every AOT section of `package` (replacing signatures it had).
    pub fn sign(&self, package: &mut PackageBuilder) {
        let module = package
            .sections
            .iter()
            .find(|(kind, _, _)| *kind == SectionKind::Module)
            .map(|(_, _, data)| Sha256::digest(data))
            .unwrap_or_default();
        let signatures: Vec<(String, [u8; 64])> = package
            .sections
            .iter()
            .filter(|(kind, _, _)| *kind == SectionKind::Aot)
            .map(|(_, name, code)| (name.clone(), self.0.sign(&message(&module, code, name)).to_bytes()))
            .collect();
        let public_key = self.0.verifying_key().to_bytes();
        for (name, signature) in signatures {
            package.signature(&name, &public_key, &signature);
        }
    }
}

/// An ed25519 public key: one that signed, or one an operator trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM public key.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map(PublicKey)
            .map_err(|e| KeyError::Public(alloc::format!("{e}")))
    }

    /// The key as SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.0.to_public_key_pem(LineEnding::LF).map_err(|e| KeyError::Public(alloc::format!("{e}")))
    }

    /// A short name for the key, for people: `ed25519:` and the first 16 hex
    /// digits of the SHA-256 of its 32 bytes.
    pub fn id(&self) -> String {
        let hash = Sha256::digest(self.0.as_bytes());
        let mut id = String::from("ed25519:");
        for b in &hash[..8] {
            let _ = write!(id, "{b:02x}");
        }
        id
    }
}

/// What a package's AOT section's signature says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It has none.
    Unsigned,
    /// Signed by this key, and the signature holds for this module and code.
    Valid(PublicKey),
    /// It claims this key, but the signature does not hold: the code, the
    /// module or the name changed after signing, or it was never signed by
    /// that key.
    Invalid(PublicKey),
}

impl Verdict {
    /// The key that signed, if the signature holds.
    pub fn signer(&self) -> Option<&PublicKey> {
        match self {
            Verdict::Valid(key) => Some(key),
            _ => None,
        }
    }
}

/// Checks the signature of `aot`, an AOT section of `package`. The package
/// must have been parsed with its module (its digest is signed).
pub fn verify(package: &Package<'_>, aot: &AotCode<'_>) -> Verdict {
    let Some(stored) = package.signature_of(aot) else { return Verdict::Unsigned };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(stored.public_key) else {
        // Not a point on the curve: no key could have made it.
        return Verdict::Invalid(PublicKey(ed25519_dalek::VerifyingKey::default()));
    };
    let name = alloc::format!("{} {}", aot.target, aot.fingerprint);
    let message = message(&Sha256::digest(package.module), aot.code, &name);
    let signature = ed25519_dalek::Signature::from_bytes(stored.signature);
    // `verify_strict` refuses the malleable and small-order forms that plain
    // ed25519 verification lets through.
    match key.verify_strict(&message, &signature) {
        Ok(()) => Verdict::Valid(PublicKey(key)),
        Err(_) => Verdict::Invalid(PublicKey(key)),
    }
}

fn message(module_digest: &[u8], code: &[u8], name: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + 64 + name.len());
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(module_digest);
    message.extend_from_slice(&Sha256::digest(code));
    message.extend_from_slice(name.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "name = \"t\"\nversion = \"1.0.0\"\nabi = 1\n";
    const TARGET: &str = "x86_64-unknown-linux-gnu";

    fn builder(module: &[u8], code: &[u8]) -> PackageBuilder {
        let mut b = PackageBuilder::new(MANIFEST.into(), module.to_vec());
        b.aot(TARGET, "wasmtime-48:01", code.to_vec());
        b
    }

    fn verdict(bytes: &[u8]) -> Verdict {
        let p = Package::parse(bytes).unwrap();
        let aot = p.aot_for(TARGET).unwrap();
        verify(&p, &aot)
    }

    #[test]
    fn a_signature_holds_for_its_module_and_code_only() {
        let key = SigningKey::generate().unwrap();
        let mut b = builder(b"\0asm\x01\0\0\0", &[7; 40]);
        assert_eq!(verdict(&b.build()), Verdict::Unsigned);
        key.sign(&mut b);
        assert_eq!(verdict(&b.build()), Verdict::Valid(key.public_key()));
        // Signed twice: one signature, replaced.
        key.sign(&mut b);
        assert_eq!(verdict(&b.build()), Verdict::Valid(key.public_key()));

        // The signature moved to a package with other code, or another module.
        let bytes = b.build();
        let package = Package::parse(&bytes).unwrap();
        let signed = package.signature_of(&package.aot_for(TARGET).unwrap()).unwrap();
        let (public_key, signature) = (*signed.public_key, *signed.signature);
        for (module, code) in [(&b"\0asm\x01\0\0\0"[..], &[8u8; 40][..]), (b"\0asm\x01\0\0\x01", &[7; 40])] {
            let mut other = builder(module, code);
            other.signature(&format!("{TARGET} wasmtime-48:01"), &public_key, &signature);
            assert_eq!(verdict(&other.build()), Verdict::Invalid(key.public_key()));
        }
    }

    #[test]
    fn keys_round_trip_through_pem_and_bad_pem_is_named() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&key.to_pem().unwrap()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = PublicKey::from_pem(&key.public_key().to_pem().unwrap()).unwrap();
        assert_eq!(public, key.public_key());
        assert!(public.id().starts_with("ed25519:") && public.id().len() == 24);
        assert!(matches!(SigningKey::from_pem("hello"), Err(KeyError::Secret(_))));
        // A public key is not a secret one, and the other way round.
        assert!(matches!(SigningKey::from_pem(&public.to_pem().unwrap()), Err(KeyError::Secret(_))));
        assert!(matches!(PublicKey::from_pem(&key.to_pem().unwrap()), Err(KeyError::Public(_))));
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn an_openssl_key_is_read() {
        // `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` of it.
        let secret = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOh9qLYSq4oR/SzlEQP+VeTMr2SlVzIbsEuqJ05NhaUo\n-----END PRIVATE KEY-----\n";
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA1gvZ/CvdOS7NOXl9wLyDVyavy8YpUqj54B7yB2NwkBA=\n-----END PUBLIC KEY-----\n";
        let key = SigningKey::from_pem(secret).unwrap();
        assert_eq!(key.public_key(), PublicKey::from_pem(public).unwrap());
        assert_eq!(key.public_key().to_pem().unwrap(), public);
    }
}
